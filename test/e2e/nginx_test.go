package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/test/harness"
)

// A browser without a session asks nginx for a page; the check answers 401 and nginx's auth-signin
// turns it into a redirect to the login page, carrying the original URL in rd.
func TestNginxSendsBrowserWithoutSessionToLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stableSession)
	c := e.NewClient(false)

	original := e.AppURL("/orders?id=7")
	r, id := e.Get(c, original, "Accept", browserAccept)
	e.ExpectStatus(r, http.StatusFound, "GET "+original+" without a session")

	// What ingress-nginx renders: auth-signin, then rd=$scheme://$http_host$escaped_request_uri,
	// where set_escape_uri escapes the request URI as a URI component ("/" too).
	want := e.AuthURL("/auth/login?policy=" + policyRef + "&rd=http://" + appHost + ":" + e.NginxPort + "%2Forders%3Fid%3D7")
	loc := r.Header.Get("Location")
	if loc != want {
		t.Errorf("Location = %q\nwant       %q", loc, want)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("Location %q: %v", loc, err)
	}
	if u.Host != loginHost+":"+e.WebhookPort || u.Path != "/auth/login" {
		t.Errorf("Location goes to %s%s, want the login page %s:%s/auth/login", u.Host, u.Path, loginHost, e.WebhookPort)
	}
	q := u.Query()
	if got := q.Get("policy"); got != policyRef {
		t.Errorf("Location's policy = %q, want %q", got, policyRef)
	}
	if got := q.Get("rd"); got != original {
		t.Errorf("Location's rd = %q, want the original URL %q", got, original)
	}
	if sc := r.Header.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("the redirect sets cookies %q; a browser without cookies has none to clear", sc)
	}

	// The webhook answered the check 401 (nginx, not the webhook, redirects), and the request never
	// reached the application.
	checks := e.Checks.ByRequestID(id)
	if len(checks) != 1 || checks[0].Status != http.StatusUnauthorized {
		t.Errorf("checks for the request: %+v, want one answered 401", checks)
	} else if wa := checks[0].Header.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Bearer ") {
		t.Errorf("the check's WWW-Authenticate = %q, want a Bearer challenge", wa)
	}
	if n := len(e.Upstream.ByRequestID(id)); n != 0 {
		t.Errorf("the upstream received the unauthenticated request %d times", n)
	}
}

// The whole browser login with the form: the login page (with its CSRF field and cookie), a wrong
// password, the right one, the redirect back with the session cookie, and the application behind
// nginx receiving the identity headers, each exactly once.
func TestNginxLoginFormSetsSessionAndIdentityReachesUpstream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stableSession)
	c := e.NewClient(true)

	original := e.AppURL("/orders?id=7")
	r, _ := e.Get(c, original, "Accept", browserAccept)
	e.ExpectStatus(r, http.StatusFound, "GET "+original+" without a session")

	page, form := e.OpenLoginPage(c, r.Header.Get("Location"))
	if !strings.Contains(form.Title, "shop") || !strings.Contains(form.H1, "shop") {
		t.Errorf("login page title %q, heading %q: want both to name the policy (shop)", form.Title, form.H1)
	}
	if ct := page.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("login page Content-Type = %q", ct)
	}
	if form.Fields.Get("csrf") == "" {
		t.Errorf("the login form has no csrf field: %v", form.Fields)
	}
	if got := form.Fields.Get("rd"); got != original {
		t.Errorf("the login form's rd = %q, want %q", got, original)
	}
	for _, name := range []string{"email", "password"} {
		if _, ok := form.Fields[name]; !ok {
			t.Errorf("the login form has no %s input", name)
		}
	}
	if want := e.AuthURL("/auth/login?policy=" + url.QueryEscape(policyRef)); form.Action != want {
		t.Errorf("the form posts to %q, want %q", form.Action, want)
	}
	var csrf *http.Cookie
	for _, ck := range page.Cookies() {
		if ck.Name == csrfCookie {
			csrf = ck
		}
	}
	switch {
	case csrf == nil:
		t.Fatalf("the login page sets no %s cookie: %q", csrfCookie, page.Header.Values("Set-Cookie"))
	case !csrf.HttpOnly || csrf.Path != "/auth/" || csrf.SameSite != http.SameSiteStrictMode:
		t.Errorf("CSRF cookie %q: want HttpOnly, Path=/auth/, SameSite=Strict", csrf.String())
	case csrf.Secure:
		// The policy's cookies are not Secure (plain http); a Secure CSRF cookie would be dropped
		// by browsers and every login form would fail.
		t.Errorf("CSRF cookie %q is Secure although the policy's session cookie is not", csrf.String())
	}

	// A wrong password: the form again, with the error, and no session.
	wrong := e.SubmitLogin(c, form, adminEmail, "not-the-password")
	e.ExpectStatus(wrong, http.StatusUnauthorized, "POST the login form with a wrong password")
	if !strings.Contains(wrong.Body, "Wrong email or password.") {
		t.Errorf("the refused login does not say why:\n%s", wrong.Body)
	}
	for _, ck := range wrong.Cookies() {
		if ck.Name == sessionCookie {
			t.Errorf("a refused login sets the session cookie")
		}
	}

	login := e.SubmitLogin(c, form, adminEmail, adminPassword)
	e.ExpectStatus(login, http.StatusSeeOther, "POST the login form")
	if loc := login.Header.Get("Location"); loc != original {
		t.Errorf("the login redirects to %q, want the original URL %q", loc, original)
	}
	sess := e.SessionCookieOf(login.Response)
	if sess.Value == "" || !sess.HttpOnly || sess.Secure || sess.SameSite != http.SameSiteLaxMode ||
		sess.Domain != "example.com" || sess.Path != "/" || sess.MaxAge <= 0 {
		t.Errorf("session cookie %q: want a value, HttpOnly, not Secure, SameSite=Lax, Domain=example.com, Path=/, Max-Age > 0", sess.String())
	}

	// Back at the application, through nginx, with the cookie the jar keeps.
	app, id := e.Get(c, original, "Accept", browserAccept)
	e.ExpectStatus(app, http.StatusOK, "GET "+original+" after the login")
	seen := e.UpstreamSaw(id)
	if seen.URI != "/orders?id=7" || seen.Method != http.MethodGet {
		t.Errorf("the upstream received %s %s, want GET /orders?id=7", seen.Method, seen.URI)
	}
	expectIdentity(t, "the upstream", seen.Headers, adminIdentity)
	var echoed harness.SeenRequest
	if err := json.Unmarshal([]byte(app.Body), &echoed); err != nil || echoed.URI != "/orders?id=7" {
		t.Errorf("the answer is not the upstream's echo (%v):\n%s", err, app.Body)
	}
	if sc := app.Header.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("an allowed request of a fresh session sets cookies: %q", sc)
	}
}

// Identity headers come from the webhook's answer only: whatever X-User-* a client sends is
// dropped by nginx (proxy_set_header replaces the client's copies, and an empty value removes them).
func TestNginxForgedIdentityHeadersNeverReachUpstream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stableSession)
	sess := e.BrowserLogin(e.NewClient(true), adminEmail, adminPassword)
	tokens := e.APILogin(adminEmail, adminPassword)
	c := e.NewClient(false)
	cookie := sessionCookie + "=" + sess.Value

	// Each forged header twice, so that neither "first wins" nor "last wins" can let one through.
	forged := []string{
		"X-User-Id", "forged", "X-User-Id", "forged-again",
		"X-User-Email", "forged@evil.example", "X-User-Email", "forged-again@evil.example",
		"X-User-Role", "admin", "X-User-Role", "admin,editor",
	}
	with := func(pairs ...string) []string { return append(pairs, forged...) }

	cases := []struct {
		what    string
		path    string
		headers []string
		status  int
		want    map[string]string // the identity the upstream must see; nil: none
	}{
		{"a session", "/orders", with("Accept", browserAccept, "Cookie", cookie), http.StatusOK, adminIdentity},
		{"no credentials on the Public rule", "/static/app.css", forged, http.StatusOK, nil},
		// A Public rule asserts no identity, even when the request could prove one.
		{"a session on the Public rule", "/static/app.css", with("Cookie", cookie), http.StatusOK, nil},
		{"a Bearer token", "/api/orders", with("Authorization", "Bearer "+tokens.AccessToken, "Accept", "application/json"), http.StatusOK, adminIdentity},
		{"no credentials", "/orders", with("Accept", browserAccept), http.StatusFound, nil},
	}
	for _, tc := range cases {
		what := "GET " + tc.path + " with " + tc.what + " and forged identity headers"
		r, id := e.Get(c, e.AppURL(tc.path), tc.headers...)
		e.ExpectStatus(r, tc.status, what)
		if tc.status != http.StatusOK {
			if n := len(e.Upstream.ByRequestID(id)); n != 0 {
				t.Errorf("%s: the upstream received the denied request", what)
			}
			continue
		}
		expectIdentity(t, what+": the upstream", e.UpstreamSaw(id).Headers, tc.want)
	}

	// The reference configuration's /cached/ location passes only X-User-Id upstream (its
	// auth_request_set lines), so only that header is checked there.
	r, id := e.Get(c, e.AppURL("/cached/report"), "Cookie", cookie, "X-User-Id", "forged", "X-User-Id", "forged-again")
	e.ExpectStatus(r, http.StatusOK, "GET /cached/report with a session and a forged X-User-Id")
	if got := e.UpstreamSaw(id).Headers.Values("X-User-Id"); len(got) != 1 || got[0] != "admin" {
		t.Errorf("GET /cached/report: the upstream received X-User-Id %q, want exactly [admin]", got)
	}
}

// Sliding expiry: once less than refreshThreshold of the session remains, a check extends it and
// the refreshed cookie travels from the webhook's answer through nginx (auth_request_set +
// add_header) to the client: exactly one Set-Cookie, same session, later expiry.
func TestNginxSlidingRefreshReachesClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slidingSession) // ttl 1h, refreshThreshold 59m59s: any check ≥ 1 s after login slides
	login := e.BrowserLogin(e.NewClient(true), adminEmail, adminPassword)
	c := e.NewClient(false)
	cookie := sessionCookie + "=" + login.Value

	var slid harness.Response
	var slidID string
	slides := harness.PollUntil(10*time.Second, 100*time.Millisecond, func() bool {
		r, id := e.Get(c, e.AppURL("/orders"), "Accept", browserAccept, "Cookie", cookie)
		e.ExpectStatus(r, http.StatusOK, "GET /orders with a live session")
		if n := len(r.Header.Values("Set-Cookie")); n > 1 {
			t.Fatalf("nginx sent %d Set-Cookie headers: %q", n, r.Header.Values("Set-Cookie"))
		} else if n == 0 {
			return false
		}
		slid, slidID = r, id
		return true
	})
	if !slides {
		t.Fatalf("no check extended the session within 10s of the login (refreshThreshold %s of a %s ttl): "+
			"no refreshed Set-Cookie reached the client", slidingSession.refreshThreshold, slidingSession.ttl)
	}

	refreshed := e.SessionCookieOf(slid.Response)
	if refreshed.Value != login.Value {
		t.Errorf("the refreshed cookie carries another session ID; sliding expiry must keep the session")
	}
	if !refreshed.Expires.After(login.Expires) {
		t.Errorf("the refreshed cookie expires %s, not after the login cookie's %s", refreshed.Expires, login.Expires)
	}
	if refreshed.MaxAge < 3590 || !refreshed.HttpOnly || refreshed.Domain != "example.com" || refreshed.SameSite != http.SameSiteLaxMode {
		t.Errorf("refreshed cookie %q: want Max-Age about 3600, HttpOnly, Domain=example.com, SameSite=Lax", refreshed.String())
	}
	expectIdentity(t, "the upstream", e.UpstreamSaw(slidID).Headers, adminIdentity)
	checks := e.Checks.ByRequestID(slidID)
	if len(checks) != 1 || len(checks[0].Header.Values("Set-Cookie")) != 1 {
		t.Errorf("the sliding check's answers: %+v, want one with one Set-Cookie", checks)
	}
}

// Logout ends the session at once: the next request with the old cookie is sent to the login page
// again, and that redirect clears the dead cookie. No page of authgate renders a logout form (the
// form variant needs a CSRF field for "logout" that nothing issues), so the test logs out with JSON.
func TestNginxLogoutEndsSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stableSession)
	c := e.NewClient(true)
	sess := e.BrowserLogin(c, adminEmail, adminPassword)
	r, _ := e.Get(c, e.AppURL("/orders"), "Accept", browserAccept)
	e.ExpectStatus(r, http.StatusOK, "GET /orders after the login")

	out := e.APILogout(`{}`, sessionCookie+"="+sess.Value)
	if !strings.Contains(out.Body, `"signed_out"`) {
		t.Errorf("the logout's answer: %s", out.Body)
	}
	if !clearsSession(out.Response) {
		t.Errorf("the logout does not clear the session cookie: %q", out.Header.Values("Set-Cookie"))
	}

	// c still holds the old cookie, as a browser in another tab would.
	loginPrefix := e.AuthURL("/auth/login?policy=" + policyRef + "&rd=")
	r, id := e.Get(c, e.AppURL("/orders"), "Accept", browserAccept)
	e.ExpectStatus(r, http.StatusFound, "GET /orders with the logged-out session's cookie")
	if loc := r.Header.Get("Location"); !strings.HasPrefix(loc, loginPrefix) {
		t.Errorf("Location = %q, want the login page %s...", loc, loginPrefix)
	}
	if n := len(r.Header.Values("Set-Cookie")); n != 1 || !clearsSession(r.Response) {
		t.Errorf("the redirect should clear the dead cookie with exactly one Set-Cookie, got %q", r.Header.Values("Set-Cookie"))
	}
	if n := len(e.Upstream.ByRequestID(id)); n != 0 {
		t.Errorf("the upstream received the logged-out request")
	}

	// The jar dropped the cookie: the next request carries none and is sent to log in, with nothing
	// left to clear.
	r, _ = e.Get(c, e.AppURL("/orders"), "Accept", browserAccept)
	e.ExpectStatus(r, http.StatusFound, "GET /orders after the dead cookie was cleared")
	if sc := r.Header.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("a request without cookies got Set-Cookie %q", sc)
	}
}

// clearsSession reports whether an answer deletes the session cookie.
func clearsSession(resp *http.Response) bool {
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie && c.Value == "" && c.MaxAge < 0 {
			return true
		}
	}
	return false
}

// /api/ is a JWT rule without auth-signin: API clients present a Bearer token from the JSON login
// and get 401 with a challenge without one, 403 without the role, and 401 once their login is
// revoked.
func TestNginxAPIBearerToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stableSession)
	c := e.NewClient(false)
	admin := e.APILogin(adminEmail, adminPassword)
	api := e.AppURL("/api/orders")

	r, id := e.Get(c, api, "Authorization", "Bearer "+admin.AccessToken, "Accept", "application/json")
	e.ExpectStatus(r, http.StatusOK, "GET /api/orders with the admin's token")
	expectIdentity(t, "the upstream", e.UpstreamSaw(id).Headers, adminIdentity)

	r, id = e.Get(c, api, "Accept", "application/json")
	e.ExpectStatus(r, http.StatusUnauthorized, "GET /api/orders without a token")
	if wa := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Bearer ") {
		t.Errorf("WWW-Authenticate = %q, want a Bearer challenge relayed by nginx", wa)
	}
	if n := len(e.Upstream.ByRequestID(id)); n != 0 {
		t.Errorf("the upstream received a request without a token")
	}

	r, _ = e.Get(c, api, "Authorization", "Bearer not-a-token", "Accept", "application/json")
	e.ExpectStatus(r, http.StatusUnauthorized, "GET /api/orders with a malformed token")

	viewer := e.APILogin(viewerEmail, viewerPassword)
	r, id = e.Get(c, api, "Authorization", "Bearer "+viewer.AccessToken, "Accept", "application/json")
	e.ExpectStatus(r, http.StatusForbidden, "GET /api/orders as the viewer (no admin or editor role)")
	if n := len(e.Upstream.ByRequestID(id)); n != 0 {
		t.Errorf("the upstream received a forbidden request")
	}

	// Logout with the refresh token revokes the whole login: its access tokens too, at once.
	body, _ := json.Marshal(map[string]string{"refresh_token": admin.RefreshToken})
	e.APILogout(string(body), "")
	r, id = e.Get(c, api, "Authorization", "Bearer "+admin.AccessToken, "Accept", "application/json")
	e.ExpectStatus(r, http.StatusUnauthorized, "GET /api/orders with a revoked login's token")
	if n := len(e.Upstream.ByRequestID(id)); n != 0 {
		t.Errorf("the upstream received a request with a revoked token")
	}
	refresh := e.Post(c, e.AuthURL("/auth/refresh"), "application/json", string(body))
	e.ExpectStatus(refresh, http.StatusUnauthorized, "POST /auth/refresh with a revoked refresh token")
}

// /cached/ has auth-cache-key $http_authorization$cookie_authgate_session and auth-cache-duration
// "200 1m": nginx keeps allowed answers for a minute per credential, and must never keep a denial.
// The counting proxy between nginx and the webhook shows which checks reached the webhook.
//
// The cache is the operator's trade-off, as ingress-nginx documents it: for up to the cache
// duration, a logged-out (or otherwise revoked) credential is still let through on a cached
// location, because nginx does not ask. The last step shows that, so that the behaviour is on
// record; locations without auth-cache-key see a logout at once.
func TestNginxAuthCacheNeverKeepsDenials(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stableSession)
	c := e.NewClient(false)
	checks := func() int { return e.CheckCount("/cached/") }
	expectChecks := func(want int, what string) {
		t.Helper()
		if got := checks(); got != want {
			t.Fatalf("%s: %d checks of /cached/ reached the webhook, want %d\n%s", what, got, want, e.Checks.String())
		}
	}

	// Denials, twice each: both reach the webhook. (The reference configuration gives /cached/ no
	// auth-signin redirect, so a browser gets the 401 itself.)
	deadSession := sessionCookie + "=" + strings.Repeat("A", 43) // well formed, names no session
	denials := []struct {
		what    string
		headers []string
	}{
		{"no credentials", []string{"Accept", browserAccept}},
		{"an invalid Bearer token", []string{"Authorization", "Bearer invalid", "Accept", "application/json"}},
		{"a session cookie that names no session", []string{"Cookie", deadSession, "Accept", browserAccept}},
	}
	n := 0
	for _, d := range denials {
		for range 2 {
			r, id := e.Get(c, e.AppURL("/cached/report"), d.headers...)
			e.ExpectStatus(r, http.StatusUnauthorized, "GET /cached/report with "+d.what)
			if len(e.Upstream.ByRequestID(id)) != 0 {
				t.Errorf("the upstream received a denied request (%s)", d.what)
			}
			n++
			expectChecks(n, "denial with "+d.what)
			for _, ck := range e.Checks.ByRequestID(id) {
				if cc := ck.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
					t.Errorf("the denial (%s) has Cache-Control %q, want no-store", d.what, cc)
				}
			}
		}
	}

	// An allowed answer is cached: the second identical request does not reach the webhook, and the
	// upstream still gets the identity from the cached answer.
	sess := e.BrowserLogin(e.NewClient(true), adminEmail, adminPassword)
	cookie := sessionCookie + "=" + sess.Value
	for i, wantChecks := range []int{n + 1, n + 1} {
		r, id := e.Get(c, e.AppURL("/cached/report"), "Cookie", cookie, "Accept", browserAccept)
		e.ExpectStatus(r, http.StatusOK, "GET /cached/report with a session")
		expectChecks(wantChecks, fmt.Sprintf("allowed request %d", i+1))
		if got := e.UpstreamSaw(id).Headers.Values("X-User-Id"); len(got) != 1 || got[0] != "admin" {
			t.Errorf("allowed request %d: the upstream received X-User-Id %q, want [admin]", i+1, got)
		}
	}
	n++

	// After a logout, the cached location still lets the dead cookie through until the cache entry
	// expires (auth-cache-duration), without asking; the uncached location refuses it at once.
	e.APILogout(`{}`, cookie)
	r, _ := e.Get(c, e.AppURL("/cached/report"), "Cookie", cookie, "Accept", browserAccept)
	e.ExpectStatus(r, http.StatusOK, "GET /cached/report with a logged-out cookie within the cache duration")
	expectChecks(n, "the logged-out cookie on the cached location")
	r, _ = e.Get(c, e.AppURL("/orders"), "Cookie", cookie, "Accept", browserAccept)
	e.ExpectStatus(r, http.StatusFound, "GET /orders with a logged-out cookie")
}

// A check without X-Original-URL comes from a misconfigured proxy: 400 naming the header, never a
// guess from the headers of other proxies' conventions (which clients can forge), even when the
// request carries a valid session.
func TestWebhookRefusesNginxCheckWithoutOriginalURL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stableSession)
	sess := e.BrowserLogin(e.NewClient(true), adminEmail, adminPassword)

	r, _ := e.Get(e.NewClient(false), e.AuthURL("/check/nginx?policy="+policyRef),
		"X-Original-Method", "GET",
		"X-Forwarded-Proto", "http", "X-Forwarded-Host", appHost, "X-Forwarded-Uri", "/orders",
		"X-Forwarded-Method", "GET",
		"Cookie", sessionCookie+"="+sess.Value)
	e.ExpectStatus(r, http.StatusBadRequest, "GET /check/nginx without X-Original-URL")
	if !strings.Contains(r.Body, "X-Original-URL") {
		t.Errorf("the 400 does not name the missing header: %q", r.Body)
	}
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	expectIdentity(t, "the answer", r.Header, nil)
}

// nginx matches locations on the normalized path but sends the check the raw request URI
// (X-Original-URL carries $request_uri). Spellings that nginx, or the application, resolves to
// /orders must not pass as the Public /static/ rule: the webhook normalizes once, and refuses what it
// cannot read unambiguously.
func TestNginxPathSpellingsDoNotReachLenientRule(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stableSession)
	c := e.NewClient(false)
	for _, path := range []string{
		"/static/../orders",
		"/static/%2e%2e/orders",
		"/static/%2E%2E/orders",
		"/static/..%2forders",
		"/static/..;/orders",
		"/static//../orders",
		"/static/./../orders",
	} {
		r, id := e.Get(c, e.AppURL(path), "Accept", browserAccept)
		if r.StatusCode == http.StatusOK {
			t.Errorf("GET %s without credentials: 200, want a denial", path)
		}
		if n := len(e.Upstream.ByRequestID(id)); n != 0 {
			t.Errorf("GET %s without credentials reached the upstream", path)
		}
		// The webhook decided (nginx did not refuse the path on its own): 401 for what normalizes
		// to /orders, 400 for what cannot be read unambiguously (nginx turns that into a 500).
		switch checks := e.Checks.ByRequestID(id); {
		case len(checks) != 1:
			t.Errorf("GET %s: nginx asked the webhook %d times, want once", path, len(checks))
		case checks[0].Status != http.StatusUnauthorized && checks[0].Status != http.StatusBadRequest:
			t.Errorf("GET %s without credentials: the webhook answered %d, want 401 or 400", path, checks[0].Status)
		default:
			t.Logf("GET %s: the webhook answered %d, nginx %s", path, checks[0].Status, r.Status)
		}
	}
	// The plain spelling stays public, so the denials above are about the paths.
	r, _ := e.Get(c, e.AppURL("/static/app.css"), "Accept", browserAccept)
	e.ExpectStatus(r, http.StatusOK, "GET /static/app.css without credentials")
}
