package login

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func newTestCSRF(t *testing.T, key []byte) *CSRF {
	t.Helper()
	c, err := NewCSRF(key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewCSRFNeedsA32ByteKey(t *testing.T) {
	for _, n := range []int{0, 1, 16, 31} {
		if _, err := NewCSRF(make([]byte, n)); err == nil {
			t.Errorf("NewCSRF(%d bytes) succeeded; want an error", n)
		}
	}
	for _, n := range []int{32, 64} {
		if _, err := NewCSRF(make([]byte, n)); err != nil {
			t.Errorf("NewCSRF(%d bytes): %v", n, err)
		}
	}
}

func TestCSRFRoundTrip(t *testing.T) {
	c := newTestCSRF(t, testKey(1))
	field, cookie, err := c.Issue("login")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check("login", field, cookie); err != nil {
		t.Fatalf("Check of an issued pair: %v", err)
	}
	// Another replica with the same key accepts it.
	if err := newTestCSRF(t, testKey(1)).Check("login", field, cookie); err != nil {
		t.Fatalf("Check on another replica: %v", err)
	}
	// Both are base64url without padding: safe in a cookie and a form field as they are.
	for _, v := range []string{field, cookie} {
		if _, err := base64.RawURLEncoding.DecodeString(v); err != nil || strings.ContainsAny(v, "=+/") {
			t.Errorf("%q is not unpadded base64url", v)
		}
	}
	// Every Issue makes a new nonce.
	field2, cookie2, err := c.Issue("login")
	if err != nil {
		t.Fatal(err)
	}
	if cookie2 == cookie || field2 == field {
		t.Fatal("two Issue calls returned the same values")
	}
}

func TestCSRFRefuses(t *testing.T) {
	c := newTestCSRF(t, testKey(1))
	field, cookie, err := c.Issue("login")
	if err != nil {
		t.Fatal(err)
	}
	otherField, otherCookie, err := c.Issue("login")
	if err != nil {
		t.Fatal(err)
	}
	logoutField, _, err := c.Issue("logout")
	if err != nil {
		t.Fatal(err)
	}
	forged, err := newTestCSRF(t, testKey(2)).Field("login", cookie)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(s string) string {
		b := []byte(s)
		if b[0] == 'A' {
			b[0] = 'B'
		} else {
			b[0] = 'A'
		}
		return string(b)
	}
	// The same nonce, spelled with a padding bit set: lenient decoders accept it.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, cookie[len(cookie)-1])
	nonCanonical := cookie[:len(cookie)-1] + string(alphabet[last^1])
	if b, err := base64.RawURLEncoding.DecodeString(nonCanonical); err != nil || base64.RawURLEncoding.EncodeToString(b) != cookie {
		t.Fatalf("test bug: %q is not a lenient spelling of %q", nonCanonical, cookie)
	}

	for _, tc := range []struct {
		name                   string
		purpose, field, cookie string
		want                   error
	}{
		{"missing cookie", "login", field, "", ErrCSRFCookieMissing},
		{"missing field", "login", "", cookie, ErrCSRFFieldMissing},
		{"both missing", "login", "", "", ErrCSRFCookieMissing},
		{"swapped", "login", cookie, field, ErrCSRFMismatch},
		{"field of another cookie", "login", otherField, cookie, ErrCSRFMismatch},
		{"cookie of another field", "login", field, otherCookie, ErrCSRFMismatch},
		{"another purpose", "logout", field, cookie, ErrCSRFMismatch},
		{"field issued for another purpose", "login", logoutField, cookie, ErrCSRFMismatch},
		{"forged with another key", "login", forged, cookie, ErrCSRFMismatch},
		{"field altered", "login", flip(field), cookie, ErrCSRFMismatch},
		{"cookie altered", "login", field, flip(cookie), ErrCSRFMismatch},
		{"cookie not canonical", "login", field, nonCanonical, ErrCSRFMismatch},
		{"field padded", "login", field + "=", cookie, ErrCSRFMismatch},
		{"field truncated", "login", field[:len(field)-1], cookie, ErrCSRFMismatch},
		{"field in standard base64", "login", strings.NewReplacer("-", "+", "_", "/").Replace(field) + "+", cookie, ErrCSRFMismatch},
		{"cookie too long", "login", field, strings.Repeat("A", 1<<20), ErrCSRFMismatch},
		{"field too short", "login", "x", cookie, ErrCSRFMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Check(tc.purpose, tc.field, tc.cookie)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Check = %v; want %v", err, tc.want)
			}
			for _, v := range []string{field, cookie, tc.field, tc.cookie} {
				if len(v) > 8 && strings.Contains(err.Error(), v) {
					t.Fatalf("error %q repeats a value", err)
				}
			}
		})
	}
	if err := c.Check("", field, cookie); err == nil {
		t.Error("Check with an empty purpose passed")
	}
	if _, _, err := c.Issue(""); err == nil {
		t.Error("Issue with an empty purpose succeeded")
	}
}

func TestCSRFFieldReusesTheCookie(t *testing.T) {
	c := newTestCSRF(t, testKey(1))
	field, cookie, err := c.Issue("login")
	if err != nil {
		t.Fatal(err)
	}
	// A second form (another tab, or logout) for the cookie the browser holds.
	again, err := c.Field("login", cookie)
	if err != nil {
		t.Fatal(err)
	}
	if again != field {
		t.Errorf("Field = %q; want the field Issue returned, %q", again, field)
	}
	logout, err := c.Field("logout", cookie)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check("logout", logout, cookie); err != nil {
		t.Errorf("Check(logout): %v", err)
	}
	if _, err := c.Field("login", ""); !errors.Is(err, ErrCSRFCookieMissing) {
		t.Errorf("Field without a cookie: %v", err)
	}
	if _, err := c.Field("login", "not-a-cookie"); !errors.Is(err, ErrCSRFMismatch) {
		t.Errorf("Field with a malformed cookie: %v", err)
	}
}

func TestCSRFCookieAttributes(t *testing.T) {
	ck := CSRFCookie("v")
	if ck.Name != CSRFCookieName || ck.Value != "v" || ck.Path != "/auth/" || !ck.Secure || !ck.HttpOnly ||
		ck.SameSite != http.SameSiteStrictMode || ck.Domain != "" || ck.MaxAge != 0 {
		t.Fatalf("CSRFCookie = %+v", ck)
	}
	if err := ck.Valid(); err != nil {
		t.Fatal(err)
	}
	s := ck.String()
	for _, want := range []string{"authgate_csrf=v", "Path=/auth/", "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(s, want) {
			t.Errorf("Set-Cookie %q lacks %q", s, want)
		}
	}
}

func TestCrossOrigin(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := CrossOrigin().Handler(ok)
	for _, tc := range []struct {
		name, method string
		headers      map[string]string
		want         int
	}{
		{"cross-site post", "POST", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"same-site post (a sibling subdomain)", "POST", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"cross-site post with a lying Origin", "POST", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://auth.example.com"}, http.StatusForbidden},
		{"cross-site logout", "POST", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"cross-site put", "PUT", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"old browser, other origin", "POST", map[string]string{"Origin": "https://evil.com"}, http.StatusForbidden},
		{"old browser, sibling origin", "POST", map[string]string{"Origin": "https://evil.example.com"}, http.StatusForbidden},
		{"same-origin post", "POST", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "https://auth.example.com"}, http.StatusNoContent},
		{"typed into the address bar", "POST", map[string]string{"Sec-Fetch-Site": "none"}, http.StatusNoContent},
		{"old browser, same origin", "POST", map[string]string{"Origin": "https://auth.example.com"}, http.StatusNoContent},
		{"no browser headers (curl)", "POST", nil, http.StatusNoContent},
		{"cross-site get (a link to the login page)", "GET", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusNoContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "https://auth.example.com/auth/login?policy=shop%2Fshop", strings.NewReader("email=a"))
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status %d; want %d", w.Code, tc.want)
			}
		})
	}
}

// TestCSRFBothDefences is the login form as the handlers will use it: the protection wraps the
// handler, and the handler checks the token.
func TestCSRFBothDefences(t *testing.T) {
	c := newTestCSRF(t, testKey(7))
	h := CrossOrigin().Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var cookie string
		if ck, err := r.Cookie(CSRFCookieName); err == nil {
			cookie = ck.Value
		}
		if err := c.Check("login", r.PostFormValue("csrf"), cookie); err != nil {
			http.Error(w, "form expired", http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	field, cookie, err := c.Issue("login")
	if err != nil {
		t.Fatal(err)
	}
	post := func(site, field string, withCookie bool) int {
		r := httptest.NewRequest("POST", "https://auth.example.com/auth/login", strings.NewReader("csrf="+field))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if site != "" {
			r.Header.Set("Sec-Fetch-Site", site)
		}
		if withCookie {
			r.AddCookie(CSRFCookie(cookie))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if got := post("same-origin", field, true); got != http.StatusNoContent {
		t.Errorf("same-origin post with token: %d", got)
	}
	if got := post("cross-site", field, true); got != http.StatusForbidden {
		t.Errorf("cross-site post even with a token: %d", got)
	}
	// An old browser sends neither header: only the token stops the forged post.
	if got := post("", "", true); got != http.StatusForbidden {
		t.Errorf("post without Sec-Fetch-Site and without token: %d", got)
	}
	if got := post("", field, false); got != http.StatusForbidden {
		t.Errorf("post without the cookie: %d", got)
	}
	if got := post("", field, true); got != http.StatusNoContent {
		t.Errorf("old browser with token: %d", got)
	}
}
