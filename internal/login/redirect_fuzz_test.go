package login

import (
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/policy"
)

// FuzzValidateRedirect checks what the login handlers rely on, for any input: an accepted redirect
// is an absolute http(s) URL without user information, control characters, spaces or backslashes,
// on a host the policy allows (the page's own host for a relative input), which validates again to
// itself; a refused one gets an error that repeats at most 100 bytes of the input.
func FuzzValidateRedirect(f *testing.F) {
	for _, tc := range hostileRedirects {
		f.Add(tc.in)
	}
	for _, s := range []string{
		"/", "/orders?id=1#x", "/a/b", "/..//evil.com", "/a/%2e%2e/b", "/%2e%2e/%2e%2e//evil.com",
		"/?a=%zz&b=100%", "/caf\u00e9?q=\u00e9#\u00e9", "/#a#b", "/?a=b?c#d#e", "/;x", "/x;/../y",
		"https://shop.example.com/", "HTTPS://SHOP.EXAMPLE.COM./A", "https://shop.example.com:08443/",
		"https://shop.example.com:/x", "https://a.b.example.com/?x='\"<>`{}|^", "https://shop.example.org",
		"https://[::1]:8080/", "http://example.com/..%2f", "https://example.com/a/../../b",
		"https://shop.example.com/%C0%AE%C0%AE/", "https://shop.example.com/%u002e", "/%25",
		"https://shop.example.com/#%25%2", "https://shop.example.com?", "https://shop.example.com#",
	} {
		f.Add(s)
	}
	p := shopPolicy(f)
	base := mustURL(f, pageURL)
	f.Fuzz(func(t *testing.T, rd string) {
		got, err := ValidateRedirect(p, rd, base)
		if err != nil {
			if got != "" {
				t.Fatalf("ValidateRedirect(%q) = %q with error %v", rd, got, err)
			}
			checkEcho(t, rd, err)
			return
		}
		checkRedirect(t, p, rd, got)
		if rd[0] == '/' {
			if u, _ := url.Parse(got); u.Host != "shop.example.com" {
				t.Fatalf("ValidateRedirect(%q) = %q: a relative path left the page's host", rd, got)
			}
		}
		for _, b := range []*url.URL{base, nil} {
			if again, err := ValidateRedirect(p, got, b); err != nil || again != got {
				t.Fatalf("ValidateRedirect(%q) = %q, but validating that again gives %q, %v", rd, got, again, err)
			}
		}
	})
}

// checkRedirect checks that got, accepted for rd, is safe to put in a Location header.
func checkRedirect(t *testing.T, p *policy.Policy, rd, got string) {
	t.Helper()
	if len(got) > MaxRedirectLen {
		t.Fatalf("ValidateRedirect(%q) = %d bytes, more than %d", rd, len(got), MaxRedirectLen)
	}
	for i := 0; i < len(got); i++ {
		if b := got[i]; b <= ' ' || b >= 0x7f || b == '\\' {
			t.Fatalf("ValidateRedirect(%q) = %q: contains byte 0x%02X", rd, got, b)
		}
	}
	u, err := url.Parse(got)
	if err != nil {
		t.Fatalf("ValidateRedirect(%q) = %q, which does not parse: %v", rd, got, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		t.Fatalf("ValidateRedirect(%q) = %q: scheme %q", rd, got, u.Scheme)
	}
	if !strings.HasPrefix(got, u.Scheme+"://"+u.Host) || u.Opaque != "" || u.User != nil || u.Host == "" ||
		strings.ContainsAny(u.Host, "@%") {
		t.Fatalf("ValidateRedirect(%q) = %q: not scheme://host with a plain host", rd, got)
	}
	// Where a browser would see the authority end.
	rest := strings.TrimPrefix(got, u.Scheme+"://")
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		rest = rest[:end]
	}
	if rest != u.Host {
		t.Fatalf("ValidateRedirect(%q) = %q: authority %q, net/url reads %q", rd, got, rest, u.Host)
	}
	host, err := policy.NormalizeHost(u.Host)
	if err != nil {
		t.Fatalf("ValidateRedirect(%q) = %q: host does not normalize: %v", rd, got, err)
	}
	if !p.Login().RedirectHostAllowed(host) {
		t.Fatalf("ValidateRedirect(%q) = %q: host %q is not allowed", rd, got, host)
	}
	if strings.HasPrefix(u.EscapedPath(), "//") {
		t.Fatalf("ValidateRedirect(%q) = %q: path starts with //", rd, got)
	}
	// Browsers resolve dot-segments, written plainly or as %2e; none may be left for them.
	for seg := range strings.SplitSeq(u.EscapedPath(), "/") {
		if d := strings.ReplaceAll(strings.ToLower(seg), "%2e", "."); d == "." || d == ".." {
			t.Fatalf("ValidateRedirect(%q) = %q: dot-segment %q left in the path", rd, got, seg)
		}
	}
}
