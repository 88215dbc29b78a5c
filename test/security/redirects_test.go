package security

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/authgate/authgate/test/harness"
)

// hostileRedirects are return addresses ("rd") that must never be followed: each sends a browser
// off the allowed domains (.example.com), runs script, or is spelled so that some browser or server
// would read it differently from a checker. Written for this suite; internal/login has its own table
// for ValidateRedirect itself.
var hostileRedirects = []string{
	// scheme-relative and slash tricks
	"//evil.com",
	"//evil.com/shop.example.com",
	"///evil.com",
	"////evil.com/",
	`/\evil.com`,
	`\\evil.com`,
	`\/evil.com`,
	`/\/evil.com`,
	"/%2F%2Fevil.com",
	"/%2f/evil.com",
	"%2F%2Fevil.com",
	"/%5Cevil.com",
	"/%5c%5cevil.com",
	"%5C%5Cevil.com",
	"/%09/evil.com",
	"/\t/evil.com",
	"/\n/evil.com",
	" //evil.com",
	"/.//evil.com",
	"/%2e%2e//evil.com",
	// user information
	"https://shop.example.com@evil.com",
	"https://shop.example.com:443@evil.com/",
	"http://shop.example.com%40evil.com",
	"https://user:password@evil.com",
	`https://evil.com\@shop.example.com`,
	"https://evil.com#@shop.example.com",
	"https://evil.com?@shop.example.com",
	`https://shop.example.com\.evil.com`,
	"https://evil.com/.example.com",
	// look-alike, non-ASCII and punycode hosts
	"https://shop.exаmple.com/",         // Cyrillic а
	"https://ѕhop.example.com/",         // Cyrillic ѕ
	"https://shop.example.com．evil.com", // fullwidth full stop
	"https://evil。com",                  // ideographic full stop
	"https://shop。example。com",
	"https://ｅｖｉｌ.com",
	"https://xn--exmple-cua.com",
	"https://shop.xn--exmple-cua.com",
	"https://evil.com%E3%80%82example.com",
	// script and other schemes
	"javascript:alert(1)",
	"JavaScript:alert(document.cookie)",
	"JAVASCRIPT:alert(1)",
	"java\tscript:alert(1)",
	"java\nscript:alert(1)",
	"java\rscript:alert(1)",
	" javascript:alert(1)",
	"\x01javascript:alert(1)",
	"javascript://shop.example.com/%0Aalert(1)",
	"jav&#x09;ascript:alert(1)",
	"data:text/html,<script>alert(1)</script>",
	"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
	"DATA:text/html,x",
	"vbscript:msgbox(1)",
	"VBScript:MsgBox(1)",
	"file:///etc/passwd",
	"ftp://evil.com/",
	// CR, LF and NUL, raw and encoded
	"/%0d%0aLocation:%20https://evil.com",
	"/%0D%0ASet-Cookie:%20authgate_session=fixed",
	"https://shop.example.com/%0d%0aLocation:https://evil.com",
	"/\r\nLocation: https://evil.com",
	"https://evil.com\x00.example.com",
	"https://evil.com%00.example.com",
	"/%00/evil.com",
	// trailing dots and ports
	"https://evil.com.",
	"https://evil.com.:443/",
	"https://shop.example.com.evil.com",
	"https://shop.example.com.evil.com.",
	"https://example.com.evil.com/",
	"https://evil.com:80/",
	"https://evil.com:443/shop.example.com",
	"https://evil.com:8080#.example.com",
	"https://shop.example.com:99999/",
	"https://shop.example.com:0x1bb/",
	"https://shop.example.com:-1/",
	// scheme spellings
	"https:evil.com",
	"https:/evil.com",
	`https:\\evil.com`,
	"HtTpS://evil.com",
	"HTTP://EVIL.COM/",
	`hTTp:/\evil.com`,
	"https://",
	"http:///evil.com",
	"evil.com",
	"evil.com/shop.example.com",
	// addresses
	"https://[::1]/",
	"https://127.0.0.1/",
	"https://2130706433/",
	"https://0x7f.0.0.1/",
	"http://169.254.169.254/latest/meta-data/",
	// overlong UTF-8 and double encoding
	"/%C0%AF%C0%AFevil.com",
	"/%C0%AE%C0%AE/%C0%AE%C0%AE//evil.com",
	"https://shop.example.com/%C0%AE%C0%AE//evil.com",
	"/%E0%80%AF/evil.com",
	"/%252f%252fevil.com",
	"https://shop.example.com/%252f%252fevil.com",
	// too long to be a real return address
	"https://shop.example.com/" + strings.Repeat("a", 3000),
}

// rebuiltRedirects look like the scheme-relative ones but start with dot-segments: resolved as a
// browser resolves them they are paths of the page's own host ("/..//evil.com" is
// "http://<login host>//evil.com"). The validator may refuse them or answer an address it rebuilt
// from what it checked; either way the browser must stay on the allowed hosts.
var rebuiltRedirects = []string{
	"/..//evil.com",
	"/x/../..//evil.com",
	"/../../evil.com",
	"http://shop.example.com/..//evil.com",
	"https://shop.example.com/a/../..//evil.com/",
}

// Every hostile return address is refused by the login form, the JSON login and the sign-out form,
// through a running webhook; the login page that carries it stays inert. A good address passes
// each endpoint, so the refusals are about the addresses.
func testRedirectsAtLoginEndpoints(t *testing.T) {
	t.Parallel()
	s := newSuite(t, lenientLimits)
	browser := s.NewClient(true)
	loginURL := func(rd string) string {
		return s.AuthURL("/auth/login?" + url.Values{"policy": {harness.PolicyRef}, "rd": {rd}}.Encode())
	}
	_, loginForm := s.OpenLoginPage(browser, loginURL("/"))
	_, logoutForm := s.OpenLoginPage(browser, s.AuthURL("/auth/logout?policy="+harness.PolicyRef))
	signedOut := "/auth/login?policy=shop%2Fshop"

	requests := 0
	for _, rd := range hostileRedirects {
		what := "rd " + quoteShort(rd)

		// The login page carrying the address renders it inert: no script, no event handler, no
		// link anywhere.
		page, _ := s.Get(browser, loginURL(rd), "Accept", harness.BrowserAccept)
		requests++
		if page.StatusCode != http.StatusOK {
			t.Errorf("%s: the login page answered %s", what, page.Status)
		} else if bad := activeContent(page.Body); bad != "" {
			t.Errorf("%s: the login page holds %s", what, bad)
		}

		// The form post, with the right password: refused for the address before the password.
		r := s.SubmitForm(browser, loginForm, "email", harness.AdminEmail, "password", harness.AdminPassword, "rd", rd)
		requests++
		if r.StatusCode != http.StatusBadRequest || r.Header.Get("Location") != "" ||
			!strings.Contains(r.Body, "The page to return to is not allowed.") || setsSession(r.Response) {
			t.Errorf("%s: the login form answered %s, Location %q, cookies %q; want 400 with the form again and no session",
				what, r.Status, r.Header.Get("Location"), r.Header.Values("Set-Cookie"))
		}

		// The JSON login.
		body, _ := json.Marshal(map[string]string{"email": harness.AdminEmail, "password": harness.AdminPassword, "rd": rd})
		r = s.Post(s.NewClient(false), s.AuthURL("/auth/login?policy="+harness.PolicyRef), "application/json", string(body))
		requests++
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, `"invalid_redirect"`) || setsSession(r.Response) {
			t.Errorf("%s: the JSON login answered %s %.200s, cookies %q; want 400 invalid_redirect and no session",
				what, r.Status, r.Body, r.Header.Values("Set-Cookie"))
		}

		// The sign-out form: signed out, and sent to the login page instead.
		r = s.SubmitForm(browser, logoutForm, "rd", rd)
		requests++
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != signedOut {
			t.Errorf("%s: the sign-out form answered %s with Location %q; want 303 to %s",
				what, r.Status, r.Header.Get("Location"), signedOut)
		}
	}
	// The dot-segment spellings are refused, or rebuilt into an address on the allowed hosts. The
	// sign-out form shows where the validator sends the browser (the login's validation, without a
	// password check to pay for).
	for _, rd := range rebuiltRedirects {
		r := s.SubmitForm(browser, logoutForm, "rd", rd)
		s.expectOnSite(t, "rd "+quoteShort(rd)+": the sign-out form", r)
		requests++
	}
	counted("redirects", len(hostileRedirects)+len(rebuiltRedirects), requests)

	// A good address passes all three, so the test can tell a refusal from a broken endpoint.
	good := s.AppURL("/orders?id=7")
	r := s.SubmitForm(browser, loginForm, "email", harness.AdminEmail, "password", harness.AdminPassword, "rd", good)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != good {
		t.Errorf("the login form with rd %s answered %s, Location %q; want 303 to it", good, r.Status, r.Header.Get("Location"))
	}
	body, _ := json.Marshal(map[string]string{"email": harness.AdminEmail, "password": harness.AdminPassword, "rd": good})
	r = s.Post(s.NewClient(false), s.AuthURL("/auth/login?policy="+harness.PolicyRef), "application/json", string(body))
	s.ExpectStatus(r, http.StatusOK, "the JSON login with rd "+good)
	r = s.SubmitForm(browser, logoutForm, "rd", good)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != good {
		t.Errorf("the sign-out form with rd %s answered %s, Location %q; want 303 to it", good, r.Status, r.Header.Get("Location"))
	}
}

// hostileHosts and hostilePaths are what a client controls of the original URL that Traefik and
// Envoy (and nginx's auth-signin) put into the login redirect's rd.
var (
	hostileHosts = []string{
		"evil.com", "evil.com.", "EVIL.COM", "shop.example.com.evil.com", "example.com.evil.com",
		"evil.com:443", "evil.com:80", "xn--exmple-cua.com", "127.0.0.1", "[::1]", "169.254.169.254",
		"shop.example.com@evil.com", "shop.exаmple.com", `evil.com\.example.com`, "evil.com%2F.example.com",
		"evil.com/.example.com",
	}
	hostilePaths = []string{
		"//evil.com/", "///evil.com", "/.//evil.com", "/..//evil.com", "/%2F%2Fevil.com", `/\evil.com`,
		"/%5Cevil.com", "/%09/evil.com", "/%2e%2e//evil.com", "//evil.com%2F..",
	}
)

// The login redirect that Traefik and Envoy answer browsers with (and the one nginx's auth-signin
// builds) goes to the login page only, and the hostile original URL it carries in rd is refused
// there when the browser logs in.
func testRedirectsBuiltForBrowsers(t *testing.T) {
	t.Parallel()
	s := newSuite(t, lenientLimits)
	var probes []probe
	for _, h := range hostileHosts {
		probes = append(probes, probe{host: h, target: "/orders", headers: []string{"Accept", harness.BrowserAccept}})
	}
	for _, p := range hostilePaths {
		probes = append(probes, probe{target: p, headers: []string{"Accept", harness.BrowserAccept}})
	}
	requests, redirects := 0, 0
	followed := map[string]bool{} // Traefik and both Envoy services build the same login URL
	for i, p := range probes {
		// A hostile host must be refused; a hostile path on the shop's own host may also be
		// rebuilt into an address on it.
		mustRefuse := i < len(hostileHosts)
		for _, ad := range adapters {
			what := ad.name + ": " + p.String()
			if ad.name == "nginx" && !validRequestLine(p) {
				continue // nginx refuses the request itself; the other adapters get it
			}
			a := ad.check(s, p)
			requests++
			expectDenied(t, what, a)
			loc := a.header.Get("Location")
			if ad.name == "nginx" {
				loc = a.client.Get("Location")
			}
			if a.status != http.StatusFound {
				if loc != "" {
					t.Errorf("%s: %s with Location %q", what, a, loc)
				}
				continue // refused at the check: nothing to follow
			}
			redirects++
			if !followed[loc] {
				followed[loc] = true
				requests += s.followLoginRedirect(t, what, loc, mustRefuse)
			}
		}
	}
	if redirects == 0 {
		t.Errorf("no probe was answered with a login redirect: the test followed none")
	}
	counted("redirects", len(probes), requests)
}

// followLoginRedirect checks that loc is the login page, opens it as the browser would, and posts
// the form with the right password: the login must refuse the rd it carries (or, unless mustRefuse,
// send the browser to an address on the allowed hosts). It returns the requests it made.
func (s *suite) followLoginRedirect(t *testing.T, what, loc string, mustRefuse bool) int {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil || u.Scheme != "http" || u.Host != harness.LoginHost+":"+s.WebhookPort || u.Path != "/auth/login" || u.User != nil {
		t.Errorf("%s: Location %q is not the login page http://%s:%s/auth/login", what, loc, harness.LoginHost, s.WebhookPort)
		return 0
	}
	if strings.ContainsAny(loc, "\r\n\x00 ") {
		t.Errorf("%s: Location %q holds control characters", what, loc)
	}
	browser := s.NewClient(true)
	_, form := s.OpenLoginPage(browser, loc)
	rd := u.Query().Get("rd")
	if form.Fields.Get("rd") != rd {
		t.Errorf("%s: the login page's rd field is %q, want the redirect's %q", what, form.Fields.Get("rd"), rd)
	}
	r := s.SubmitLogin(browser, form, harness.AdminEmail, harness.AdminPassword)
	switch {
	case r.StatusCode == http.StatusBadRequest && r.Header.Get("Location") == "" && !setsSession(r.Response):
	case !mustRefuse && r.StatusCode == http.StatusSeeOther:
		s.expectOnSite(t, what+": logging in with rd "+quoteShort(rd), r)
	default:
		t.Errorf("%s: logging in with rd %q answered %s, Location %q; want 400 and no session",
			what, rd, r.Status, r.Header.Get("Location"))
	}
	return 2
}

// expectOnSite fails the test unless r is a 303 whose Location, resolved as a browser resolves it
// against the request's URL, is an http(s) URL on a host under example.com (the policy's
// allowedRedirectDomains) with a path that no browser reads as another host.
func (s *suite) expectOnSite(t *testing.T, what string, r harness.Response) {
	t.Helper()
	loc := r.Header.Get("Location")
	if r.StatusCode != http.StatusSeeOther {
		t.Errorf("%s: answered %s, want 400 or a 303 on the allowed hosts", what, r.Status)
		return
	}
	if strings.ContainsAny(loc, "\\\t\r\n\x00 ") {
		t.Errorf("%s: Location %q holds characters browsers drop or read as '/'", what, loc)
		return
	}
	ref, err := url.Parse(loc)
	if err != nil {
		t.Errorf("%s: Location %q does not parse: %v", what, loc, err)
		return
	}
	u := r.Request.URL.ResolveReference(ref)
	host := strings.ToLower(u.Hostname())
	if (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || !strings.HasSuffix(host, ".example.com") ||
		strings.HasPrefix(u.EscapedPath(), "//") {
		t.Errorf("%s: Location %q sends the browser to %s, off the allowed hosts", what, loc, u)
	}
}

// validRequestLine reports whether the probe can be sent as an HTTP/1.1 request that nginx parses
// (a host of host-name characters, a target without control characters or backslashes).
func validRequestLine(p probe) bool {
	for _, r := range p.hostName() {
		if r > 0x7e || strings.ContainsRune(`\%@/`, r) {
			return false
		}
	}
	return !strings.ContainsAny(p.target, "\\\x00\t\r\n ")
}

// activeContent returns a description of the first thing in an HTML page that could run or
// navigate (a script, an event handler, a javascript: or data: URL, a meta refresh), or "".
func activeContent(page string) string {
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		return "markup that does not parse: " + err.Error()
	}
	var found string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if found != "" {
			return
		}
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "iframe", "object", "embed", "base":
				found = "a <" + n.Data + "> element"
				return
			case "meta":
				if strings.EqualFold(harness.Attr(n, "http-equiv"), "refresh") {
					found = "a meta refresh"
					return
				}
			}
			for _, a := range n.Attr {
				v := strings.ToLower(strings.TrimSpace(a.Val))
				switch {
				case strings.HasPrefix(strings.ToLower(a.Key), "on"):
					found = "an event handler attribute " + a.Key
				case (a.Key == "href" || a.Key == "src" || a.Key == "action" || a.Key == "formaction") &&
					(strings.HasPrefix(v, "javascript:") || strings.HasPrefix(v, "data:") || strings.HasPrefix(v, "vbscript:")):
					found = "a " + a.Key + " of " + v
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return found
}

// setsSession reports whether an answer sets a session cookie with a value.
func setsSession(resp *http.Response) bool {
	for _, c := range resp.Cookies() {
		if c.Name == harness.SessionCookie && c.Value != "" {
			return true
		}
	}
	return false
}

// quoteShort quotes a payload for a message, shortened.
func quoteShort(s string) string {
	if len(s) > 80 {
		return strconv.Quote(s[:80]) + "..."
	}
	return strconv.Quote(s)
}
