package security

import (
	"net/http"
	"testing"

	"github.com/authgate/authgate/test/harness"
)

// protectedSpellings are request targets that some server (nginx, a servlet container, Windows, a
// case-insensitive file system, a framework that decodes twice) serves as /admin or /orders, both
// protected, while a naive reading would see the Public /public/ rule or nothing it knows. None may
// be let through without credentials.
var protectedSpellings = []string{
	// the protected paths themselves, and their case
	"/admin", "/admin/", "/Admin", "/ADMIN", "/aDmIn/", "/orders", "/ORDERS",
	// percent-encoded letters
	"/%61dmin", "/%41DMIN", "/adm%69n", "/%6f%72%64%65%72%73",
	// trailing dots, spaces and slashes
	"/admin.", "/admin./", "/admin..", "/admin%2e", "/admin%20", "/admin%20.", "/admin//", "/admin/.", "/admin/./",
	// duplicate slashes and dot-segments
	"//admin", "///admin", "/./admin", "/public/../admin", "/public/./../admin", "/public//../admin",
	"/public/../../admin", "/public/../orders", "/public/x/../../admin",
	// encoded dot-segments and double encoding
	"/public/%2e%2e/admin", "/public/%2E%2E/admin", "/public/.%2e/admin", "/public/%2e./admin",
	"/public/%252e%252e/admin", "/public/%252E%252E/admin", "/public/.%252e/admin", "/public/%25%32%65%25%32%65/admin",
	// encoded slashes and backslashes
	"/public%2F..%2Fadmin", "/public/..%2Fadmin", "/public/..%2fadmin", "/public/%2e%2e%2fadmin",
	"/public/..%252fadmin", "/public/..%5cadmin", "/public/%5c../admin", `/public/..\admin`, `/public\..\admin`,
	// ";" path parameters
	"/public;/../admin", "/public/..;/admin", "/public/;/../admin", "/public/..;jsessionid=1/admin",
	"/public/%2e%2e;/admin", "/admin;", "/admin;x=1", "/admin;/",
	// case and dot-segments together
	"/PUBLIC/../admin", "/Public/../Admin", "/PUBLIC/%2E%2E/ADMIN",
	// overlong UTF-8, IIS %u escapes, NUL and other control characters
	"/public/%c0%ae%c0%ae/admin", "/public/%c0%af../admin", "/public/%e0%80%ae%e0%80%ae/admin",
	"/public/%u002e%u002e/admin", "/public/%00/../admin", "/public/..%00/admin", "/admin%00",
	"/public/%0a/../admin", "/admin%09", "/admin%0d%0a",
	// query and fragment separators, encoded and raw
	"/admin%3f/public/", "/admin%23/public/", "/admin?/public/", "/admin#/public/",
}

// No spelling of a protected path reaches the Public rule without credentials, through any adapter:
// each is answered with a login, a 401 or a 400, and nginx never passes it to the application. The
// public path itself passes and an admin's token passes /admin, so the denials are about the
// spellings.
func testPathSpellings(t *testing.T) {
	t.Parallel()
	s := newSuite(t)
	requests := 0
	for _, target := range protectedSpellings {
		for _, ad := range adapters {
			p := probe{target: target, headers: []string{"Accept", harness.BrowserAccept}}
			if ad.name == "nginx" && !validRequestLine(p) {
				continue // not a request nginx parses: it answers 400 itself
			}
			a := ad.check(s, p)
			requests++
			expectDenied(t, ad.name+": anonymous "+p.String(), a)
			if ad.name != "nginx" && a.status != http.StatusFound && a.status != http.StatusUnauthorized && a.status != http.StatusBadRequest {
				t.Errorf("%s: anonymous %s: %s; want a login (302), 401 or 400", ad.name, p, a)
			}
		}
	}
	// Method spellings: a rule without methods covers them all, and no method slips past it.
	methods := []string{"HEAD", "OPTIONS", "POST", "PUT", "DELETE", "PATCH", "TRACE", "get", "GeT", "PROPFIND", "X-BYPASS"}
	for _, m := range methods {
		for _, ad := range adapters {
			p := probe{method: m, target: "/admin", headers: []string{"Accept", harness.BrowserAccept}}
			a := ad.check(s, p)
			requests++
			expectDenied(t, ad.name+": anonymous "+p.String(), a)
		}
	}
	counted("paths", len(protectedSpellings)+len(methods), requests)

	admin := adminToken(t, loadKeys(t))
	for _, ad := range adapters {
		expectAllowed(t, ad.name+": anonymous /public/app.css", ad.check(s, probe{target: "/public/app.css"}))
		expectAllowed(t, ad.name+": /admin with the admin's token", ad.check(s, probe{target: "/admin",
			headers: []string{"Authorization", "Bearer " + admin, "Accept", "application/json"}}))
	}
}
