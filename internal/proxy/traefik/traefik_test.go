package traefik

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/policy"
)

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

var forwarded = map[string]string{
	"X-Forwarded-Method": "DELETE",
	"X-Forwarded-Proto":  "https",
	"X-Forwarded-Host":   "shop.example.com",
	"X-Forwarded-Uri":    "/api/orders/1?force=true",
	"X-Forwarded-For":    "198.51.100.4, 10.0.0.2",
	"Cookie":             "a=b",
	"Authorization":      "Bearer t",
	// Forgeable on this path: never read.
	"X-Original-URL":    "https://shop.example.com/public",
	"X-Original-Method": "GET",
	"X-Real-IP":         "127.0.0.1",
}

func TestParse(t *testing.T) {
	got, err := Parse(checkRequest("/check/traefik?policy=shop/shop", forwarded))
	if err != nil {
		t.Fatal(err)
	}
	want := authz.Request{
		Protocol: authz.ProtocolTraefik, Policy: policy.Ref{Namespace: "shop", Name: "shop"}, Method: "DELETE", Scheme: "https",
		Host: "shop.example.com", Path: "/api/orders/1", Query: "force=true", ClientIP: "198.51.100.4",
		Cookie: "a=b", Authorization: "Bearer t",
	}
	if *got != want {
		t.Errorf("Parse =\n%+v\nwant\n%+v", *got, want)
	}
}

func TestParseMisconfigured(t *testing.T) {
	for _, drop := range []string{"X-Forwarded-Method", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Uri"} {
		t.Run("without "+drop, func(t *testing.T) {
			h := map[string]string{}
			for k, v := range forwarded {
				if k != drop {
					h[k] = v
				}
			}
			c := &recorder{}
			w := httptest.NewRecorder()
			Handler(c).ServeHTTP(w, checkRequest("/check/traefik", h))
			if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), drop) || c.got != nil {
				t.Errorf("answer %d %q, want 400 naming %s, and no decision", w.Code, w.Body.String(), drop)
			}
		})
	}
	for name, h := range map[string]map[string]string{
		"proto": {"X-Forwarded-Proto": "gopher"},
		"uri":   {"X-Forwarded-Uri": "admin"},
	} {
		t.Run("bad "+name, func(t *testing.T) {
			hdr := map[string]string{}
			for k, v := range forwarded {
				hdr[k] = v
			}
			for k, v := range h {
				hdr[k] = v
			}
			if _, err := Parse(checkRequest("/check/traefik", hdr)); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestBrowserLoginIsARedirect(t *testing.T) {
	d := authz.Decision{Outcome: authz.Unauthenticated, Scheme: "Bearer", Browser: true,
		LoginURL: "https://auth.example.com/auth/login?policy=shop%2Fshop&rd=https%3A%2F%2Fshop.example.com%2F", SetCookie: "s=; Max-Age=0"}
	w := httptest.NewRecorder()
	Handler(&recorder{d: d}).ServeHTTP(w, checkRequest("/check/traefik", forwarded))
	if w.Code != http.StatusFound || w.Header().Get("Location") != d.LoginURL {
		t.Fatalf("answer %d Location %q, want 302 to the login page", w.Code, w.Header().Get("Location"))
	}
	if w.Header().Get("Cache-Control") != "no-store" || len(w.Header().Values("Set-Cookie")) != 1 {
		t.Errorf("headers %v: want no-store and one Set-Cookie", w.Header())
	}
	// An API client gets the 401.
	d.Browser = false
	w = httptest.NewRecorder()
	Handler(&recorder{d: d}).ServeHTTP(w, checkRequest("/check/traefik", forwarded))
	if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" {
		t.Fatalf("API client: answer %d, want 401 with WWW-Authenticate", w.Code)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("GET", "https", "shop.example.com", "/a?b=c", "policy=a/b")
	f.Add("", "HTTP", "h", "x", "")
	f.Fuzz(func(t *testing.T, method, proto, host, uri, query string) {
		r := httptest.NewRequest(http.MethodGet, "/check/traefik", nil)
		r.URL.RawQuery = query
		r.Header["X-Forwarded-Method"] = []string{method}
		r.Header["X-Forwarded-Proto"] = []string{proto}
		r.Header["X-Forwarded-Host"] = []string{host}
		r.Header["X-Forwarded-Uri"] = []string{uri}
		req, err := Parse(r)
		if err != nil {
			return
		}
		if !strings.HasPrefix(req.Path, "/") || (req.Scheme != "http" && req.Scheme != "https") || req.Method == "" || req.Host == "" {
			t.Fatalf("Parse accepted %+v", req)
		}
	})
}
