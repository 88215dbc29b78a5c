package envoyhttp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/proxy/envoyhttp"
	"github.com/authgate/authgate/internal/session"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/token"
)

type world struct {
	t        *testing.T
	engine   *authz.Engine
	sessions *session.Manager
	shop     *policy.Policy
}

func newWorld(t *testing.T) *world {
	t.Helper()
	shop, err := policy.Compile(fixture.AuthPolicy(), fixture.Secrets())
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	deny, err := authz.NewDenylist(context.Background(), st, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(deny.Close)
	verifier := token.NewVerifier(token.WithDenylist(deny))
	t.Cleanup(verifier.Close)
	snaps := &authz.AtomicSnapshot{}
	snaps.Store(policy.NewSnapshot([]*policy.Policy{shop}))
	sessions := session.NewManager(st, time.Now)
	return &world{t: t, engine: authz.NewEngine(snaps, sessions, verifier), sessions: sessions, shop: shop}
}

func (w *world) user(email string) policy.User {
	u, ok := w.shop.Login().User(email)
	if !ok {
		w.t.Fatalf("no user %s", email)
	}
	return u
}

func (w *world) login(email string) string {
	id, _, err := w.sessions.Create(context.Background(), w.shop, w.user(email))
	if err != nil {
		w.t.Fatal(err)
	}
	return id
}

func (w *world) token(email string, issued time.Time) string {
	raw, _, err := token.Issue(w.shop, w.user(email), "fam-"+email, issued)
	if err != nil {
		w.t.Fatal(err)
	}
	return raw
}

// envoyRequest is what Envoy's http_service sends for a client request.
func envoyRequest(method, uri string, headers map[string]string) *http.Request {
	r := httptest.NewRequest(method, envoyhttp.PathPrefix+uri, nil)
	r.Host = "shop.example.com"
	r.Header.Set("Content-Length", "0")
	r.Header.Set("X-Forwarded-Proto", "https")
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	return r
}

var identity = []string{"X-User-Id", "X-User-Email", "X-User-Role"}

func removed(h http.Header) string {
	v := h.Values("X-Envoy-Auth-Headers-To-Remove")
	if len(v) > 1 {
		return "several"
	}
	if len(v) == 0 {
		return ""
	}
	parts := strings.Split(v[0], ",")
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func TestMethods(t *testing.T) {
	w := newWorld(t)
	h := envoyhttp.Handler(w.engine)
	admin := w.login("admin@example.com")
	adminToken := w.token("admin@example.com", time.Now())
	viewerToken := w.token("viewer@example.com", time.Now())
	expired := w.token("admin@example.com", time.Now().Add(-time.Hour))
	revoked := w.login("admin@example.com")
	if _, err := w.sessions.Delete(context.Background(), w.shop, revoked); err != nil {
		t.Fatal(err)
	}
	const all = "x-user-email,x-user-id,x-user-role"
	// The rule lists GET and POST; a set with GET also matches HEAD.
	inAPIRule := func(m string) bool { return m == "GET" || m == "HEAD" || m == "POST" }

	cases := []struct {
		name    string
		uri     string
		headers map[string]string
		// want gives the status and the identity for a method.
		want func(method string) (status int, user string)
	}{
		{"public", "/static/app.css?v=1", nil, func(string) (int, string) { return 200, "" }},
		{"public exact", "/healthz", map[string]string{"X-User-Id": "spoofed"}, func(string) (int, string) { return 200, "" }},
		{"session", "/orders/1?x=y", map[string]string{"Cookie": "shop_session=" + admin}, func(string) (int, string) { return 200, "admin@example.com" }},
		{"session cookie on /api/", "/api/orders", map[string]string{"Cookie": "shop_session=" + admin}, func(m string) (int, string) {
			if inAPIRule(m) {
				return 401, "" // the JWT rule does not take sessions
			}
			return 200, "admin@example.com" // other methods fall to the Session rule
		}},
		{"jwt on /api/", "/api/orders", map[string]string{"Authorization": "Bearer " + adminToken}, func(m string) (int, string) {
			if inAPIRule(m) {
				return 200, "admin@example.com"
			}
			return 401, "" // the Session rule does not take bearer tokens
		}},
		{"viewer jwt on /api/", "/api/orders", map[string]string{"Authorization": "Bearer " + viewerToken}, func(m string) (int, string) {
			if inAPIRule(m) {
				return 403, ""
			}
			return 401, ""
		}},
		{"expired token", "/api/orders", map[string]string{"Authorization": "Bearer " + expired}, func(string) (int, string) { return 401, "" }},
		{"revoked session, API client", "/orders", map[string]string{"Cookie": "shop_session=" + revoked, "Accept": "application/json"}, func(string) (int, string) { return 401, "" }},
		{"browser without session", "/orders", map[string]string{"Accept": "text/html"}, func(string) (int, string) { return 302, "" }},
		{"traversal is not public", "/static/%2e%2e/api/x", map[string]string{"Accept": "application/json"}, func(string) (int, string) { return 401, "" }},
		{"encoded slash", "/static%2F..%2Fapi", nil, func(string) (int, string) { return 400, "" }},
	}
	for _, tc := range cases {
		for _, method := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, envoyRequest(method, tc.uri, tc.headers))
				status, user := tc.want(method)
				if rec.Code != status {
					t.Fatalf("status %d (%s), want %d", rec.Code, strings.TrimSpace(rec.Body.String()), status)
				}
				if status != 200 {
					if rec.Header().Get("Cache-Control") != "no-store" {
						t.Error("denial without Cache-Control: no-store")
					}
					for _, name := range identity {
						if rec.Header().Get(name) != "" {
							t.Errorf("%s on a denial", name)
						}
					}
					if status == 302 {
						loc, err := url.Parse(rec.Header().Get("Location"))
						if err != nil || !loc.IsAbs() || loc.Query().Get("rd") != "https://shop.example.com"+tc.uri {
							t.Errorf("Location %q", rec.Header().Get("Location"))
						}
					}
					if status == 401 && rec.Header().Get("WWW-Authenticate") != `Bearer realm="authgate"` {
						t.Errorf("WWW-Authenticate %q", rec.Header().Get("WWW-Authenticate"))
					}
					return
				}
				if user == "" {
					for _, name := range identity {
						if v := rec.Header().Values(name); len(v) != 0 {
							t.Errorf("%s = %v on an anonymous allow", name, v)
						}
					}
					if got := removed(rec.Header()); got != all {
						t.Errorf("x-envoy-auth-headers-to-remove = %q, want %q", got, all)
					}
					return
				}
				for _, name := range identity[:2] {
					if v := rec.Header().Values(name); len(v) != 1 || v[0] != user {
						t.Errorf("%s = %v, want exactly %s", name, v, user)
					}
				}
				if got := removed(rec.Header()); got != "" {
					t.Errorf("x-envoy-auth-headers-to-remove = %q with every identity header set", got)
				}
			})
		}
	}
}

// recorder records the request and answers with a fixed decision.
type recorder struct {
	got *authz.Request
	d   authz.Decision
}

func (r *recorder) Check(_ context.Context, req *authz.Request) authz.Decision {
	r.got = req
	return r.d
}

func TestParse(t *testing.T) {
	r := httptest.NewRequest("PATCH", "/check/envoy/a/%2e%2e/b%2Fc?x=1&y=%20&policy=other/other", nil)
	r.Host = "shop.example.com:8443"
	for k, v := range map[string]string{
		"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7, 10.0.0.1", "X-Request-ID": "req-1",
		"Authorization": "Bearer t", "Accept": "text/html", "X-User-Id": "admin", "X-Authgate-Policy": "other/other",
	} {
		r.Header.Set(k, v)
	}
	r.Header.Add("Cookie", "a=1")
	r.Header.Add("Cookie", "b=2")
	got, err := envoyhttp.Parse(r)
	if err != nil {
		t.Fatal(err)
	}
	want := authz.Request{
		Protocol: authz.ProtocolEnvoyHTTP, Method: "PATCH", Scheme: "https", Host: "shop.example.com:8443",
		Path: "/a/%2e%2e/b%2Fc", Query: "x=1&y=%20&policy=other/other", ClientIP: "203.0.113.7",
		Cookie: "a=1; b=2", Authorization: "Bearer t", Accept: "text/html", RequestID: "req-1",
	}
	if *got != want {
		t.Errorf("Parse =\n%+v\nwant\n%+v", *got, want)
	}

	for target, want := range map[string][2]string{
		"/check/envoy":        {"/", ""},
		"/check/envoy?a=b":    {"/", "a=b"},
		"/check/envoy/":       {"/", ""},
		"/check/envoy//x/../": {"//x/../", ""},
	} {
		got, err := envoyhttp.Parse(httptest.NewRequest("GET", target, nil))
		if err != nil || got.Path != want[0] || got.Query != want[1] || got.Scheme != "http" {
			t.Errorf("%s: %+v, %v; want path %q query %q scheme http", target, got, err, want[0], want[1])
		}
	}
}

func TestMisconfigured(t *testing.T) {
	noHost := httptest.NewRequest("GET", "/check/envoy/", nil)
	noHost.Host = ""
	for name, r := range map[string]*http.Request{
		"other prefix": httptest.NewRequest("GET", "/check/envoyx", nil),
		"elsewhere":    httptest.NewRequest("GET", "/check/nginx", nil),
		"no host":      noHost,
	} {
		t.Run(name, func(t *testing.T) {
			c := &recorder{}
			rec := httptest.NewRecorder()
			envoyhttp.Handler(c).ServeHTTP(rec, r)
			if rec.Code != 400 || c.got != nil {
				t.Errorf("status %d, reached the core %v", rec.Code, c.got != nil)
			}
		})
	}
}

func TestAnswers(t *testing.T) {
	cases := map[string]struct {
		d      authz.Decision
		status int
		remove string
		cookie string
	}{
		"allow, partial identity": {authz.Decision{Outcome: authz.Allow, Headers: []authz.Header{{Name: "X-User-Id", Value: "u"}}, Remove: []string{"X-User-Email", "X-User-Role"}}, 200, "x-user-email,x-user-role", ""},
		"allow, slid cookie":      {authz.Decision{Outcome: authz.Allow, SetCookie: "s=1"}, 200, "", "s=1"},
		"forbidden":               {authz.Decision{Outcome: authz.Forbidden, Remove: []string{"X-User-Id"}}, 403, "", ""},
		"store error":             {authz.Decision{Outcome: authz.Error}, 503, "", ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			envoyhttp.Handler(&recorder{d: tc.d}).ServeHTTP(rec, envoyRequest("GET", "/", nil))
			if rec.Code != tc.status || removed(rec.Header()) != tc.remove || rec.Header().Get("Set-Cookie") != tc.cookie {
				t.Errorf("answer %d remove %q cookie %q", rec.Code, removed(rec.Header()), rec.Header().Get("Set-Cookie"))
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("GET", "/check/envoy/a?b", "shop.example.com", "https")
	f.Add("", "/check/envoy", "", "")
	f.Add("POST", "/check/envoyx/%2F?#", "h:1", "HTTPS, http")
	f.Add("GET", "http://h/check/envoy/x", "h", "http")
	f.Fuzz(func(t *testing.T, method, target, host, proto string) {
		r := &http.Request{Method: method, RequestURI: target, Host: host, URL: &url.URL{Path: "/"}, Header: http.Header{"X-Forwarded-Proto": {proto}}}
		req, err := envoyhttp.Parse(r)
		if err != nil {
			return
		}
		if !strings.HasPrefix(req.Path, "/") || req.Host == "" || req.Method == "" || (req.Scheme != "http" && req.Scheme != "https") {
			t.Fatalf("Parse accepted %q as %+v", target, req)
		}
		if strings.HasPrefix(target, "/") {
			rebuilt := envoyhttp.PathPrefix + req.Path
			if strings.Contains(target, "?") {
				rebuilt += "?" + req.Query
			}
			if rebuilt != target && rebuilt != envoyhttp.PathPrefix+"/"+strings.TrimPrefix(target, envoyhttp.PathPrefix) {
				t.Fatalf("Parse lost part of %q: %+v", target, req)
			}
		}
	})
}
