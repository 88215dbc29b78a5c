package nginx

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/policy"
)

// recorder is a Checker that records the request and answers with a fixed decision, so that these
// tests see exactly what the adapter reads and writes.
type recorder struct {
	got *authz.Request
	d   authz.Decision
}

func (r *recorder) Check(_ context.Context, req *authz.Request) authz.Decision {
	r.got = req
	return r.d
}

func checkRequest(target string, headers map[string]string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	return r
}

func TestParse(t *testing.T) {
	r := checkRequest("/check/nginx?policy=shop/shop", map[string]string{
		"X-Original-URL":          "https://shop.example.com:8443/a/%2e%2e/b?x=1&y=%20",
		"X-Original-Method":       "POST",
		"X-Real-IP":               "203.0.113.7",
		"X-Forwarded-For":         "203.0.113.7, 10.0.0.1",
		"X-Request-ID":            "req-1",
		"X-Auth-Request-Redirect": "/a/%2e%2e/b?x=1&y=%20",
		"Cookie":                  "authgate_session=abc",
		"Authorization":           "Bearer t",
		"Accept":                  "text/html",
		// Headers a client can forge on this path must be ignored.
		"X-Forwarded-Host":   "evil.example.com",
		"X-Forwarded-Uri":    "/public",
		"X-Forwarded-Method": "GET",
		"X-User-Id":          "admin",
	})
	got, err := Parse(r)
	if err != nil {
		t.Fatal(err)
	}
	want := authz.Request{
		Protocol: authz.ProtocolNginx, Policy: policy.Ref{Namespace: "shop", Name: "shop"}, Method: "POST",
		Scheme: "https", Host: "shop.example.com:8443", Path: "/a/%2e%2e/b", Query: "x=1&y=%20",
		ClientIP: "203.0.113.7", Cookie: "authgate_session=abc", Authorization: "Bearer t", Accept: "text/html", RequestID: "req-1",
	}
	if *got != want {
		t.Errorf("Parse =\n%+v\nwant\n%+v", *got, want)
	}
}

func TestParseMisconfigured(t *testing.T) {
	base := map[string]string{"X-Original-URL": "http://shop.example.com/", "X-Original-Method": "GET"}
	cases := map[string]struct {
		target  string
		headers map[string]string
		want    string
	}{
		"no original URL":      {"/check/nginx", map[string]string{"X-Original-Method": "GET"}, "did not send X-Original-URL"},
		"no original method":   {"/check/nginx", map[string]string{"X-Original-URL": "http://a/"}, "did not send X-Original-Method"},
		"relative URL":         {"/check/nginx", map[string]string{"X-Original-URL": "/admin", "X-Original-Method": "GET"}, "must start with http:// or https://"},
		"other scheme":         {"/check/nginx", map[string]string{"X-Original-URL": "ftp://a/", "X-Original-Method": "GET"}, "must start with http://"},
		"no path":              {"/check/nginx", map[string]string{"X-Original-URL": "http://a", "X-Original-Method": "GET"}, "has no path"},
		"no host":              {"/check/nginx", map[string]string{"X-Original-URL": "http:///a", "X-Original-Method": "GET"}, "has no host"},
		"bad policy":           {"/check/nginx?policy=shop", base, "want <namespace>/<name>"},
		"policy twice":         {"/check/nginx?policy=a/b&policy=c/d", base, "more than once"},
		"only X-Forwarded-Uri": {"/check/nginx", map[string]string{"X-Forwarded-Uri": "/", "X-Forwarded-Host": "a", "X-Forwarded-Method": "GET"}, "did not send X-Original-URL"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := &recorder{}
			w := httptest.NewRecorder()
			Handler(c).ServeHTTP(w, checkRequest(tc.target, tc.headers))
			if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), tc.want) {
				t.Errorf("answer %d %q, want 400 mentioning %q", w.Code, w.Body.String(), tc.want)
			}
			if c.got != nil {
				t.Error("a misconfigured request reached the decision core")
			}
		})
	}
}

func TestAnswers(t *testing.T) {
	valid := map[string]string{"X-Original-URL": "https://shop.example.com/", "X-Original-Method": "GET"}
	cases := map[string]struct {
		d       authz.Decision
		status  int
		headers map[string]string // "" means the header must be absent
	}{
		"allow": {
			d:      authz.Decision{Outcome: authz.Allow, Headers: []authz.Header{{Name: "X-User-Id", Value: "u1"}, {Name: "X-User-Role", Value: "admin,editor"}}, Remove: []string{"X-User-Email"}},
			status: 200, headers: map[string]string{"X-User-Id": "u1", "X-User-Role": "admin,editor", "X-User-Email": "", "Cache-Control": "", "Set-Cookie": ""},
		},
		"allow with a slid session": {
			d:      authz.Decision{Outcome: authz.Allow, SetCookie: "s=1; Path=/; HttpOnly"},
			status: 200, headers: map[string]string{"Set-Cookie": "s=1; Path=/; HttpOnly", "Cache-Control": "no-store"},
		},
		"unauthenticated browser still gets 401 (auth-signin redirects)": {
			d:      authz.Decision{Outcome: authz.Unauthenticated, Scheme: "Bearer", Browser: true, LoginURL: "https://auth.example.com/auth/login"},
			status: 401, headers: map[string]string{"WWW-Authenticate": `Bearer realm="authgate"`, "Location": "", "Cache-Control": "no-store"},
		},
		"forbidden": {
			d: authz.Decision{Outcome: authz.Forbidden}, status: 403, headers: map[string]string{"Cache-Control": "no-store", "X-User-Id": ""},
		},
		"bad request": {d: authz.Decision{Outcome: authz.BadRequest}, status: 400},
		"store error": {d: authz.Decision{Outcome: authz.Error}, status: 503, headers: map[string]string{"Cache-Control": "no-store"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w := httptest.NewRecorder()
			Handler(&recorder{d: tc.d}).ServeHTTP(w, checkRequest("/check/nginx", valid))
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			for k, v := range tc.headers {
				got := w.Header().Values(k)
				if v == "" && len(got) != 0 {
					t.Errorf("%s = %q, want none", k, got)
				}
				if v != "" && (len(got) != 1 || got[0] != v) {
					t.Errorf("%s = %q, want exactly %q", k, got, v)
				}
			}
		})
	}
}

// TestSplitOriginalURL splits X-Original-URL, "$scheme://$http_host$request_uri", at the first '/'
// after the scheme: the host is the client's Host header as nginx passed it, checked later by
// NormalizeHost, so a '?' or '#' in it stays in the host.
func TestSplitOriginalURL(t *testing.T) {
	tests := map[string]struct {
		in                        string
		scheme, host, path, query string
	}{
		"plain":                         {"https://shop.example.com/a?b=1", "https", "shop.example.com", "/a", "b=1"},
		"port, no query":                {"http://h:8080/", "http", "h:8080", "/", ""},
		"empty query":                   {"http://h/a?", "http", "h", "/a", ""},
		"second '?'":                    {"http://h/a?b?c", "http", "h", "/a", "b?c"},
		"'?' in the host":               {"http://?/", "http", "?", "/", ""}, // found by FuzzParse
		"'#' in the host":               {"http://h#x/p?q", "http", "h#x", "/p", "q"},
		"encoded slashes":               {"http://h/a%2Fb", "http", "h", "/a%2Fb", ""},
		"'?' in the host and the query": {"http://a?b/c?d", "http", "a?b", "/c", "d"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			scheme, host, path, query, err := SplitOriginalURL(tc.in)
			if err != nil || scheme != tc.scheme || host != tc.host || path != tc.path || query != tc.query {
				t.Fatalf("SplitOriginalURL(%q) = %q, %q, %q, %q, %v", tc.in, scheme, host, path, query, err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("https://shop.example.com/a?b", "GET", "policy=shop/shop")
	f.Add("http://h:80//x/../y;z?%", "get", "")
	f.Add("http://", "", "policy=")
	f.Fuzz(func(t *testing.T, original, method, query string) {
		r := httptest.NewRequest(http.MethodGet, "/check/nginx", nil)
		r.URL.RawQuery = query
		r.Header["X-Original-Url"] = []string{original}
		r.Header["X-Original-Method"] = []string{method}
		req, err := Parse(r)
		if err != nil {
			return
		}
		if !strings.HasPrefix(req.Path, "/") || (req.Scheme != "http" && req.Scheme != "https") || req.Host == "" {
			t.Fatalf("Parse accepted %q as %+v", original, req)
		}
		rebuilt := req.Scheme + "://" + req.Host + req.Path
		// The request URI is what follows the host, which may hold a '?' of its own (the
		// client's Host header: NormalizeHost refuses it later).
		if strings.Contains(strings.TrimPrefix(original, req.Scheme+"://"+req.Host), "?") {
			rebuilt += "?" + req.Query
		}
		if rebuilt != original {
			t.Fatalf("Parse lost part of %q: %+v", original, req)
		}
	})
}
