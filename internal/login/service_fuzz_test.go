package login_test

import (
	"bytes"
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	"golang.org/x/time/rate"

	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/login"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/session"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/store/storetest"
	"github.com/authgate/authgate/internal/token"
)

// The fuzz targets of this file send arbitrary bodies, content types, cookies and queries to the
// login, refresh and logout endpoints through the service's mux, without a network server. The
// store holds no session or token, and the client's address has used up its login attempts, so
// that no request can log in and none pays for a bcrypt comparison: everything the handlers parse
// before that is exercised, and whatever comes in, the answer is one of the documented refusals.

// clientAddr is httptest.NewRequest's client address, the one whose login attempts are used up.
const clientAddr = "192.0.2.1"

type fuzzService struct {
	mux   *http.ServeMux
	store *store.Memory
	p     *policy.Policy
	csrf  *login.CSRF
}

func newFuzzService(f *testing.F) *fuzzService {
	f.Helper()
	clock := storetest.NewClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	st := store.NewMemory(store.WithClock(clock.Now))
	f.Cleanup(func() { _ = st.Close() })
	deny, err := authz.NewDenylist(context.Background(), st, clock.Now)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(deny.Close)
	verifier := token.NewVerifier(token.WithClock(clock.Now), token.WithDenylist(deny))
	f.Cleanup(verifier.Close)
	p := compileShop(f, nil)
	snaps := &authz.AtomicSnapshot{}
	snaps.Store(policy.NewSnapshot([]*policy.Policy{p}))
	limiter := login.NewLimiter(login.LimiterConfig{PerIP: rate.Every(1000 * time.Hour), IPBurst: 1, Clock: clock.Now})
	if ok, _ := limiter.Allow(clientAddr, "used up"); !ok {
		f.Fatal("the limiter refused the first attempt")
	}
	svc, err := login.NewService(login.Config{
		Snapshots: snaps, Sessions: session.NewManager(st, clock.Now), Store: st, Tokens: verifier, Key: loginKey,
		Clock: clock.Now, RefreshGrace: grace, Limiter: limiter,
	})
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux)
	return &fuzzService{mux: mux, store: st, p: p, csrf: serviceCSRF(f)}
}

// serve sends one request. Headers are set as they come, without Go's client cleaning them up.
func (s *fuzzService) serve(method, path, query string, header map[string]string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	r.Host = "shop.example.com"
	r.URL.RawQuery = query
	r.RemoteAddr = clientAddr + ":1234"
	for k, v := range header {
		if v != "" {
			r.Header[k] = []string{v}
		}
	}
	w := httptest.NewRecorder()
	s.mux.ServeHTTP(w, r)
	return w
}

// withCSRF adds a valid CSRF cookie to cookie and the matching field to a form body.
func (s *fuzzService) withCSRF(t *testing.T, purpose, cookie string, body []byte) (string, []byte) {
	field, value, err := s.csrf.Issue(purpose)
	if err != nil {
		t.Fatal(err)
	}
	return cookie + "; " + login.CSRFCookieName + "=" + value, append(append([]byte{}, body...), "&csrf="+field...)
}

// checkRefusal checks what every answer of the fuzz targets must be: a status of want, no
// credentials handed out, no session created, and for API clients a JSON error.
func (s *fuzzService) checkRefusal(t *testing.T, w *httptest.ResponseRecorder, api bool, want ...int) {
	t.Helper()
	if !slices.Contains(want, w.Code) {
		t.Fatalf("status %d, want one of %v; body:\n%s", w.Code, want, w.Body)
	}
	for _, sc := range w.Result().Cookies() {
		if (sc.Name == sessionCookie || sc.Name == login.RefreshCookieName) && sc.Value != "" {
			t.Fatalf("a refused request set the %s cookie", sc.Name)
		}
	}
	if n := s.store.Stats().Sessions; n != 0 {
		t.Fatalf("the store holds %d sessions", n)
	}
	if strings.Contains(w.Body.String(), "access_token") {
		t.Fatalf("tokens in a refusal: %s", w.Body)
	}
	if api && w.Code != http.StatusForbidden {
		var e struct {
			Error string `json:"error"`
		}
		ct, _, _ := mime.ParseMediaType(w.Header().Get("Content-Type"))
		if ct != "application/json" || json.Unmarshal(w.Body.Bytes(), &e) != nil || (e.Error == "" && w.Code >= 400) {
			t.Fatalf("an API client got %q: %s", w.Header().Get("Content-Type"), w.Body)
		}
	}
}

func isJSONType(ct string) bool {
	mt, _, _ := mime.ParseMediaType(ct)
	return mt == "application/json"
}

// passwords returns the password values of a form or JSON login body.
func passwords(body []byte) []string {
	var out []string
	if q, err := url.ParseQuery(string(body)); err == nil {
		out = append(out, q["password"]...)
	}
	var c struct {
		Password string `json:"password"`
	}
	if json.Unmarshal(body, &c) == nil && c.Password != "" {
		out = append(out, c.Password)
	}
	return out
}

// FuzzLoginRequest posts arbitrary login forms and JSON bodies: the answer is a refusal (bad
// request, expired form, unknown policy, or too many attempts), never a login, and it never
// repeats the password.
func FuzzLoginRequest(f *testing.F) {
	s := newFuzzService(f)
	form := "application/x-www-form-urlencoded"
	f.Add(form, []byte("email=admin%40example.com&password=correct-horse&rd=%2Forders"), "", "policy=shop/shop", true)
	f.Add(form, []byte("email=admin%40example.com&password=correct-horse&rd=https%3A%2F%2Fevil.com"), "", "", true)
	f.Add(form, []byte("email=a&password=p&csrf=x"), "authgate_csrf=y", "", false)
	f.Add(form, []byte("%zz=1&password=secret-pass"), "", "", true)
	f.Add(form+"; charset=utf-8", []byte(strings.Repeat("a", 17<<10)), "", "", true)
	f.Add("application/json", []byte(`{"email":"admin@example.com","password":"correct-horse"}`), "", "", false)
	f.Add("application/json", []byte(`{"email":"admin@example.com","password":"correct-horse","rd":"//evil.com"}`), "", "", false)
	f.Add("application/json; charset=utf-8", []byte(`{"email":1}`), "", "", false)
	f.Add("application/json", []byte(`{"email":"a","password":"b","extra":true}`), "", "", false)
	f.Add("application/json", []byte(`{"email":"a","password":"b"}{"x":1}`), "", "policy=other/shop", false)
	f.Add("application/JSON", []byte(`[]`), "", "policy=%ZZ", false)
	f.Add("text/plain", []byte("email=a&password=b"), "", "policy=shop/shop&policy=x", true)
	f.Add("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\na\r\n--x--\r\n"), "", "", true)
	f.Fuzz(func(t *testing.T, contentType string, body []byte, cookie, query string, csrf bool) {
		if csrf {
			cookie, body = s.withCSRF(t, "login", cookie, body)
		}
		w := s.serve(http.MethodPost, "/auth/login", query, map[string]string{"Content-Type": contentType, "Cookie": cookie}, body)
		s.checkRefusal(t, w, isJSONType(contentType), http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusTooManyRequests)
		rest := string(body) + cookie + query
		for _, pw := range passwords(body) {
			if len(pw) >= 8 && strings.Count(rest, pw) == 1 && strings.Contains(w.Body.String(), pw) {
				t.Fatalf("the answer repeats the password %q:\n%s", pw, w.Body)
			}
		}
	})
}

// FuzzRefreshRequest posts arbitrary refresh requests (JSON, form, cookie): none names a live
// token, so each is refused as a bad request or an invalid grant, in JSON.
func FuzzRefreshRequest(f *testing.F) {
	s := newFuzzService(f)
	f.Add("application/json", []byte(`{"refresh_token":"abc"}`), "", "")
	f.Add("application/json", []byte(`{"refresh_token":""}`), "authgate_refresh=abc", "policy=shop/shop")
	f.Add("application/json", []byte(`{"refresh_token":1}`), "", "")
	f.Add("application/json", []byte(`{"refresh_token":"a","x":1}`), "", "")
	f.Add("application/json", []byte(`{"refresh_token":"`+strings.Repeat("a", 300)+`"}`), "", "")
	f.Add("application/x-www-form-urlencoded", []byte("refresh_token=abc"), "", "")
	f.Add("application/x-www-form-urlencoded", []byte("%zz"), "authgate_refresh=\"abc\"", "")
	f.Add("", []byte{}, "authgate_refresh=", "")
	f.Add("", []byte{}, "authgate_refresh="+strings.Repeat("x", 257), "")
	f.Fuzz(func(t *testing.T, contentType string, body []byte, cookie, query string) {
		w := s.serve(http.MethodPost, "/auth/refresh", query, map[string]string{"Content-Type": contentType, "Cookie": cookie}, body)
		s.checkRefusal(t, w, true, http.StatusBadRequest, http.StatusUnauthorized)
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("a refresh answer may be cached: %q", w.Header().Get("Cache-Control"))
		}
	})
}

// FuzzLogoutRequest posts arbitrary logout forms and JSON bodies, with or without a valid CSRF
// pair: nothing is logged in, so logging out changes nothing, and a browser is only ever sent to
// the login page or to a return address ValidateRedirect accepts.
func FuzzLogoutRequest(f *testing.F) {
	s := newFuzzService(f)
	form := "application/x-www-form-urlencoded"
	f.Add(form, []byte("rd=%2Forders&everywhere=true"), "", "", "", true)
	f.Add(form, []byte("rd=https%3A%2F%2Fevil.com%2F"), "", "", "", true)
	f.Add(form, []byte("rd=%2F%2Fevil.com"), "", "", "", true)
	f.Add(form, []byte("rd=%2F%5Cevil.com"), "shop_session=abc", "", "", true)
	f.Add(form, []byte("rd=https%3A%2F%2Fshop.example.com%2Fa"), "", "", "policy=shop/shop", true)
	f.Add(form, []byte("rd=%2F"), "", "", "", false)
	f.Add("application/json", []byte(`{"refresh_token":"abc","everywhere":true,"rd":"https://evil.com"}`), "", "", "", false)
	f.Add("application/json", []byte(`{"everywhere":"yes"}`), "", "", "", false)
	f.Add("application/json", []byte(``), "", "Bearer abc", "", false)
	f.Add("", []byte(``), "authgate_refresh=abc", "Bearer e30.e30.e30", "policy=shop/nope", false)
	f.Fuzz(func(t *testing.T, contentType string, body []byte, cookie, authorization, query string, csrf bool) {
		if csrf {
			cookie, body = s.withCSRF(t, "logout", cookie, body)
		}
		w := s.serve(http.MethodPost, "/auth/logout", query,
			map[string]string{"Content-Type": contentType, "Cookie": cookie, "Authorization": authorization}, body)
		api := isJSONType(contentType) || authorization != ""
		s.checkRefusal(t, w, api, http.StatusOK, http.StatusSeeOther, http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound)
		if w.Code != http.StatusSeeOther {
			return
		}
		loc := w.Header().Get("Location")
		if loc == "/auth/login?policy=shop%2Fshop" {
			return
		}
		if again, err := login.ValidateRedirect(s.p, loc, nil); err != nil || again != loc {
			t.Fatalf("logout sent the browser to %q, which ValidateRedirect gives as %q, %v", loc, again, err)
		}
	})
}

// FuzzLoginPage gets the sign-in page with arbitrary queries and cookies: it is a page or a 404,
// always with its security headers, whose markup holds no script, no event handler and no
// javascript: URL whatever was sent, and carries the rd it was given back unchanged.
func FuzzLoginPage(f *testing.F) {
	s := newFuzzService(f)
	for _, q := range []string{
		"policy=shop/shop", "rd=%2Forders", `rd="><script>alert(1)</script>`, "rd=javascript:alert(1)", "policy=<b>x</b>/y",
		"policy=shop/shop&rd=%22%20onfocus%3D%22alert(1)", "rd=%00%0D%0A", "policy=" + strings.Repeat("a", 300) + "/b",
	} {
		f.Add(q, "", false)
	}
	f.Add("", "authgate_csrf=x", false)
	f.Add("rd=/x", "", true)
	f.Fuzz(func(t *testing.T, query, cookie string, logout bool) {
		path := "/auth/login"
		if logout {
			path = "/auth/logout"
		}
		w := s.serve(http.MethodGet, path, query, map[string]string{"Cookie": cookie}, nil)
		if w.Code != http.StatusOK && w.Code != http.StatusNotFound {
			t.Fatalf("status %d:\n%s", w.Code, w.Body)
		}
		if w.Header().Get("Content-Security-Policy") == "" || w.Header().Get("X-Frame-Options") != "DENY" {
			t.Fatalf("the page lacks its security headers: %v", w.Header())
		}
		doc, err := html.Parse(bytes.NewReader(w.Body.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		rd, hasRD := "", false
		for n := range doc.Descendants() {
			if n.Type != html.ElementNode {
				continue
			}
			if n.DataAtom == atom.Script || n.DataAtom == atom.Iframe || n.DataAtom == atom.Object {
				t.Fatalf("the page holds a <%s>:\n%s", n.Data, w.Body)
			}
			for _, a := range n.Attr {
				if strings.HasPrefix(a.Key, "on") || (a.Key == "href" || a.Key == "action" || a.Key == "src") &&
					strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:") {
					t.Fatalf("the page has %s=%q:\n%s", a.Key, a.Val, w.Body)
				}
				if n.DataAtom == atom.Input && a.Key == "name" && a.Val == "rd" {
					hasRD = true
					for _, b := range n.Attr {
						if b.Key == "value" {
							rd = b.Val
						}
					}
				}
			}
		}
		if w.Code != http.StatusOK {
			return
		}
		q, _ := url.ParseQuery(query) // as r.URL.Query(): the pairs that parse
		want := q.Get("rd")
		if !hasRD || !strings.ContainsAny(want, "\x00\r") && strings.ToValidUTF8(want, "\uFFFD") == want && rd != want {
			t.Fatalf("rd %q comes back as %q (form field present: %v)", want, rd, hasRD)
		}
	})
}
