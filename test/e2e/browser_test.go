package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/authgate/authgate/test/harness"
)

// artifactsEnv names a directory to keep the browser test's screenshots in; by default they go to
// the test's temporary directory and are removed with it.
const artifactsEnv = "AUTHGATE_E2E_ARTIFACTS"

// A real browser logs in through nginx and the login page and lands back on the page it asked for,
// with its identity at the application; after a logout the same page sends it to log in again.
func TestBrowserLoginAndLogout(t *testing.T) {
	t.Parallel()
	harness.RequireFile(t, harness.ChromiumBin, "chromium")
	e := newEnv(t, stableSession)
	ctx := newBrowser(t)

	orders := e.AppURL("/orders")
	if err := chromedp.Do(ctx, chromedp.Navigate(orders)); err != nil {
		t.Fatalf("opening %s: %v", orders, err)
	}
	expectLoginPage(t, ctx, e, orders)
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	heading, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("h1")?.textContent ?? ""`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(title, "shop") || !strings.Contains(heading, "shop") {
		t.Errorf("login page title %q, heading %q: want both to name the policy (shop)", title, heading)
	}
	screenshot(t, ctx, "login-page.png")

	// Type and click as a person would; the form posts, the login redirects back through nginx.
	// Over plain http to a host that is not localhost, browsers send no Sec-Fetch-* headers, so
	// the login's cross-origin protection can only judge the post by its Origin header: this is
	// the path a browser on an http-only deployment (secure: false) takes.
	// Queries wait for their element to appear: each step gets 10 s, not the browser's 40.
	stepCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(stepCtx,
		chromedp.SendKeys(chromedp.ID("email"), adminEmail),
		chromedp.SendKeys(chromedp.ID("password"), adminPassword),
	); err != nil {
		t.Fatalf("filling the login form: %v", err)
	}
	resp, err := chromedp.RunResponse(stepCtx, chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	if err != nil {
		t.Fatalf("submitting the login form: %v", err)
	}
	if resp.Status != http.StatusOK {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("after submitting the login form the browser is at %s, answered %d %s:\n%s",
			resp.URL, resp.Status, resp.StatusText, text)
	}
	waitLocation(t, ctx, func(u *url.URL) bool { return u.String() == orders }, "back on "+orders)

	// The page is the upstream's echo of what it received from nginx.
	body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector("pre") || document.body).innerText`))
	if err != nil {
		t.Fatal(err)
	}
	var echoed harness.SeenRequest
	if err := json.Unmarshal([]byte(body), &echoed); err != nil {
		t.Fatalf("the page is not the upstream's echo (%v):\n%s", err, body)
	}
	if echoed.URI != "/orders" {
		t.Errorf("the upstream received %s, want /orders", echoed.URI)
	}
	expectIdentity(t, "the upstream (as the page shows)", echoed.Headers, adminIdentity)

	// The browser holds the session cookie as the policy sets it.
	sess := browserSessionCookie(t, ctx, e)
	switch {
	case sess == nil:
		t.Fatalf("the browser holds no %s cookie for %s", sessionCookie, orders)
	case !sess.HTTPOnly || sess.Secure || sess.Domain != ".example.com" || sess.SameSite != network.CookieSameSiteLax:
		t.Errorf("the browser's session cookie: HttpOnly %t, Secure %t, Domain %q, SameSite %q; want true, false, .example.com, Lax",
			sess.HTTPOnly, sess.Secure, sess.Domain, sess.SameSite)
	}

	// Log out. No page of authgate renders a logout form, so the test posts the JSON logout with
	// the browser's own cookie, as a script of the application would.
	e.APILogout(`{}`, sessionCookie+"="+sess.Value)

	if err := chromedp.Do(ctx, chromedp.Navigate(orders)); err != nil {
		t.Fatalf("opening %s after the logout: %v", orders, err)
	}
	expectLoginPage(t, ctx, e, orders)
	if c := browserSessionCookie(t, ctx, e); c != nil {
		t.Errorf("the browser still holds the dead session cookie: the redirect to the login page should have cleared it")
	}
}

// newBrowser starts a headless Chromium for the test and returns its context, which ends (and
// kills the browser) when the test does, or after 40 s.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	t.Cleanup(cancel)
	output := &harness.LockedBuffer{}
	// The flags are listed one by one rather than taken from chromedp.DefaultExecAllocatorOptions:
	// nothing here may reach beyond the machine. --host-resolver-rules sends every host name to
	// 127.0.0.1 (ports are kept), so shop.example.com and auth.example.com reach nginx and the
	// webhook, and anything else Chromium tries fails on loopback. chromedp adds
	// --remote-debugging-pipe (no port is opened) and about:blank.
	allocCtx, allocCancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(harness.ChromiumBin),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // tests run as root, where the sandbox cannot start
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("host-resolver-rules", "MAP * 127.0.0.1"),
		chromedp.CombinedOutput(output),
	)
	t.Cleanup(allocCancel)
	browserCtx, browserCancel := chromedp.NewContext(allocCtx)
	t.Cleanup(browserCancel)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chromium output (without its D-Bus complaints; the test machine has no bus):\n%s", withoutDBus(output.String()))
		}
	})
	// Start the browser now, so that a Chromium that cannot start fails here, with its output.
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting %s: %v\n%s", harness.ChromiumBin, err, output.String())
	}
	return browserCtx
}

// expectLoginPage waits until the browser shows the login page of the shop policy, sent there from
// original.
func expectLoginPage(t *testing.T, ctx context.Context, e *harness.Env, original string) {
	t.Helper()
	waitLocation(t, ctx, func(u *url.URL) bool {
		return u.Host == loginHost+":"+e.WebhookPort && u.Path == "/auth/login"
	}, "on the login page")
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(loc)
	if got := u.Query().Get("rd"); got != original {
		t.Errorf("the login page's rd = %q, want %q", got, original)
	}
	if got := u.Query().Get("policy"); got != policyRef {
		t.Errorf("the login page's policy = %q, want %q", got, policyRef)
	}
	hasCSRF, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('form input[name="csrf"]')?.value.length > 0`))
	if err != nil || !hasCSRF {
		t.Errorf("the login page has no csrf field (%v)", err)
	}
}

// waitLocation polls the browser's location until ok accepts it.
func waitLocation(t *testing.T, ctx context.Context, ok func(*url.URL) bool, what string) {
	t.Helper()
	last := ""
	if !harness.PollUntil(10*time.Second, 50*time.Millisecond, func() bool {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatalf("reading the browser's location: %v", err)
		}
		last = loc
		u, err := url.Parse(loc)
		return err == nil && ok(u)
	}) {
		t.Fatalf("the browser is not %s after 10s; it is at %s", what, last)
	}
}

// browserSessionCookie returns the session cookie the browser would send to the application, or nil.
func browserSessionCookie(t *testing.T, ctx context.Context, e *harness.Env) *network.Cookie {
	t.Helper()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{e.AppURL("/orders")}})
	if err != nil {
		t.Fatalf("reading the browser's cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == sessionCookie {
			return c
		}
	}
	return nil
}

// screenshot saves a PNG of the page into the test's temporary directory, or into $AUTHGATE_E2E_ARTIFACTS.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("taking a screenshot: %v", err)
	}
	dir := os.Getenv(artifactsEnv)
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// withoutDBus drops Chromium's D-Bus error lines, which a machine without a session bus prints by
// the dozen and which say nothing about the test.
func withoutDBus(out string) string {
	var b strings.Builder
	for line := range strings.Lines(out) {
		if !strings.Contains(line, ":ERROR:dbus/") {
			b.WriteString(line)
		}
	}
	return b.String()
}
