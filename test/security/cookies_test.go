package security

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/webhook"
	"github.com/authgate/authgate/test/harness"
)

// tamperedSessions are cookie values made from a live session ID: changed, cut, grown, re-encoded,
// or the stored form of it. None names a session.
func tamperedSessions(id string) []struct{ name, value string } {
	flip := func(i int) string {
		b := []byte(id)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(id)
	sum := sha256.Sum256([]byte(id))
	return []struct{ name, value string }{
		{"first character changed", flip(0)},
		{"middle character changed", flip(len(id) / 2)},
		{"last character changed", flip(len(id) - 1)},
		{"one character short", id[:len(id)-1]},
		{"half of it", id[:len(id)/2]},
		{"one character", id[:1]},
		{"empty", ""},
		{"one character more", id + "A"},
		{"twice over", id + id},
		{"4 KiB longer", id + strings.Repeat("A", 4<<10)},
		{"standard base64 with padding", base64.StdEncoding.EncodeToString(raw)},
		{"padded", id + "="},
		{"percent-encoded", "%" + strings.ToUpper(hex.EncodeToString([]byte(id[:1]))) + id[1:]},
		{"upper case", strings.ToUpper(id)},
		{"lower case", strings.ToLower(id)},
		{"quoted and changed", `"` + flip(0) + `"`},
		{"with a space inside", id[:10] + " " + id[10:]},
		{"with a non-ASCII character", id[:10] + "é" + id[11:]},
		{"with a comma and itself", id + "," + id},
		{"with a semicolon inside", id[:10] + ";" + id[10:]},
		{"its SHA-256 in hex (the stored key)", hex.EncodeToString(sum[:])},
		{"its SHA-256 in base64url", base64.RawURLEncoding.EncodeToString(sum[:])},
		{"SQL", "' OR '1'='1"},
		{"a path", "../../../../etc/passwd"},
		{"JSON", `{"user":"admin","roles":["admin"]}`},
	}
}

// Tampered session cookies, another policy's session and a logged-out session prove nothing, through
// every adapter; the live session they were made from passes before and after.
func testSessionCookies(t *testing.T) {
	t.Parallel()
	s := newSuite(t, lenientLimits)
	live := s.APILogin(harness.AdminEmail, harness.AdminPassword).Session
	if live == "" {
		t.Fatalf("the JSON login set no session cookie")
	}
	other := s.APILoginTo(otherPolicy, harness.AdminEmail, harness.AdminPassword).Session
	dead := s.APILogin(harness.AdminEmail, harness.AdminPassword).Session
	s.APILogout(`{}`, harness.SessionCookie+"="+dead)

	session := func(cookie string) probe {
		return probe{target: "/orders", headers: []string{"Cookie", cookie, "Accept", harness.BrowserAccept}}
	}
	for _, ad := range adapters {
		expectAllowed(t, ad.name+": the live session", ad.check(s, session(harness.SessionCookie+"="+live)))
	}

	cases := append(tamperedSessions(live), []struct{ name, value string }{
		{"the other policy's session (same cookie name)", other},
		{"a logged-out session", dead},
	}...)
	requests := 0
	for _, c := range cases {
		for _, ad := range adapters {
			a := ad.check(s, session(harness.SessionCookie+"="+c.value))
			requests++
			expectDenied(t, ad.name+": a session cookie "+c.name, a)
		}
	}
	// The cookie name once more before the live one: the first is the one that counts.
	for _, ad := range adapters {
		a := ad.check(s, session(harness.SessionCookie+"="+tamperedSessions(live)[0].value+"; "+harness.SessionCookie+"="+live))
		requests++
		expectDenied(t, ad.name+": a tampered session cookie before the live one", a)
	}
	// The shop's session on the other policy's host.
	a := viaEnvoyHTTP(s, probe{host: otherHost, target: "/", headers: []string{"Cookie", harness.SessionCookie + "=" + live, "Accept", "application/json"}})
	requests++
	expectDenied(t, "envoy-http: the shop's session on "+otherHost, a)
	counted("cookies", len(cases)+2, requests)

	for _, ad := range adapters {
		expectAllowed(t, ad.name+": the live session after the attacks", ad.check(s, session(harness.SessionCookie+"="+live)))
	}
}

// A session ID planted in the victim's browser before the login never becomes the victim's session:
// every login issues a fresh ID, the planted one stays worthless (or stays the attacker's).
func testSessionFixation(t *testing.T) {
	t.Parallel()
	s := newSuite(t, lenientLimits)
	planted := base64.RawURLEncoding.EncodeToString(randomBytes(t, 32)) // well formed, names no session
	attacker := s.APILogin(harness.ViewerEmail, harness.ViewerPassword).Session

	whoIs := func(sessionID string) (int, string) {
		a := viaTraefik(s, probe{target: "/orders", headers: []string{"Cookie", harness.SessionCookie + "=" + sessionID, "Accept", "application/json"}})
		return a.status, a.header.Get("X-User-Id")
	}
	loginWithPlanted := func(what, plantedID string) string {
		browser := s.NewClient(true)
		pageURL := s.AuthURL("/auth/login?policy=" + harness.PolicyRef + "&rd=" + url.QueryEscape(s.AppURL("/orders")))
		_, form := s.OpenLoginPage(browser, pageURL)
		// The attacker's cookie, set for the whole domain (a sibling host can do that).
		for _, host := range []string{harness.LoginHost, harness.AppHost} {
			browser.Jar.SetCookies(&url.URL{Scheme: "http", Host: host}, []*http.Cookie{{
				Name: harness.SessionCookie, Value: plantedID, Domain: "example.com", Path: "/",
			}})
		}
		r := s.SubmitLogin(browser, form, harness.AdminEmail, harness.AdminPassword)
		s.ExpectStatus(r, http.StatusSeeOther, what+": the login form")
		issued := s.SessionCookieOf(r.Response).Value
		if issued == plantedID {
			t.Errorf("%s: the login kept the planted session ID", what)
		}
		if got := sentCookie(browser, s.AppURL("/orders"), harness.SessionCookie); got != issued {
			t.Errorf("%s: after the login the browser sends session %q..., want the fresh one", what, got[:min(8, len(got))])
		}
		return issued
	}

	issued := loginWithPlanted("a planted unknown ID", planted)
	if status, _ := whoIs(planted); status == http.StatusOK {
		t.Errorf("the planted unknown ID passes after the victim's login")
	}
	if status, id := whoIs(issued); status != http.StatusOK || id != "admin" {
		t.Errorf("the victim's fresh session: %d as %q, want 200 as admin", status, id)
	}

	issued = loginWithPlanted("the attacker's own session", attacker)
	if status, id := whoIs(attacker); status != http.StatusOK || id != harness.ViewerEmail {
		t.Errorf("after the victim's login the attacker's session is %d as %q, want still the attacker (%s)", status, id, harness.ViewerEmail)
	}
	if status, id := whoIs(issued); status != http.StatusOK || id != "admin" {
		t.Errorf("the victim's fresh session: %d as %q, want 200 as admin", status, id)
	}

	// The JSON login with a planted cookie.
	body, _ := json.Marshal(map[string]string{"email": harness.AdminEmail, "password": harness.AdminPassword})
	r := s.Post(s.NewClient(false), s.AuthURL("/auth/login?policy="+harness.PolicyRef), "application/json", string(body),
		"Cookie", harness.SessionCookie+"="+planted)
	s.ExpectStatus(r, http.StatusOK, "the JSON login with a planted session cookie")
	if got := s.SessionCookieOf(r.Response).Value; got == planted {
		t.Errorf("the JSON login kept the planted session ID")
	}
	if status, _ := whoIs(planted); status == http.StatusOK {
		t.Errorf("the planted unknown ID passes after the JSON login")
	}
	counted("cookies", 3, 3)
}

// sentCookie returns the value of the cookie the client would send to u, or "".
func sentCookie(c *http.Client, u, name string) string {
	parsed, _ := url.Parse(u)
	for _, ck := range c.Jar.Cookies(parsed) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// Cross-site posts to the login and the sign-out form are refused: without the form's CSRF token,
// with a token of another form or browser, and with a valid token from another origin. A refused
// login sets no session; a refused sign-out leaves the session alive. The same-origin post with its
// token passes, so the refusals are about the forgeries.
func testCSRF(t *testing.T) {
	t.Parallel()
	s := newSuite(t, lenientLimits)
	loginURL := s.AuthURL("/auth/login?policy=" + harness.PolicyRef)
	logoutURL := s.AuthURL("/auth/logout?policy=" + harness.PolicyRef)
	credentials := url.Values{"email": {harness.AdminEmail}, "password": {harness.AdminPassword}}

	victim := s.NewClient(true)
	_, loginForm := s.OpenLoginPage(victim, loginURL)
	_, logoutForm := s.OpenLoginPage(victim, logoutURL)
	_, attackerForm := s.OpenLoginPage(s.NewClient(true), loginURL) // the attacker's own pair
	jarless := s.NewClient(false)

	form := func(csrf string) string {
		v := url.Values{"email": credentials["email"], "password": credentials["password"], "rd": {"/"}}
		if csrf != "" {
			v.Set("csrf", csrf)
		}
		return v.Encode()
	}
	valid := loginForm.Fields.Get("csrf")
	formType := "application/x-www-form-urlencoded"
	jsonBody := `{"email":"` + harness.AdminEmail + `","password":"` + harness.AdminPassword + `"}`
	logins := []struct {
		name              string
		client            *http.Client
		contentType, body string
		headers           []string
	}{
		{"no csrf field", victim, formType, form(""), nil},
		{"a made-up csrf field", victim, formType, form(base64.RawURLEncoding.EncodeToString(randomBytes(t, 32))), nil},
		{"the attacker's own csrf field", victim, formType, form(attackerForm.Fields.Get("csrf")), nil},
		{"the sign-out form's csrf field", victim, formType, form(logoutForm.Fields.Get("csrf")), nil},
		{"a valid field without the csrf cookie", jarless, formType, form(valid), nil},
		{"the csrf cookie's value as the field", victim, formType, form(sentCookie(victim, loginURL, harness.CSRFCookie)), nil},
		{"a valid token from another origin", victim, formType, form(valid), []string{"Origin", "http://evil.example"}},
		{"a valid token from a sibling origin", victim, formType, form(valid), []string{"Origin", "http://evil.example.com"}},
		{"a valid token from the login host on another port", victim, formType, form(valid), []string{"Origin", "http://" + harness.LoginHost + ":1"}},
		{"a valid token from an opaque origin", victim, formType, form(valid), []string{"Origin", "null"}},
		{"a valid token, Sec-Fetch-Site cross-site", victim, formType, form(valid), []string{"Sec-Fetch-Site", "cross-site"}},
		{"a valid token, Sec-Fetch-Site same-site", victim, formType, form(valid), []string{"Sec-Fetch-Site", "same-site"}},
		{"a text/plain form (no preflight)", victim, "text/plain", form(valid), nil},
		{"JSON from another origin", victim, "application/json", jsonBody, []string{"Origin", "http://evil.example"}},
		{"JSON, Sec-Fetch-Site cross-site", victim, "application/json", jsonBody, []string{"Sec-Fetch-Site", "cross-site"}},
		{"a form posted as multipart", victim, "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\n" + harness.AdminEmail + "\r\n--x--\r\n", []string{"Origin", "http://evil.example"}},
	}
	for _, c := range logins {
		r := s.Post(c.client, loginURL, c.contentType, c.body, c.headers...)
		if r.StatusCode != http.StatusForbidden || setsSession(r.Response) || r.Header.Get("Location") != "" {
			t.Errorf("login with %s: %s, Location %q, cookies %q; want 403 and no session",
				c.name, r.Status, r.Header.Get("Location"), r.Header.Values("Set-Cookie"))
		}
	}

	// Sign-out: the victim is logged in, and every forged sign-out leaves the session alive.
	sess := s.BrowserLogin(victim, harness.AdminEmail, harness.AdminPassword)
	_, logoutForm = s.OpenLoginPage(victim, logoutURL)
	alive := func() bool {
		a := viaTraefik(s, probe{target: "/orders", headers: []string{"Cookie", harness.SessionCookie + "=" + sess.Value, "Accept", "application/json"}})
		return a.status == http.StatusOK
	}
	if !alive() {
		t.Fatalf("the victim's session does not pass before the sign-out attacks")
	}
	logoutValid := logoutForm.Fields.Get("csrf")
	logoutForm2 := func(csrf string) string {
		v := url.Values{"everywhere": {"true"}}
		if csrf != "" {
			v.Set("csrf", csrf)
		}
		return v.Encode()
	}
	logouts := []struct {
		name              string
		contentType, body string
		headers           []string
	}{
		{"no csrf field", formType, logoutForm2(""), nil},
		{"a made-up csrf field", formType, logoutForm2(base64.RawURLEncoding.EncodeToString(randomBytes(t, 32))), nil},
		{"the login form's csrf field", formType, logoutForm2(loginForm.Fields.Get("csrf")), nil},
		{"the attacker's login csrf field", formType, logoutForm2(attackerForm.Fields.Get("csrf")), nil},
		{"a valid token from another origin", formType, logoutForm2(logoutValid), []string{"Origin", "http://evil.example"}},
		{"a valid token, Sec-Fetch-Site cross-site", formType, logoutForm2(logoutValid), []string{"Sec-Fetch-Site", "cross-site"}},
		{"a valid token, Sec-Fetch-Site same-site", formType, logoutForm2(logoutValid), []string{"Sec-Fetch-Site", "same-site"}},
		{"a text/plain body (no preflight)", "text/plain", `{"everywhere":true}`, nil},
		{"JSON from another origin", "application/json", `{"everywhere":true}`, []string{"Origin", "http://evil.example"}},
		{"JSON, Sec-Fetch-Site cross-site", "application/json", `{"everywhere":true}`, []string{"Sec-Fetch-Site", "cross-site"}},
	}
	for _, c := range logouts {
		r := s.Post(victim, logoutURL, c.contentType, c.body, c.headers...)
		if r.StatusCode != http.StatusForbidden {
			t.Errorf("sign-out with %s: %s, want 403", c.name, r.Status)
		}
		if !alive() {
			t.Fatalf("sign-out with %s ended the session", c.name)
		}
	}
	// A link or an image cannot sign out: GET only shows the form.
	r, _ := s.Get(victim, logoutURL+"&everywhere=true", "Accept", harness.BrowserAccept)
	s.ExpectStatus(r, http.StatusOK, "GET the sign-out page")
	if !alive() {
		t.Fatalf("GET /auth/logout ended the session")
	}
	counted("cookies", len(logins)+len(logouts)+1, len(logins)+2*len(logouts)+2)

	// The victim's own sign-out, from the page, works (as the login from the page did above).
	r = s.SubmitForm(victim, logoutForm)
	s.ExpectStatus(r, http.StatusSeeOther, "the sign-out form with its token")
	if alive() {
		t.Errorf("the session passes after the real sign-out")
	}
}

// Password guessing is answered 429 with Retry-After: per account, even for the right password
// once the account is limited, and per client address, whatever X-Forwarded-For or X-Real-IP the
// client claims (the webhook trusts neither by default). The limits are lowered for the test, so
// that few bcrypt checks (a second each with the race detector) reach them and a slow run cannot
// see a bucket refill.
func testBruteForce(t *testing.T) {
	t.Parallel()
	const perAccount, perIP = 2, 3
	s := newSuite(t, func(o *webhook.Options) { o.LoginsPerMinuteAccount, o.LoginsPerMinuteIP = perAccount, perIP })
	loginURL := s.AuthURL("/auth/login?policy=" + harness.PolicyRef)
	attempt := func(email, password string, headers ...string) harness.Response {
		body, _ := json.Marshal(map[string]string{"email": email, "password": password})
		return s.Post(s.NewClient(false), loginURL, "application/json", string(body), headers...)
	}
	expectLimited := func(what string, r harness.Response) {
		t.Helper()
		secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if r.StatusCode != http.StatusTooManyRequests || err != nil || secs < 1 || secs > 120 {
			t.Errorf("%s: %s with Retry-After %q; want 429 with a delay in seconds", what, r.Status, r.Header.Get("Retry-After"))
		}
		if setsSession(r.Response) || strings.Contains(r.Body, "access_token") {
			t.Errorf("%s: a limited attempt logged in", what)
		}
	}

	// One account.
	requests, limitedAt := 0, 0
	for i := 1; i <= perAccount+2 && limitedAt == 0; i++ {
		r := attempt(harness.AdminEmail, "guess-"+strconv.Itoa(i))
		requests++
		switch r.StatusCode {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			limitedAt = i
			expectLimited("guess "+strconv.Itoa(i), r)
		default:
			t.Fatalf("guess %d: %s %s", i, r.Status, r.Body)
		}
	}
	if limitedAt != perAccount+1 {
		t.Fatalf("guessing one account's password: limited at attempt %d, want %d (limit %d a minute)", limitedAt, perAccount+1, perAccount)
	}
	expectLimited("the right password on the limited account", attempt(harness.AdminEmail, harness.AdminPassword))
	requests++

	// One address, many accounts, each guess claiming another address: the address has spent
	// perAccount of its attempts above (limited attempts take nothing), so one is left; the loop
	// allows for one more, refilled while a slow run guesses.
	limitedAt = 0
	for i := 1; i <= perIP && limitedAt == 0; i++ {
		fake := "198.51.100." + strconv.Itoa(i)
		r := attempt("nobody"+strconv.Itoa(i)+"@example.com", "guess", "X-Forwarded-For", fake, "X-Real-IP", fake)
		requests++
		if r.StatusCode == http.StatusTooManyRequests {
			limitedAt = i
			expectLimited("a guess from a claimed address", r)
		} else if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d on another account: %s %s", i, r.Status, r.Body)
		}
	}
	if limitedAt == 0 {
		t.Errorf("guessing from one address over many accounts, claiming other addresses, was not limited within %d attempts (limit %d a minute)", perIP, perIP)
	}

	// The form gets the limit too, with the form again.
	browser := s.NewClient(true)
	_, form := s.OpenLoginPage(browser, loginURL)
	r := s.SubmitLogin(browser, form, harness.EditorEmail, "guess")
	requests++
	expectLimited("the login form from the limited address", r)
	if !strings.Contains(r.Body, "Too many attempts") {
		t.Errorf("the limited login form does not say why: %.300s", r.Body)
	}
	counted("cookies", 3, requests)
}
