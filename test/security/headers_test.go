package security

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/authgate/authgate/test/harness"
)

// spoofedHeaders are identity headers as a client forges them: each of the policy's, twice, in other
// spellings (case, underscores, which some frameworks read as dashes), and the names other
// authentication proxies use. Every value holds "spoofed".
func spoofedHeaders() []string {
	var pairs []string
	for _, h := range identityHeaders {
		pairs = append(pairs, h, "spoofed-1", h, "spoofed-2")
	}
	return append(pairs,
		"x-user-id", "spoofed-lower",
		"X-USER-ROLE", "spoofed-upper",
		"X_User_Id", "spoofed-underscore",
		"X_Auth_Request_Email", "spoofed-underscore",
		"X-Auth-Request-Access-Token", "spoofed-token",
		"X-Forwarded-User", "spoofed-forwarded",
		"X-Remote-User", "spoofed-remote",
		"Remote-User", "spoofed-remote",
	)
}

// Identity headers come from authgate only. Through real nginx the application receives exactly
// the identity authgate answered (or none), whatever the client sent; the answers to Traefik and
// Envoy (HTTP and gRPC) carry authgate's values only, never a client's, and name the identity
// headers they do not set for removal.
func testSpoofedIdentityHeaders(t *testing.T) {
	t.Parallel()
	s := newSuite(t, lenientLimits)
	admin := s.APILogin(harness.AdminEmail, harness.AdminPassword)
	viewer := s.APILogin(harness.ViewerEmail, harness.ViewerPassword)
	viewerIdentity := map[string]string{
		"X-User-Id": harness.ViewerEmail, "X-User-Email": harness.ViewerEmail, "X-User-Role": "viewer",
		"X-User-Name": "Demo viewer", "X-Auth-Request-User": harness.ViewerEmail,
		"X-Auth-Request-Email": harness.ViewerEmail, "X-Auth-Request-Groups": "viewer",
	}
	spoofed := spoofedHeaders()
	cases := []struct {
		what    string
		target  string
		headers []string
		want    map[string]string // nil: allowed without identity; see denied
		denied  bool
	}{
		{"the admin's session", "/orders", []string{"Cookie", harness.SessionCookie + "=" + admin.Session, "Accept", harness.BrowserAccept}, adminIdentity, false},
		{"the admin's token", "/api/orders", []string{"Authorization", "Bearer " + admin.AccessToken, "Accept", "application/json"}, adminIdentity, false},
		{"the viewer's session", "/orders", []string{"Cookie", harness.SessionCookie + "=" + viewer.Session, "Accept", harness.BrowserAccept}, viewerIdentity, false},
		{"no credentials on the Public rule", "/public/app.css", nil, nil, false},
		{"the admin's session on the Public rule", "/public/app.css", []string{"Cookie", harness.SessionCookie + "=" + admin.Session}, nil, false},
		{"no credentials", "/orders", []string{"Accept", harness.BrowserAccept}, nil, true},
		{"the viewer's token where admins only may go", "/admin", []string{"Authorization", "Bearer " + viewer.AccessToken, "Accept", "application/json"}, nil, true},
	}
	requests := 0
	for _, c := range cases {
		p := probe{target: c.target, headers: append(append([]string(nil), c.headers...), spoofed...)}
		for _, ad := range adapters {
			what := fmt.Sprintf("%s: %s with forged identity headers", ad.name, c.what)
			a := ad.check(s, p)
			requests++
			if c.denied {
				expectDenied(t, what, a)
				continue
			}
			if !a.allowed {
				t.Errorf("%s: %s, want it allowed", what, a)
				continue
			}
			if ad.name == "nginx" {
				seen := a.upstream[0].Headers
				harness.ExpectIdentity(t, what+": the application", seen, identityHeaders, c.want)
				for name, vals := range seen {
					normalized := strings.ReplaceAll(strings.ToLower(name), "_", "-")
					if slices.ContainsFunc(identityHeaders, func(h string) bool { return strings.ToLower(h) == normalized }) &&
						slices.ContainsFunc(vals, func(v string) bool { return strings.Contains(v, "spoofed") }) {
						t.Errorf("%s: the application received %s %q", what, name, vals)
					}
				}
				continue
			}
			harness.ExpectIdentity(t, what+": the answer", a.header, identityHeaders, c.want)
			for name, vals := range a.header {
				if slices.ContainsFunc(vals, func(v string) bool { return strings.Contains(v, "spoofed") }) {
					t.Errorf("%s: the answer echoes the client's %s %q", what, name, vals)
				}
			}
			if a.header.Get("X-Test-Appended") != "" {
				t.Errorf("%s: identity headers %q are appended to the client's, not overwriting them", what, a.header.Values("X-Test-Appended"))
			}
			if ad.name == "envoy-http" || ad.name == "envoy-grpc" {
				for _, h := range identityHeaders {
					if _, set := c.want[h]; !set && !slices.Contains(a.remove, strings.ToLower(h)) {
						t.Errorf("%s: %s is neither set nor removed (remove %q): the client's copy would reach the application", what, h, a.remove)
					}
				}
			}
		}
	}
	counted("headers", len(spoofed)/2, requests)
}

// injections are header values and URL parts that try to end a header line and start another: raw
// CR and LF in every combination, obsolete line folding, NUL, their percent-encodings, and the
// Unicode characters that careless servers truncate to CR and LF. The line they try to start sets an
// identity header or a cookie.
var injections = []string{
	"\r\nX-User-Id: injected",
	"\nX-User-Id: injected",
	"\rX-User-Id: injected",
	"\r\n X-User-Id: injected",
	"\x00X-User-Id: injected",
	"%0d%0aX-User-Id:%20injected",
	"%0D%0ASet-Cookie:%20injected=1",
	"%0aX-User-Id:%20injected",
	"嘊嘍X-User-Id: injected",
	"%E5%98%8A%E5%98%8DSet-Cookie:%20injected=1",
	"\u2028X-User-Id: injected",
	"\u0085Set-Cookie: injected=1",
}

// CR and LF in what a client controls never split a header or inject one, through any adapter or
// straight at the webhook's parser: the answer is one well-formed answer whose headers carry no CR,
// LF or NUL and none of the injected lines; no injected identity reaches the application; a
// protected path is never let through.
func testHeaderInjection(t *testing.T) {
	t.Parallel()
	s := newSuite(t)
	all := append(adapters[:len(adapters):len(adapters)], adapter{"nginx-endpoint", viaNginxEndpoint})
	requests := 0
	for _, inj := range injections {
		placements := []struct {
			where string
			p     probe
		}{
			{"the Cookie", probe{target: "/orders", headers: []string{"Cookie", harness.SessionCookie + "=x" + inj, "Accept", harness.BrowserAccept}}},
			{"the Authorization", probe{target: "/api/orders", headers: []string{"Authorization", "Bearer x" + inj}}},
			{"the Accept", probe{target: "/orders", headers: []string{"Accept", "text/html" + inj}}},
			{"the X-Request-ID", probe{target: "/public/x", headers: []string{"X-Request-ID", "id" + inj}}},
			{"the query", probe{target: "/orders?next=" + inj, headers: []string{"Accept", harness.BrowserAccept}}},
			{"the path", probe{target: "/orders/" + inj, headers: []string{"Accept", harness.BrowserAccept}}},
			{"the host", probe{host: harness.AppHost + inj, target: "/orders", headers: []string{"Accept", harness.BrowserAccept}}},
		}
		for _, pl := range placements {
			for _, ad := range all {
				if (ad.name == "nginx" || ad.name == "envoy-http") && (pl.where == "the path" || pl.where == "the query" || pl.where == "the host") &&
					strings.ContainsAny(inj, "\r\n\x00 ") {
					continue // not a request line or Host a client can send; Traefik, gRPC and /check/nginx get it in a header or field
				}
				what := fmt.Sprintf("%s: %q in %s", ad.name, inj, pl.where)
				a := ad.check(s, pl.p)
				requests++
				expectNoInjection(t, what, a)
				if pl.p.target != "/public/x" {
					expectDenied(t, what, a)
				}
			}
		}
	}
	counted("headers", len(injections), requests)
}

// expectNoInjection fails the test if an answer carries an injected header, a header value with
// CR, LF or NUL, or bytes after it, or if the application received an injected identity.
func expectNoInjection(t *testing.T, what string, a answer) {
	t.Helper()
	check := func(whose string, h http.Header) {
		for name, vals := range h {
			for _, v := range vals {
				if strings.ContainsAny(v, "\r\n\x00") {
					t.Errorf("%s: %s header %s holds CR, LF or NUL: %q", what, whose, name, v)
				}
				if name != "Location" && strings.Contains(strings.ToLower(v), "injected") {
					t.Errorf("%s: %s header %s carries the injected text: %q", what, whose, name, v)
				}
			}
		}
	}
	check("the answer's", a.header)
	check("nginx's", a.client)
	if loc := a.header.Get("Location") + a.client.Get("Location"); strings.ContainsFunc(loc, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		t.Errorf("%s: Location %q holds characters that are not URL characters", what, loc)
	}
	for _, seen := range a.upstream {
		for _, h := range identityHeaders {
			if slices.ContainsFunc(seen.Headers.Values(h), func(v string) bool { return strings.Contains(v, "injected") }) {
				t.Errorf("%s: the application received %s %q", what, h, seen.Headers.Values(h))
			}
		}
	}
	if len(a.trailing) > 0 {
		t.Errorf("%s: %d bytes follow the answer (a split response): %.200q", what, len(a.trailing), a.trailing)
	}
}

// A 64 KiB header, or headers adding up to 64 KiB, get a clear 4xx (431, or 400 and 414 from
// nginx) from every HTTP endpoint, the login included: never a decision, never a 5xx, and the
// webhook keeps answering. The gRPC service (behind an Envoy that refuses request headers over 60
// KiB by default) answers with a denial, never an RPC error.
func testOversizedHeaders(t *testing.T) {
	t.Parallel()
	s := newSuite(t)
	huge := strings.Repeat("a", 64<<10)
	var many []string
	for i := range 1100 {
		many = append(many, fmt.Sprintf("X-Pad-%04d", i), strings.Repeat("p", 48))
	}
	json := []string{"Accept", "application/json"}
	probes := []struct {
		what string
		p    probe
	}{
		{"a 64 KiB session cookie", probe{target: "/admin", headers: append([]string{"Cookie", harness.SessionCookie + "=" + huge}, json...)}},
		{"a 64 KiB cookie header of many cookies", probe{target: "/admin", headers: append([]string{"Cookie", strings.Repeat("c=0123456789abcdef; ", 64<<10/20)}, json...)}},
		{"a 64 KiB Bearer token", probe{target: "/admin", headers: append([]string{"Authorization", "Bearer " + huge}, json...)}},
		{"a 64 KiB header of its own", probe{target: "/public/x", headers: []string{"X-Big", huge}}},
		{"a 64 KiB header of its own on a protected path", probe{target: "/admin", headers: append([]string{"X-Big", huge}, json...)}},
		{"1100 headers adding up to 64 KiB", probe{target: "/admin", headers: append(many, json...)}},
		{"a 64 KiB path", probe{target: "/admin/" + huge, headers: json}},
		{"a 64 KiB query", probe{target: "/admin?q=" + huge, headers: json}},
	}
	all := append(adapters[:len(adapters):len(adapters)], adapter{"nginx-endpoint", viaNginxEndpoint})
	requests := 0
	for _, c := range probes {
		for _, ad := range all {
			what := ad.name + ": " + c.what
			a := ad.check(s, c.p)
			requests++
			if ad.name == "envoy-grpc" {
				if a.rpcErr != nil {
					t.Errorf("%s: %s: a decision is never an RPC error", what, a)
				}
				if c.p.target != "/public/x" {
					expectDenied(t, what, a)
				}
				continue
			}
			switch a.status {
			case http.StatusRequestHeaderFieldsTooLarge, http.StatusBadRequest, http.StatusRequestURITooLong:
			default:
				t.Errorf("%s: %s; want 431 Request Header Fields Too Large (or nginx's 400 or 414)", what, a)
			}
			if a.allowed {
				t.Errorf("%s: %s: let through", what, a)
			}
		}
	}
	// The login endpoints too.
	for _, h := range []string{"Cookie", "Authorization", "X-Big"} {
		s.Secrets.AddHeaders(http.Header{h: {huge}})
		r := rawExchange(t, s.WebhookAddr, http.MethodPost, "POST /auth/login?policy=shop%2Fshop HTTP/1.1\r\nHost: "+harness.LoginHost+
			"\r\n"+h+": "+huge+"\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
		requests++
		if r.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("POST /auth/login with a 64 KiB %s: %s, want 431", h, r.Status)
		}
	}
	counted("headers", len(probes)+3, requests)

	// Still answering, and still deciding.
	r, _ := s.Get(s.NewClient(false), s.AuthURL("/healthz"))
	s.ExpectStatus(r, http.StatusOK, "GET /healthz after the oversized headers")
	for _, ad := range adapters {
		expectAllowed(t, ad.name+": /public/x after the oversized headers", ad.check(s, probe{target: "/public/x"}))
	}
}
