package login_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"sigs.k8s.io/yaml"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/login"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/session"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/store/storetest"
	"github.com/authgate/authgate/internal/token"
)

// These tests put objects in (a compiled fixture policy, store records, sessions, tokens) and look
// at what comes out on the wire of a real HTTP server: status, headers, cookies and bodies. Cookies
// are handled by hand rather than by a cookie jar, because the service's cookies are Secure and
// scoped to .example.com while the test server is plain http on 127.0.0.1: a jar would (rightly)
// refuse to send them, and the attributes are what the tests check anyway.

const (
	shopRef       = "shop/shop"
	admin         = "admin@example.com"
	viewer        = "viewer@example.com"
	sessionCookie = "shop_session" // the fixture policy's session cookie
	accessTTL     = 15 * time.Minute
	refreshTTL    = 168 * time.Hour
	grace         = 10 * time.Second
)

// loginKey is Config.Key in every test.
var loginKey = bytes.Repeat([]byte{0x5a}, 32)

// env is a Service over the fixture policy with a memory store, a fake clock and a denylist fed by
// the store, served by an httptest.Server.
type env struct {
	t        *testing.T
	clock    *storetest.Clock
	store    *store.Memory
	sessions *session.Manager
	verifier *token.Verifier
	snaps    *authz.AtomicSnapshot
	srv      *httptest.Server
	client   *http.Client
}

// newEnv builds an env; configure may change the Config before the Service is built. The default
// Limiter never limits, so that tests that log in many times are not refused; the rate-limit test
// sets its own.
func newEnv(t *testing.T, configure func(*login.Config, *storetest.Clock)) *env {
	t.Helper()
	clock := storetest.NewClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	st := store.NewMemory(store.WithClock(clock.Now))
	t.Cleanup(func() { _ = st.Close() })
	deny, err := authz.NewDenylist(context.Background(), st, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(deny.Close)
	verifier := token.NewVerifier(token.WithClock(clock.Now), token.WithDenylist(deny))
	t.Cleanup(verifier.Close)
	sessions := session.NewManager(st, clock.Now)
	p := compileShop(t, nil)
	snaps := &authz.AtomicSnapshot{}
	snaps.Store(policy.NewSnapshot([]*policy.Policy{p}))

	cfg := login.Config{
		Snapshots: snaps, Sessions: sessions, Store: st, Tokens: verifier, Key: loginKey,
		Clock: clock.Now, RefreshGrace: grace,
		Limiter: login.NewLimiter(login.LimiterConfig{PerIP: rate.Inf, PerAccount: rate.Inf}),
	}
	if configure != nil {
		configure(&cfg, clock)
	}
	svc, err := login.NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &env{t: t, clock: clock, store: st, sessions: sessions, verifier: verifier, snaps: snaps, srv: srv, client: client}
}

// with returns the env for a subtest: helpers report to t.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// policy returns the policy loaded now.
func (e *env) policy() *policy.Policy {
	p, ok := e.snaps.Load().Get(policy.Ref{Namespace: "shop", Name: "shop"})
	if !ok {
		panic("the shop policy is not loaded")
	}
	return p
}

// userEntry is one user of the fixture's users.yaml.
type userEntry struct {
	ID           string   `json:"id,omitempty"`
	Email        string   `json:"email"`
	Name         string   `json:"name,omitempty"`
	PasswordHash string   `json:"passwordHash"`
	Roles        []string `json:"roles,omitempty"`
	Disabled     bool     `json:"disabled,omitempty"`
}

// compileShop compiles the fixture policy; editUsers, when not nil, rewrites its users Secret.
func compileShop(t testing.TB, editUsers func([]userEntry) []userEntry) *policy.Policy {
	t.Helper()
	secrets := fixture.Secrets()
	if editUsers != nil {
		var users []userEntry
		if err := yaml.UnmarshalStrict(secrets["shop-users"][authgatev1.UsersSecretKey], &users); err != nil {
			t.Fatalf("reading the fixture's users: %v", err)
		}
		out, err := yaml.Marshal(editUsers(users))
		if err != nil {
			t.Fatal(err)
		}
		secrets["shop-users"] = map[string][]byte{authgatev1.UsersSecretKey: out}
	}
	p, err := policy.Compile(fixture.AuthPolicy(), secrets)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// publish replaces the loaded policy, as a reload of the policy source does.
func (e *env) publish(p *policy.Policy) {
	e.snaps.Store(policy.NewSnapshot([]*policy.Policy{p}))
}

func (e *env) user(email string) policy.User {
	e.t.Helper()
	u, ok := e.policy().Login().User(email)
	if !ok {
		e.t.Fatalf("no user %s", email)
	}
	return u
}

// newSession starts a session the way a login does, without the HTTP round trip.
func (e *env) newSession(email string) string {
	e.t.Helper()
	id, _, err := e.sessions.Create(context.Background(), e.policy(), e.user(email))
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// sessionLive reports whether id is a live session of the policy, failing on store errors.
func (e *env) sessionLive(id string) bool {
	e.t.Helper()
	_, err := e.sessions.Check(context.Background(), e.policy(), id)
	if err != nil && !errors.Is(err, session.ErrNoSession) {
		e.t.Fatalf("checking a session: %v", err)
	}
	return err == nil
}

// newFamily stores the first refresh token of a login family and signs an access token of it: the
// records a login would create, put in directly.
func (e *env) newFamily(email string) (refresh, access string) {
	e.t.Helper()
	u := e.user(email)
	family, refresh := randomString(e.t), randomString(e.t)
	now := e.clock.Now()
	err := e.store.CreateRefreshToken(context.Background(), store.KeyOf(refresh), store.RefreshToken{
		Policy: shopRef, UserID: u.ID, Email: u.Email, Family: family, IssuedAt: now, ExpiresAt: now.Add(refreshTTL),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	access, _, err = token.Issue(e.policy(), u, family, now)
	if err != nil {
		e.t.Fatal(err)
	}
	return refresh, access
}

func randomString(t testing.TB) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// verify checks an access token as the decision core would, under the current policy.
func (e *env) verify(access string) (*token.Claims, error) {
	return e.verifier.Verify(context.Background(), e.policy(), access)
}

// wantRevoked fails unless the verifier refuses access with reason "revoked".
func (e *env) wantRevoked(access, what string) {
	e.t.Helper()
	_, err := e.verify(access)
	var te *token.Error
	if !errors.As(err, &te) || te.Reason != token.Revoked {
		e.t.Errorf("%s: Verify = %v, want a token.Error with reason %q", what, err, token.Revoked)
	}
}

// request describes one HTTP request to the service.
type request struct {
	method string
	path   string // with the query
	host   string // the Host header; the server's address when empty
	header map[string]string
	// cookies are sent in the Cookie header.
	cookies []*http.Cookie
	// form, when not nil, is sent as application/x-www-form-urlencoded.
	form url.Values
	// json, when not empty, is sent as application/json.
	json string
}

// response is a response with its body read.
type response struct {
	*http.Response
	body string
	t    testing.TB
}

func (e *env) do(r request) *response {
	e.t.Helper()
	var body io.Reader
	if r.form != nil {
		body = strings.NewReader(r.form.Encode())
	} else if r.json != "" {
		body = strings.NewReader(r.json)
	}
	req, err := http.NewRequest(r.method, e.srv.URL+r.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if r.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else if r.json != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	if r.host != "" {
		req.Host = r.host
	}
	for _, c := range r.cookies {
		req.AddCookie(c)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return &response{Response: resp, body: string(b), t: e.t}
}

// setCookie returns the Set-Cookie of the response for name, or nil. Two for one name is an error:
// browsers keep the last, proxies such as nginx the first.
func (r *response) setCookie(name string) *http.Cookie {
	r.t.Helper()
	var found *http.Cookie
	for _, c := range r.Cookies() {
		if c.Name == name {
			if found != nil {
				r.t.Errorf("two Set-Cookie headers for %s: %q", name, r.Header.Values("Set-Cookie"))
			}
			found = c
		}
	}
	return found
}

// decode reads the body as a JSON object.
func (r *response) decode(t testing.TB, v any) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, want application/json; body %q", ct, r.body)
	}
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

// apiError is the JSON error body.
func (r *response) apiError(t testing.TB) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	r.decode(t, &e)
	return e.Error
}

func (r *response) want(t testing.TB, status int) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body %q", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, r.body)
	}
}

// tokenPair is the token answer.
type tokenPair struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func (e *env) jsonLogin(email, password string, cookies ...*http.Cookie) *response {
	e.t.Helper()
	return e.do(request{method: "POST", path: "/auth/login?policy=" + shopRef,
		json: mustJSON(map[string]string{"email": email, "password": password}), cookies: cookies})
}

// tokens logs in with JSON and returns the token answer.
func (e *env) tokens(email string) tokenPair {
	e.t.Helper()
	r := e.jsonLogin(email, fixture.Password)
	r.want(e.t, http.StatusOK)
	var p tokenPair
	r.decode(e.t, &p)
	return p
}

func (e *env) refresh(refreshToken string) *response {
	e.t.Helper()
	return e.do(request{method: "POST", path: "/auth/refresh", json: mustJSON(map[string]string{"refresh_token": refreshToken})})
}

// page is a login page as served.
type page struct {
	resp  *response
	field string       // the csrf form field
	csrf  *http.Cookie // the CSRF cookie the browser holds after the page
}

var csrfField = regexp.MustCompile(`<input type="hidden" name="csrf" value="([^"]*)">`)

// loginPage gets the login page, sending cookies.
func (e *env) loginPage(cookies ...*http.Cookie) page {
	e.t.Helper()
	r := e.do(request{method: "GET", path: "/auth/login?policy=" + shopRef, cookies: cookies})
	r.want(e.t, http.StatusOK)
	m := csrfField.FindStringSubmatch(r.body)
	if m == nil || m[1] == "" {
		e.t.Fatalf("no csrf field in the login page:\n%s", r.body)
	}
	pg := page{resp: r, field: m[1], csrf: r.setCookie(login.CSRFCookieName)}
	if pg.csrf == nil {
		for _, c := range cookies {
			if c.Name == login.CSRFCookieName {
				pg.csrf = c
			}
		}
	}
	if pg.csrf == nil {
		e.t.Fatal("the login page set no CSRF cookie and none was sent")
	}
	return pg
}

// formLogin posts the login form of pg.
func (e *env) formLogin(pg page, email, password, rd string, extra ...*http.Cookie) *response {
	e.t.Helper()
	form := url.Values{"email": {email}, "password": {password}, "csrf": {pg.field}}
	if rd != "" {
		form.Set("rd", rd)
	}
	return e.do(request{method: "POST", path: "/auth/login?policy=" + shopRef, form: form,
		cookies: append([]*http.Cookie{{Name: login.CSRFCookieName, Value: pg.csrf.Value}}, extra...)})
}

var alertText = regexp.MustCompile(`role="alert">([^<]*)<`)

// pageAlert returns the message the login page shows, if any.
func pageAlert(body string) string {
	if m := alertText.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

// noLogin fails if the response started a session or a token family, or if the store holds more
// sessions than before.
func (e *env) noLogin(r *response, sessionsBefore int) {
	e.t.Helper()
	for _, name := range []string{sessionCookie, login.RefreshCookieName} {
		if c := r.setCookie(name); c != nil && c.Value != "" {
			e.t.Errorf("a refused login set the %s cookie", name)
		}
	}
	if got := e.store.Stats().Sessions; got != sessionsBefore {
		e.t.Errorf("the store holds %d sessions, want %d: a refused login created one", got, sessionsBefore)
	}
	if strings.Contains(r.body, "access_token") {
		e.t.Errorf("a refused login answered tokens: %s", r.body)
	}
}

// serviceCSRF is a CSRF keyed as NewService keys its own (HMAC-SHA256 of Config.Key with the label
// "authgate csrf"). No endpoint hands out fields for other purposes than "login" (see
// TestFormLogout), so the tests that need one make it with this copy; checkServiceCSRF first proves
// the copy agrees with the service.
func serviceCSRF(t testing.TB) *login.CSRF {
	t.Helper()
	m := hmac.New(sha256.New, loginKey)
	m.Write([]byte("authgate csrf"))
	c, err := login.NewCSRF(m.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkServiceCSRF fails the test if the test's copy of the key derivation no longer gives the
// fields the login page serves.
func checkServiceCSRF(t testing.TB, c *login.CSRF, pg page) {
	t.Helper()
	f, err := c.Field("login", pg.csrf.Value)
	if err != nil || f != pg.field {
		t.Fatalf("the test's copy of the CSRF key derivation no longer matches login.NewService (field %q, err %v): update serviceCSRF", f, err)
	}
}

func TestNewServiceRefusesAShortKey(t *testing.T) {
	_, err := login.NewService(login.Config{Key: make([]byte, 31)})
	if err == nil || !strings.Contains(err.Error(), "32 bytes") {
		t.Fatalf("NewService with a 31-byte key: %v", err)
	}
}

func TestLoginPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)

	first := e.loginPage()
	h := first.resp.Header
	for name, want := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Content-Security-Policy": login.LoginPageCSP(),
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "same-origin",
		"Cache-Control":           "no-store",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q allows too much", csp)
	}
	c := first.csrf
	if c.Name != login.CSRFCookieName || c.Value == "" || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/auth/" {
		t.Errorf("CSRF cookie %s: want a value, HttpOnly, Secure, SameSite=Strict, Path=/auth/", c)
	}
	if !strings.Contains(first.resp.body, `action="/auth/login?policy=shop%2fshop"`) && !strings.Contains(first.resp.body, `action="/auth/login?policy=shop%2Fshop"`) {
		t.Errorf("the form does not post to the policy's login:\n%s", first.resp.body)
	}

	// A second page in the same browser (a second tab) keeps the cookie, so the first form stays
	// valid, and gets a field that validates against it.
	second := e.loginPage(&http.Cookie{Name: login.CSRFCookieName, Value: c.Value})
	if sc := second.resp.setCookie(login.CSRFCookieName); sc != nil {
		t.Errorf("the second page replaced the CSRF cookie: %s", sc)
	}
	if second.csrf.Value != c.Value {
		t.Fatal("the second page does not use the browser's CSRF cookie")
	}
	r := e.formLogin(second, admin, fixture.Password, "https://shop.example.com/")
	r.want(t, http.StatusSeeOther)
	// ... and the first tab's form still works too.
	r = e.formLogin(first, viewer, fixture.Password, "https://shop.example.com/")
	r.want(t, http.StatusSeeOther)

	// A CSRF cookie that is not one authgate issued is replaced.
	junk := e.loginPage(&http.Cookie{Name: login.CSRFCookieName, Value: "junk"})
	if sc := junk.resp.setCookie(login.CSRFCookieName); sc == nil || sc.Value == "junk" {
		t.Errorf("a malformed CSRF cookie was kept: %v", sc)
	}

	for name, path := range map[string]string{
		"unknown policy":      "/auth/login?policy=shop/nope",
		"malformed policy":    "/auth/login?policy=nope",
		"host of no policy":   "/auth/login",
		"unknown with rd set": "/auth/login?policy=x/y&rd=https://shop.example.com/",
	} {
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			r := e.do(request{method: "GET", path: path})
			r.want(t, http.StatusNotFound)
			if r.Header.Get("X-Frame-Options") != "DENY" || r.Header.Get("Content-Security-Policy") == "" {
				t.Errorf("the 404 page lacks the page security headers: %v", r.Header)
			}
			if r.setCookie(login.CSRFCookieName) != nil {
				t.Error("a 404 page set a CSRF cookie")
			}
		})
	}
}

func TestFormLoginRefusesMissingOrForgedCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	pg := e.loginPage()
	other := e.loginPage() // another browser: another cookie
	replica := serviceCSRF(t)
	checkServiceCSRF(t, replica, pg)
	logoutField, err := replica.Field("logout", pg.csrf.Value)
	if err != nil {
		t.Fatal(err)
	}
	form := func(field string) url.Values {
		f := url.Values{"email": {admin}, "password": {fixture.Password}, "rd": {"https://shop.example.com/"}}
		if field != "" {
			f.Set("csrf", field)
		}
		return f
	}
	cookie := func(v string) []*http.Cookie { return []*http.Cookie{{Name: login.CSRFCookieName, Value: v}} }
	forged := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))

	cases := map[string]struct {
		form    url.Values
		cookies []*http.Cookie
	}{
		"no field":                 {form(""), cookie(pg.csrf.Value)},
		"no cookie":                {form(pg.field), nil},
		"neither":                  {form(""), nil},
		"forged field":             {form(forged), cookie(pg.csrf.Value)},
		"field of another cookie":  {form(other.field), cookie(pg.csrf.Value)},
		"field for another form":   {form(logoutField), cookie(pg.csrf.Value)},
		"cookie as the field":      {form(pg.csrf.Value), cookie(pg.csrf.Value)},
		"field forged for its own": {form(forged), cookie(base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32)))},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			r := e.do(request{method: "POST", path: "/auth/login?policy=" + shopRef, form: tc.form, cookies: tc.cookies})
			r.want(t, http.StatusForbidden)
			e.noLogin(r, 0)
			if pageAlert(r.body) == "" {
				t.Errorf("the refusal does not show the form again with a message:\n%s", r.body)
			}
		})
	}
}

func TestFormLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)

	t.Run("valid", func(t *testing.T) {
		e := e.with(t)
		pg := e.loginPage()
		r := e.formLogin(pg, admin, fixture.Password, "https://shop.example.com/orders?tab=items")
		r.want(t, http.StatusSeeOther)
		if loc := r.Header.Get("Location"); loc != "https://shop.example.com/orders?tab=items" {
			t.Errorf("Location %q", loc)
		}
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", r.Header.Get("Cache-Control"))
		}
		c := r.setCookie(sessionCookie)
		if c == nil {
			t.Fatal("no session cookie")
		}
		if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || strings.TrimPrefix(c.Domain, ".") != "example.com" || c.Path != "/" {
			t.Errorf("session cookie %s: want HttpOnly, Secure, SameSite=Lax, Domain=example.com, Path=/ (from the policy)", c)
		}
		if c.MaxAge != int((168 * time.Hour).Seconds()) {
			t.Errorf("session cookie Max-Age %d, want the policy's ttl", c.MaxAge)
		}
		res, err := e.sessions.Check(context.Background(), e.policy(), c.Value)
		if err != nil || res.User.Email != admin {
			t.Fatalf("the cookie's session: %+v, %v", res.User, err)
		}
		// The policy issues tokens: the browser gets its refresh token, for /auth/ only.
		rc := r.setCookie(login.RefreshCookieName)
		if rc == nil || rc.Value == "" || rc.Path != "/auth/" || !rc.HttpOnly || !rc.Secure || rc.SameSite != http.SameSiteStrictMode {
			t.Errorf("refresh cookie %v: want a value, Path=/auth/, HttpOnly, Secure, SameSite=Strict", rc)
		}
	})

	t.Run("hostile rd", func(t *testing.T) {
		e := e.with(t)
		for _, rd := range []string{"//evil.com", "https://evil.com", "https://evil.com/https://shop.example.com/", "/\\evil.com", "https://shop.example.com@evil.com/", "javascript:alert(1)"} {
			before := e.store.Stats().Sessions
			r := e.formLogin(e.loginPage(), admin, fixture.Password, rd)
			if r.StatusCode != http.StatusBadRequest {
				t.Errorf("rd %q: status %d, want 400 (Location %q)", rd, r.StatusCode, r.Header.Get("Location"))
				continue
			}
			if loc := r.Header.Get("Location"); loc != "" {
				t.Errorf("rd %q: Location %q on a refusal", rd, loc)
			}
			e.noLogin(r, before)
		}
	})

	t.Run("no rd goes to the root of the login host", func(t *testing.T) {
		e := e.with(t)
		pg := e.loginPage()
		form := url.Values{"email": {admin}, "password": {fixture.Password}, "csrf": {pg.field}}
		r := e.do(request{method: "POST", path: "/auth/login?policy=" + shopRef, form: form, host: "auth.example.com",
			header:  map[string]string{"X-Forwarded-Proto": "https"},
			cookies: []*http.Cookie{{Name: login.CSRFCookieName, Value: pg.csrf.Value}}})
		r.want(t, http.StatusSeeOther)
		loc, err := url.Parse(r.Header.Get("Location"))
		if err != nil || loc.Path != "/" || (loc.Host != "" && loc.Host != "auth.example.com") || loc.RawQuery != "" {
			t.Errorf("Location %q, want / on the login host", r.Header.Get("Location"))
		}
		if r.setCookie(sessionCookie) == nil {
			t.Error("no session cookie")
		}
	})

	t.Run("no rd on a login host outside allowedRedirectDomains", func(t *testing.T) {
		e := e.with(t)
		// The login page opened directly, without rd, on a host the policy does not redirect to
		// (here the test server's 127.0.0.1; with `make run`, http://localhost:8080). The return
		// address is then authgate's own default, "/", not input from anyone: a correct password
		// must log the user in and send them to "/" on the host they are on.
		r := e.formLogin(e.loginPage(), admin, fixture.Password, "")
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("status %d, want 303 to /: a login without rd fails whenever the login host is not in "+
				"allowedRedirectDomains, because the default \"/\" is validated like user input; the page says %q", r.StatusCode, pageAlert(r.body))
		}
		loc, err := url.Parse(r.Header.Get("Location"))
		if err != nil || loc.Path != "/" || (loc.Host != "" && loc.Host != r.Request.URL.Host) {
			t.Errorf("Location %q, want / on the host of the login page", r.Header.Get("Location"))
		}
	})
}

func TestLoginGivesAFreshSessionID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	planted, err := session.NewID()
	if err != nil {
		t.Fatal(err)
	}
	// An attacker's own live session, planted in the victim's browser, is not the one the victim
	// ends up with either.
	attackers := e.newSession(viewer)
	for name, id := range map[string]string{"unknown id": planted, "attacker's session": attackers} {
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			r := e.formLogin(e.loginPage(), admin, fixture.Password, "https://shop.example.com/", &http.Cookie{Name: sessionCookie, Value: id})
			r.want(t, http.StatusSeeOther)
			c := r.setCookie(sessionCookie)
			if c == nil || c.Value == "" {
				t.Fatal("no session cookie")
			}
			if c.Value == id {
				t.Fatal("the login kept the session ID the browser sent (session fixation)")
			}
			res, err := e.sessions.Check(context.Background(), e.policy(), c.Value)
			if err != nil || res.User.Email != admin {
				t.Fatalf("the new session: %+v, %v", res.User, err)
			}
			if res, err := e.sessions.Check(context.Background(), e.policy(), id); err == nil && res.User.Email == admin {
				t.Fatal("the planted ID became the victim's session")
			}
		})
	}
	if e.sessionLive(planted) {
		t.Error("the planted unknown ID became a session")
	}
}

func TestJSONLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)

	t.Run("valid", func(t *testing.T) {
		e := e.with(t)
		r := e.jsonLogin("  Admin@Example.com ", fixture.Password)
		r.want(t, http.StatusOK)
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q: a token answer must not be cached", r.Header.Get("Cache-Control"))
		}
		var raw map[string]any
		r.decode(t, &raw)
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range raw {
				if !yield(k) {
					return
				}
			}
		})
		if !slices.Equal(keys, []string{"access_token", "expires_in", "refresh_token", "token_type"}) {
			t.Errorf("members %v, want access_token, expires_in, refresh_token, token_type", keys)
		}
		var p tokenPair
		r.decode(t, &p)
		if p.TokenType != "Bearer" || p.ExpiresIn != 900 || p.AccessToken == "" || p.RefreshToken == "" {
			t.Errorf("answer %+v, want token_type Bearer, expires_in 900 and both tokens", p)
		}
		claims, err := e.verify(p.AccessToken)
		if err != nil {
			t.Fatalf("the access token does not verify: %v", err)
		}
		if claims.Subject != admin || claims.Email != admin || !slices.Equal(claims.Roles, []string{"admin", "editor"}) ||
			claims.SessionID == "" || !claims.ExpiresAt.Equal(e.clock.Now().Add(accessTTL)) {
			t.Errorf("claims %+v", claims)
		}
		c := r.setCookie(sessionCookie)
		if c == nil || !c.HttpOnly || !e.sessionLive(c.Value) {
			t.Errorf("session cookie %v: want a live session (the policy has sessions)", c)
		}
	})

	t.Run("wrong password and unknown email look the same", func(t *testing.T) {
		e := e.with(t)
		wrong := e.jsonLogin(admin, "not-the-password")
		unknown := e.jsonLogin("nobody@example.com", fixture.Password)
		for _, r := range []*response{wrong, unknown} {
			r.want(t, http.StatusUnauthorized)
			if got := r.apiError(t); got != "invalid_credentials" {
				t.Errorf("error %q", got)
			}
			if r.setCookie(sessionCookie) != nil {
				t.Error("a failed login set a session cookie")
			}
		}
		if wrong.body != unknown.body {
			t.Errorf("bodies differ:\nwrong password: %s\nunknown email:  %s", wrong.body, unknown.body)
		}
		if wrong.Header.Get("Content-Type") != unknown.Header.Get("Content-Type") {
			t.Error("headers differ")
		}
	})

	t.Run("bad bodies", func(t *testing.T) {
		e := e.with(t)
		before := e.store.Stats().Sessions
		for _, body := range []string{
			`{"email":"admin@example.com","password":"fixture-password","remember":true}`,
			`{"email":"admin@example.com",`,
			`["admin@example.com"]`,
			`{"email":1}`,
		} {
			r := e.do(request{method: "POST", path: "/auth/login?policy=" + shopRef, json: body})
			r.want(t, http.StatusBadRequest)
			if got := r.apiError(t); got != "invalid_request" {
				t.Errorf("%s: error %q", body, got)
			}
			e.noLogin(r, before)
		}
	})

	t.Run("unknown policy", func(t *testing.T) {
		e := e.with(t)
		r := e.do(request{method: "POST", path: "/auth/login?policy=x/y", json: mustJSON(map[string]string{"email": admin, "password": fixture.Password})})
		r.want(t, http.StatusNotFound)
	})

	t.Run("hostile rd", func(t *testing.T) {
		e := e.with(t)
		r := e.do(request{method: "POST", path: "/auth/login?policy=" + shopRef,
			json: mustJSON(map[string]string{"email": admin, "password": fixture.Password, "rd": "https://evil.com/"})})
		r.want(t, http.StatusBadRequest)
		if got := r.apiError(t); got != "invalid_redirect" {
			t.Errorf("error %q", got)
		}
	})
}

func TestDisabledUserCannotLogIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	wrong := e.jsonLogin(viewer, "not-the-password")
	wrong.want(t, http.StatusUnauthorized)
	e.publish(compileShop(t, func(users []userEntry) []userEntry {
		for i := range users {
			if users[i].Email == viewer {
				users[i].Disabled = true
			}
		}
		return users
	}))
	if u := e.user(viewer); !u.Disabled {
		t.Fatal("the edited directory does not disable the viewer")
	}
	r := e.jsonLogin(viewer, fixture.Password)
	r.want(t, http.StatusUnauthorized)
	if r.body != wrong.body {
		t.Errorf("a disabled user's refusal differs from a wrong password's: %s vs %s", r.body, wrong.body)
	}
	e.noLogin(r, 0)

	pg := e.loginPage()
	f := e.formLogin(pg, viewer, fixture.Password, "https://shop.example.com/")
	f.want(t, http.StatusUnauthorized)
	e.noLogin(f, 0)
	if !strings.Contains(f.body, "Wrong email or password.") {
		t.Errorf("form refusal:\n%s", f.body)
	}
}

func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *login.Config, clock *storetest.Clock) {
		c.Limiter = login.NewLimiter(login.LimiterConfig{
			PerIP: rate.Inf, PerAccount: rate.Every(time.Hour), AccountBurst: 3, Clock: clock.Now,
		})
	})
	for i := range 3 {
		e.jsonLogin(admin, "guess-"+strconv.Itoa(i)).want(t, http.StatusUnauthorized)
	}
	for _, email := range []string{admin, "ADMIN@example.com"} {
		r := e.jsonLogin(email, fixture.Password)
		r.want(t, http.StatusTooManyRequests)
		retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if err != nil || retry < 1 {
			t.Errorf("%s: Retry-After %q, want whole seconds >= 1", email, r.Header.Get("Retry-After"))
		}
		if got := r.apiError(t); got != "rate_limited" {
			t.Errorf("error %q", got)
		}
		e.noLogin(r, 0)
	}
	// The form gets the same answer, as a page.
	f := e.formLogin(e.loginPage(), admin, fixture.Password, "https://shop.example.com/")
	f.want(t, http.StatusTooManyRequests)
	if f.Header.Get("Retry-After") == "" || !strings.Contains(f.Header.Get("Content-Type"), "text/html") {
		t.Errorf("form 429: headers %v", f.Header)
	}
	e.noLogin(f, 0)

	// Another account is not affected.
	e.jsonLogin(viewer, fixture.Password).want(t, http.StatusOK)

	// It is a rate, not a lock-out: once the bucket refills, the owner gets in.
	e.clock.Advance(time.Hour)
	e.jsonLogin(admin, fixture.Password).want(t, http.StatusOK)
}

// medianLoginTimes measures n failed JSON logins for each of two (email, password) pairs,
// interleaved so that a slow moment of the machine hits both alike, and returns the medians.
func medianLoginTimes(e *env, n int, a, b [2]string) (time.Duration, time.Duration) {
	e.t.Helper()
	var da, db []time.Duration
	measure := func(c [2]string) time.Duration {
		start := time.Now()
		r := e.jsonLogin(c[0], c[1])
		d := time.Since(start)
		r.want(e.t, http.StatusUnauthorized)
		return d
	}
	for range n {
		da = append(da, measure(a))
		db = append(db, measure(b))
	}
	slices.Sort(da)
	slices.Sort(db)
	return da[n/2], db[n/2]
}

// TestUnknownEmailCostsABcryptComparison: an unknown email must take about as long as a wrong
// password, or response times tell who has an account. Only a large gap fails (unknown < 0.3 x
// known), so that a noisy machine does not; skipping the bcrypt comparison would be 1000x faster.
func TestUnknownEmailCostsABcryptComparison(t *testing.T) {
	e := newEnv(t, nil)
	known, unknown := medianLoginTimes(e, 3, [2]string{admin, "not-the-password"}, [2]string{"nobody@example.com", "not-the-password"})
	t.Logf("median wrong password %v, unknown email %v", known, unknown)
	if unknown < known*3/10 {
		t.Errorf("an unknown email took %v, a wrong password %v: the unknown email skipped the bcrypt comparison", unknown, known)
	}
}

// cost12Hash is a bcrypt hash of cost 12 (of a password no test sends), what `webhook
// hash-password` makes.
const cost12Hash = "$2a$12$yF1m69B.mI8EUSBpZ5MABuynksff7aAPgqHUjawKqpwTXda9zaOsi"

// TestUnknownEmailTimingMatchesCostlierHashes: users whose hashes were made with `webhook
// hash-password` (cost 12, four times the work of cost 10) must not be told apart from unknown
// emails by response time either. Correct behaviour gives a ratio near 1; a dummy hash of cost 10
// gives 0.25. The threshold, 0.5, is a factor of 2 from each.
func TestUnknownEmailTimingMatchesCostlierHashes(t *testing.T) {
	e := newEnv(t, nil)
	e.publish(compileShop(t, func(users []userEntry) []userEntry {
		for i := range users {
			if users[i].Email == viewer {
				users[i].PasswordHash = cost12Hash
			}
		}
		return users
	}))
	known, unknown := medianLoginTimes(e, 3, [2]string{viewer, "not-the-password"}, [2]string{"nobody@example.com", "not-the-password"})
	t.Logf("median wrong password (cost-12 hash) %v, unknown email %v", known, unknown)
	if unknown < known/2 {
		t.Errorf("an unknown email took %v, a wrong password for a user with a cost-12 hash %v: response times reveal "+
			"which emails have an account (the dummy hash compared for unknown emails must cost what the users' hashes cost)", unknown, known)
	}
}

func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	login0 := e.tokens(admin)

	// Rotation: a new pair, the refresh token replaced.
	r := e.refresh(login0.RefreshToken)
	r.want(t, http.StatusOK)
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
	}
	var first tokenPair
	r.decode(t, &first)
	if first.TokenType != "Bearer" || first.ExpiresIn != 900 || first.RefreshToken == "" || first.RefreshToken == login0.RefreshToken {
		t.Fatalf("refresh answer %+v: want a new refresh token", first)
	}
	claims, err := e.verify(first.AccessToken)
	if err != nil || claims.Subject != admin {
		t.Fatalf("the refreshed access token: %+v, %v", claims, err)
	}
	login0Claims, err := e.verify(login0.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if claims.SessionID != login0Claims.SessionID {
		t.Errorf("the refreshed token's sid %q is not the login's %q", claims.SessionID, login0Claims.SessionID)
	}

	// The same token again within the grace window (a second tab): the same successor.
	e.clock.Advance(grace / 2)
	r = e.refresh(login0.RefreshToken)
	r.want(t, http.StatusOK)
	var again tokenPair
	r.decode(t, &again)
	if again.RefreshToken != first.RefreshToken {
		t.Errorf("a duplicate refresh within the grace window got another refresh token")
	}

	// 50 concurrent refreshes of one unused token: one rotates, the others replay; all get the
	// same successor and nobody is logged out.
	const n = 50
	answers := make([]tokenPair, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req, err := http.NewRequest("POST", e.srv.URL+"/auth/refresh", strings.NewReader(mustJSON(map[string]string{"refresh_token": first.RefreshToken})))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := e.client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("concurrent refresh %d: status %d, body %s", i, resp.StatusCode, body)
				return
			}
			if err := json.Unmarshal(body, &answers[i]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	second := answers[0]
	if second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
		t.Fatalf("concurrent refresh answered %+v", second)
	}
	for i, a := range answers {
		if a.RefreshToken != second.RefreshToken {
			t.Errorf("concurrent refresh %d got another successor", i)
		}
		if _, err := e.verify(a.AccessToken); err != nil {
			t.Errorf("concurrent refresh %d: access token refused: %v", i, err)
		}
	}

	// After the grace window, presenting the first token again is a reuse: the whole login is
	// revoked, successors and access tokens included.
	e.clock.Advance(grace + time.Second)
	r = e.refresh(login0.RefreshToken)
	r.want(t, http.StatusUnauthorized)
	if got := r.apiError(t); got != "invalid_grant" {
		t.Errorf("error %q, want invalid_grant", got)
	}
	for name, tok := range map[string]string{"first successor": first.RefreshToken, "second successor": second.RefreshToken} {
		r := e.refresh(tok)
		r.want(t, http.StatusUnauthorized)
		if got := r.apiError(t); got != "invalid_grant" {
			t.Errorf("%s: error %q, want invalid_grant", name, got)
		}
	}
	e.wantRevoked(login0.AccessToken, "the login's access token")
	e.wantRevoked(second.AccessToken, "the latest access token")

	// Another login of the same user is not affected.
	other := e.tokens(admin)
	if _, err := e.verify(other.AccessToken); err != nil {
		t.Errorf("another login's access token: %v", err)
	}
	e.refresh(other.RefreshToken).want(t, http.StatusOK)
}

func TestRefreshWithTheCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.formLogin(e.loginPage(), admin, fixture.Password, "https://shop.example.com/")
	r.want(t, http.StatusSeeOther)
	rc := r.setCookie(login.RefreshCookieName)
	if rc == nil || rc.Value == "" {
		t.Fatal("the form login set no refresh cookie")
	}

	refreshed := e.do(request{method: "POST", path: "/auth/refresh", cookies: []*http.Cookie{{Name: login.RefreshCookieName, Value: rc.Value}}})
	refreshed.want(t, http.StatusOK)
	var p tokenPair
	refreshed.decode(t, &p)
	next := refreshed.setCookie(login.RefreshCookieName)
	if next == nil {
		t.Fatal("a refresh from the cookie did not set the cookie again")
	}
	if next.Value == "" || next.Value == rc.Value {
		t.Errorf("the refresh cookie was set again to %q, want the new refresh token", next.Value)
	}
	if next.Path != "/auth/" || !next.HttpOnly || !next.Secure || next.SameSite != http.SameSiteStrictMode {
		t.Errorf("refresh cookie %s: want Path=/auth/, HttpOnly, Secure, SameSite=Strict", next)
	}
	if !next.Expires.IsZero() && next.Expires.Before(e.clock.Now().Add(refreshTTL-time.Second)) {
		t.Errorf("the refresh cookie expires at %v, before the refresh token", next.Expires)
	}
	if _, err := e.verify(p.AccessToken); err != nil {
		t.Errorf("access token: %v", err)
	}

	// The rotated cookie works in turn.
	e.do(request{method: "POST", path: "/auth/refresh", cookies: []*http.Cookie{next}}).want(t, http.StatusOK)
}

func TestRefreshRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)

	t.Run("no token", func(t *testing.T) {
		e := e.with(t)
		r := e.do(request{method: "POST", path: "/auth/refresh", json: `{}`})
		r.want(t, http.StatusBadRequest)
	})
	t.Run("unknown token", func(t *testing.T) {
		e := e.with(t)
		r := e.refresh(randomString(t))
		r.want(t, http.StatusUnauthorized)
		if got := r.apiError(t); got != "invalid_grant" {
			t.Errorf("error %q", got)
		}
	})
	t.Run("unknown members", func(t *testing.T) {
		e := e.with(t)
		r := e.do(request{method: "POST", path: "/auth/refresh", json: `{"refresh_token":"x","scope":"all"}`})
		r.want(t, http.StatusBadRequest)
	})

	t.Run("user removed from the directory", func(t *testing.T) {
		e := e.with(t)
		p := e.tokens(viewer)
		withViewer := e.policy()
		e.publish(compileShop(t, func(users []userEntry) []userEntry {
			return slices.DeleteFunc(users, func(u userEntry) bool { return u.Email == viewer })
		}))
		r := e.refresh(p.RefreshToken)
		r.want(t, http.StatusUnauthorized)
		if got := r.apiError(t); got != "invalid_grant" {
			t.Errorf("error %q", got)
		}
		e.wantRevoked(p.AccessToken, "an access token of the removed user's login")
		// The family stays revoked when the user comes back.
		e.publish(withViewer)
		e.refresh(p.RefreshToken).want(t, http.StatusUnauthorized)
		e.wantRevoked(p.AccessToken, "after the user came back")
	})

	t.Run("disabled user", func(t *testing.T) {
		e := e.with(t)
		p := e.tokens(viewer)
		enabled := e.policy()
		e.publish(compileShop(t, func(users []userEntry) []userEntry {
			for i := range users {
				users[i].Disabled = users[i].Email == viewer
			}
			return users
		}))
		e.refresh(p.RefreshToken).want(t, http.StatusUnauthorized)
		e.wantRevoked(p.AccessToken, "an access token of the disabled user's login")
		e.publish(enabled)
	})

	t.Run("expired family", func(t *testing.T) {
		e := e.with(t)
		refresh, _ := e.newFamily(admin)
		e.clock.Advance(refreshTTL + time.Second)
		r := e.refresh(refresh)
		r.want(t, http.StatusUnauthorized)
		if got := r.apiError(t); got != "invalid_grant" {
			t.Errorf("error %q", got)
		}
	})
}

func TestLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	logout := func(e *env, body string, cookies ...*http.Cookie) *response {
		return e.do(request{method: "POST", path: "/auth/logout?policy=" + shopRef, json: body, cookies: cookies})
	}

	t.Run("session cookie", func(t *testing.T) {
		e := e.with(t)
		id := e.newSession(admin)
		r := logout(e, `{}`, &http.Cookie{Name: sessionCookie, Value: id})
		r.want(t, http.StatusOK)
		var body struct {
			Status string `json:"status"`
		}
		r.decode(t, &body)
		if body.Status != "signed_out" {
			t.Errorf("status %q", body.Status)
		}
		if e.sessionLive(id) {
			t.Error("the session is still live after logout")
		}
		c := r.setCookie(sessionCookie)
		if c == nil || c.Value != "" || c.MaxAge >= 0 || strings.TrimPrefix(c.Domain, ".") != "example.com" || c.Path != "/" {
			t.Errorf("clearing cookie %v: want an empty value, Max-Age<0, and the cookie's Domain and Path", c)
		}
	})

	t.Run("empty body", func(t *testing.T) {
		e := e.with(t)
		id := e.newSession(admin)
		r := e.do(request{method: "POST", path: "/auth/logout?policy=" + shopRef, header: map[string]string{"Content-Type": "application/json"},
			cookies: []*http.Cookie{{Name: sessionCookie, Value: id}}})
		r.want(t, http.StatusOK)
		if e.sessionLive(id) {
			t.Error("the session is still live after logout")
		}
	})

	t.Run("refresh token", func(t *testing.T) {
		e := e.with(t)
		refresh, access := e.newFamily(admin)
		_, otherAccess := e.newFamily(admin)
		r := logout(e, mustJSON(map[string]string{"refresh_token": refresh}))
		r.want(t, http.StatusOK)
		e.wantRevoked(access, "an access token of the logged-out login")
		e.refresh(refresh).want(t, http.StatusUnauthorized)
		if _, err := e.verify(otherAccess); err != nil {
			t.Errorf("another login of the same user was revoked: %v", err)
		}
		if c := r.setCookie(login.RefreshCookieName); c == nil || c.MaxAge >= 0 || c.Path != "/auth/" {
			t.Errorf("the refresh cookie is not cleared: %v", c)
		}
	})

	t.Run("refresh cookie", func(t *testing.T) {
		e := e.with(t)
		refresh, access := e.newFamily(admin)
		logout(e, `{}`, &http.Cookie{Name: login.RefreshCookieName, Value: refresh}).want(t, http.StatusOK)
		e.wantRevoked(access, "an access token of the logged-out login")
	})

	t.Run("bearer token", func(t *testing.T) {
		e := e.with(t)
		refresh, access := e.newFamily(admin)
		r := e.do(request{method: "POST", path: "/auth/logout?policy=" + shopRef, header: map[string]string{"Authorization": "Bearer " + access}})
		r.want(t, http.StatusOK)
		e.wantRevoked(access, "the Bearer token of the logout")
		e.refresh(refresh).want(t, http.StatusUnauthorized)
	})

	t.Run("bearer token, scheme in lower case", func(t *testing.T) {
		e := e.with(t)
		// RFC 9110 section 11.1: the authentication scheme is case-insensitive, as the checks
		// (authz) treat it. A logout that answers signed_out must have revoked the token.
		refresh, access := e.newFamily(admin)
		r := e.do(request{method: "POST", path: "/auth/logout?policy=" + shopRef, header: map[string]string{"Authorization": "bearer " + access}})
		r.want(t, http.StatusOK)
		e.wantRevoked(access, `the "bearer" token of the logout (answered `+strings.TrimSpace(r.body)+`)`)
		if e.refresh(refresh).StatusCode != http.StatusUnauthorized {
			t.Error("the refresh token of the logged-out login still works")
		}
	})

	t.Run("everywhere", func(t *testing.T) {
		e := e.with(t)
		mine := []string{e.newSession(admin), e.newSession(admin), e.newSession(admin)}
		myRefresh, myAccess := e.newFamily(admin)
		theirs := e.newSession(viewer)
		theirRefresh, theirAccess := e.newFamily(viewer)
		e.clock.Advance(time.Second) // the logout comes after the tokens were issued

		r := logout(e, `{"everywhere":true}`, &http.Cookie{Name: sessionCookie, Value: mine[0]})
		r.want(t, http.StatusOK)
		var body struct {
			Everywhere bool `json:"everywhere"`
		}
		r.decode(t, &body)
		if !body.Everywhere {
			t.Errorf("answer %s, want everywhere: true", r.body)
		}
		for i, id := range mine {
			if e.sessionLive(id) {
				t.Errorf("session %d of the user is still live", i)
			}
		}
		e.wantRevoked(myAccess, "the user's access token")
		e.refresh(myRefresh).want(t, http.StatusUnauthorized)

		if !e.sessionLive(theirs) {
			t.Error("another user's session was ended")
		}
		if _, err := e.verify(theirAccess); err != nil {
			t.Errorf("another user's access token: %v", err)
		}
		e.refresh(theirRefresh).want(t, http.StatusOK)
	})

	t.Run("form without CSRF", func(t *testing.T) {
		e := e.with(t)
		id := e.newSession(admin)
		pg := e.loginPage()
		for name, form := range map[string]url.Values{
			"no field":               {},
			"the login form's field": {"csrf": {pg.field}},
		} {
			r := e.do(request{method: "POST", path: "/auth/logout?policy=" + shopRef, form: form,
				cookies: []*http.Cookie{{Name: sessionCookie, Value: id}, {Name: login.CSRFCookieName, Value: pg.csrf.Value}}})
			if r.StatusCode != http.StatusForbidden {
				t.Errorf("%s: status %d, want 403", name, r.StatusCode)
			}
			if r.setCookie(sessionCookie) != nil {
				t.Errorf("%s: a refused logout cleared the session cookie", name)
			}
		}
		if !e.sessionLive(id) {
			t.Error("a refused form logout ended the session")
		}
	})

	t.Run("the sign-out page's form", func(t *testing.T) {
		e := e.with(t)
		id := e.newSession(admin)
		other := e.newSession(admin)
		pg := e.do(request{method: "GET", path: "/auth/logout?policy=" + shopRef})
		pg.want(t, http.StatusOK)
		m := csrfField.FindStringSubmatch(pg.body)
		csrf := pg.setCookie(login.CSRFCookieName)
		if m == nil || csrf == nil || !strings.Contains(pg.body, `action="/auth/logout?policy=shop%2Fshop"`) ||
			!strings.Contains(pg.body, `name="everywhere"`) || pg.Header.Get("Content-Security-Policy") != login.LoginPageCSP() {
			t.Fatalf("sign-out page without its form, CSRF field, cookie or CSP:\n%s", pg.body)
		}
		// A login field is not a logout field.
		login := e.loginPage(csrf)
		r := e.do(request{method: "POST", path: "/auth/logout?policy=" + shopRef,
			form:    url.Values{"csrf": {login.field}},
			cookies: []*http.Cookie{{Name: sessionCookie, Value: id}, csrf}})
		r.want(t, http.StatusForbidden)
		r = e.do(request{method: "POST", path: "/auth/logout?policy=" + shopRef,
			form:    url.Values{"csrf": {m[1]}, "rd": {"https://shop.example.com/bye"}, "everywhere": {"true"}},
			cookies: []*http.Cookie{{Name: sessionCookie, Value: id}, csrf}})
		r.want(t, http.StatusSeeOther)
		if loc := r.Header.Get("Location"); loc != "https://shop.example.com/bye" {
			t.Errorf("Location %q", loc)
		}
		if e.sessionLive(id) || e.sessionLive(other) {
			t.Error("a session is still live after signing out everywhere")
		}
	})
}

func TestCrossOriginPostsAreRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id := e.newSession(admin)
	refresh, access := e.newFamily(admin)
	pg := e.loginPage()
	csrf := &http.Cookie{Name: login.CSRFCookieName, Value: pg.csrf.Value}
	sess := &http.Cookie{Name: sessionCookie, Value: id}
	loginForm := url.Values{"email": {admin}, "password": {fixture.Password}, "csrf": {pg.field}, "rd": {"https://shop.example.com/"}}

	for _, hdr := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
		{"Origin": "https://evil.example.net"},
	} {
		for _, r := range []request{
			{method: "POST", path: "/auth/login?policy=" + shopRef, form: loginForm, cookies: []*http.Cookie{csrf}},
			{method: "POST", path: "/auth/login?policy=" + shopRef, json: mustJSON(map[string]string{"email": admin, "password": fixture.Password})},
			{method: "POST", path: "/auth/logout?policy=" + shopRef, json: `{"everywhere":true}`, cookies: []*http.Cookie{sess}},
			{method: "POST", path: "/auth/refresh", cookies: []*http.Cookie{{Name: login.RefreshCookieName, Value: refresh}}},
		} {
			r.header = hdr
			resp := e.do(r)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%v %s %s: status %d, want 403", hdr, r.method, r.path, resp.StatusCode)
			}
			if len(resp.Header.Values("Set-Cookie")) != 0 {
				t.Errorf("%v %s: Set-Cookie on a refused cross-origin post: %v", hdr, r.path, resp.Header.Values("Set-Cookie"))
			}
		}
	}
	if got := e.store.Stats().Sessions; got != 1 {
		t.Errorf("the store holds %d sessions, want the one created by the test", got)
	}
	if !e.sessionLive(id) {
		t.Error("a cross-origin logout ended the session")
	}
	if _, err := e.verify(access); err != nil {
		t.Errorf("a cross-origin post revoked a login: %v", err)
	}
	// The same requests from the same origin pass.
	e.do(request{method: "POST", path: "/auth/refresh", header: map[string]string{"Sec-Fetch-Site": "same-origin"},
		cookies: []*http.Cookie{{Name: login.RefreshCookieName, Value: refresh}}}).want(t, http.StatusOK)
}

func TestUserinfo(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	type info struct {
		Subject   string    `json:"sub"`
		Email     string    `json:"email"`
		Roles     []string  `json:"roles"`
		Policy    string    `json:"policy"`
		Source    string    `json:"source"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	get := func(e *env, hdr map[string]string, cookies ...*http.Cookie) *response {
		return e.do(request{method: "GET", path: "/auth/userinfo?policy=" + shopRef, header: hdr, cookies: cookies})
	}

	t.Run("bearer", func(t *testing.T) {
		e := e.with(t)
		_, access := e.newFamily(admin)
		r := get(e, map[string]string{"Authorization": "Bearer " + access})
		r.want(t, http.StatusOK)
		var got info
		r.decode(t, &got)
		want := info{Subject: admin, Email: admin, Roles: []string{"admin", "editor"}, Policy: shopRef, Source: "jwt",
			ExpiresAt: e.clock.Now().Add(accessTTL)}
		if got.Subject != want.Subject || got.Email != want.Email || !slices.Equal(got.Roles, want.Roles) ||
			got.Policy != want.Policy || got.Source != want.Source || !got.ExpiresAt.Equal(want.ExpiresAt) {
			t.Errorf("userinfo %+v, want %+v", got, want)
		}
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
		}
	})

	t.Run("bearer, scheme in lower case", func(t *testing.T) {
		e := e.with(t)
		// RFC 9110 section 11.1: the scheme is case-insensitive, and the checks accept it so.
		_, access := e.newFamily(admin)
		r := get(e, map[string]string{"Authorization": "bearer " + access})
		if r.StatusCode != http.StatusOK {
			t.Fatalf("status %d, body %s: want the token's identity", r.StatusCode, r.body)
		}
		var got info
		r.decode(t, &got)
		if got.Subject != admin || got.Source != "jwt" {
			t.Errorf("userinfo %+v", got)
		}
	})

	t.Run("session", func(t *testing.T) {
		e := e.with(t)
		id := e.newSession(viewer)
		r := get(e, nil, &http.Cookie{Name: sessionCookie, Value: id})
		r.want(t, http.StatusOK)
		var got info
		r.decode(t, &got)
		if got.Subject != viewer || got.Email != viewer || !slices.Equal(got.Roles, []string{"viewer"}) || got.Source != "session" || got.Policy != shopRef {
			t.Errorf("userinfo %+v", got)
		}
	})

	t.Run("nothing", func(t *testing.T) {
		e := e.with(t)
		r := get(e, nil)
		r.want(t, http.StatusUnauthorized)
		if w := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(w, "Bearer") {
			t.Errorf("WWW-Authenticate %q", w)
		}
	})

	t.Run("dead session", func(t *testing.T) {
		e := e.with(t)
		id := e.newSession(viewer)
		if _, err := e.sessions.Delete(context.Background(), e.policy(), id); err != nil {
			t.Fatal(err)
		}
		r := get(e, nil, &http.Cookie{Name: sessionCookie, Value: id})
		r.want(t, http.StatusUnauthorized)
		if r.Header.Get("WWW-Authenticate") == "" {
			t.Error("no WWW-Authenticate")
		}
	})

	t.Run("invalid bearer", func(t *testing.T) {
		e := e.with(t)
		r := get(e, map[string]string{"Authorization": "Bearer not.a.token"})
		r.want(t, http.StatusUnauthorized)
		if w := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(w, "Bearer") || !strings.Contains(w, `error="invalid_token"`) {
			t.Errorf("WWW-Authenticate %q", w)
		}
	})
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.do(request{method: "GET", path: "/.well-known/jwks.json"})
	r.want(t, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/jwk-set+json") && !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(r.body), &set); err != nil {
		t.Fatalf("%s: %v", r.body, err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("keys %v, want the fixture's one key", set.Keys)
	}
	k := set.Keys[0]
	for name, want := range map[string]string{"kid": "fixture-1", "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig"} {
		if k[name] != want {
			t.Errorf("%s = %v, want %s", name, k[name], want)
		}
	}
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
		if _, ok := k[private]; ok {
			t.Errorf("the published key has the private member %q", private)
		}
	}
	// It is the key the policy signs with.
	pub, ok := e.policy().JWT().Keys().Active().Signer().Public().(*ecdsa.PublicKey)
	if !ok {
		t.Fatal("the fixture's key is not ECDSA")
	}
	raw, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	if k["x"] != base64.RawURLEncoding.EncodeToString(raw[1:33]) || k["y"] != base64.RawURLEncoding.EncodeToString(raw[33:]) {
		t.Errorf("the published key is not the policy's signing key")
	}
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.do(request{method: "GET", path: "/.well-known/openid-configuration", host: "auth.example.com"})
	r.want(t, http.StatusOK)
	var doc struct {
		Issuer           string   `json:"issuer"`
		JWKSURI          string   `json:"jwks_uri"`
		TokenEndpoint    string   `json:"token_endpoint"`
		UserinfoEndpoint string   `json:"userinfo_endpoint"`
		Algorithms       []string `json:"id_token_signing_alg_values_supported"`
	}
	r.decode(t, &doc)
	if doc.Issuer != "https://auth.example.com" || doc.JWKSURI != "https://auth.example.com/.well-known/jwks.json" ||
		doc.TokenEndpoint != "https://auth.example.com/auth/refresh" || doc.UserinfoEndpoint != "https://auth.example.com/auth/userinfo" ||
		!slices.Equal(doc.Algorithms, []string{"ES256"}) {
		t.Errorf("discovery %+v", doc)
	}
	for _, host := range []string{"shop.example.com", "idp.example.com", "evil.example.net"} {
		r := e.do(request{method: "GET", path: "/.well-known/openid-configuration", host: host})
		if r.StatusCode != http.StatusNotFound {
			t.Errorf("host %s: status %d, want 404; body %s", host, r.StatusCode, r.body)
		}
	}
}
