package login

import (
	"net/url"
	"strings"
	"sync"
	"testing"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
)

var (
	fixturePolicyOnce sync.Once
	fixturePolicy     *policy.Policy
	fixturePolicyErr  error
)

// shopPolicy is the fixture's policy: redirects to .example.com and shop.example.org.
func shopPolicy(t testing.TB) *policy.Policy {
	t.Helper()
	fixturePolicyOnce.Do(func() {
		fixturePolicy, fixturePolicyErr = policy.Compile(fixture.AuthPolicy(), fixture.Secrets())
	})
	if fixturePolicyErr != nil {
		t.Fatalf("compiling the fixture policy: %v", fixturePolicyErr)
	}
	return fixturePolicy
}

// policyWithRedirects is the fixture's policy with other allowed redirect domains.
func policyWithRedirects(t testing.TB, domains ...authgatev1.DomainMatch) *policy.Policy {
	t.Helper()
	ap := fixture.AuthPolicy()
	ap.Spec.Login.AllowedRedirectDomains = domains
	p, err := policy.Compile(ap, fixture.Secrets())
	if err != nil {
		t.Fatalf("compiling the policy: %v", err)
	}
	return p
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

const pageURL = "https://shop.example.com/app/page?q=1#top"

// hostileRedirects must all be refused under the fixture policy, with base pageURL. Each is a way
// some browser or server has been talked into leaving the allowed hosts, or something that must never
// reach a Location header.
var hostileRedirects = []struct {
	name, in string
	// want is a substring of the error, where the reason matters.
	want string
}{
	{"empty", "", "empty"},

	// Scheme-relative and its disguises: browsers read '\' as '/' and skip tabs and newlines.
	{"scheme-relative", "//evil.com", "//"},
	{"scheme-relative to an allowed host", "//shop.example.com/", "//"},
	{"three slashes", "///evil.com", "//"},
	{"two backslashes", `\\evil.com`, "backslash"},
	{"slash backslash", `/\evil.com`, "backslash"},
	{"slash backslash slash", `/\/evil.com`, "backslash"},
	{"backslash slash", `\/evil.com`, "backslash"},
	{"slash tab slash", "/\t/evil.com", "control character 0x09"},
	{"slash newline slash", "/\n/evil.com", "control character 0x0A"},
	{"slash CR slash", "/\r/evil.com", "control character 0x0D"},
	{"dot slash slash", ".//evil.com", "must be an absolute"},

	// Schemes without "//": browsers treat what follows as the host.
	{"https colon host", "https:evil.com", `"//"`},
	{"https colon slash host", "https:/evil.com", `"//"`},
	{"https colon backslashes", `https:\\evil.com`, "backslash"},
	{"http colon slash backslash", `http:/\evil.com`, "backslash"},
	{"empty host", "https:///path", "empty host"},
	{"empty host evil path", "https:///evil.com", "empty host"},
	{"empty host with port", "https://:443/", "empty"},

	// User information, in every spelling.
	{"userinfo allowed-looking", "https://shop.example.com@evil.com", "user information"},
	{"userinfo backslash", `https://evil.com\@shop.example.com`, "backslash"},
	{"userinfo with port", "https://shop.example.com:443@evil.com", "user information"},
	{"userinfo on allowed host", "https://user:pass@shop.example.com/", "user information"},
	{"empty userinfo", "https://@shop.example.com/", "user information"},
	{"userinfo with encoded slash", "https://shop.example.com%2f@evil.com", "user information"},
	{"userinfo before IPv6", "https://[::1]:80@evil.com", "user information"},

	// Other schemes.
	{"javascript", "javascript:alert(1)", "scheme"},
	{"javascript mixed case", "JaVaScRiPt:alert(1)", "scheme"},
	{"javascript with slashes", "javascript://shop.example.com/%0aalert(1)", "control character"},
	{"data", "data:text/html,<script>alert(1)</script>", "scheme"},
	{"vbscript", "vbscript:msgbox(1)", "scheme"},
	{"file", "file:///etc/passwd", "scheme"},
	{"ftp to allowed host", "ftp://shop.example.com/", "scheme"},
	{"blob", "blob:https://shop.example.com/0b3c", "scheme"},
	{"no scheme", "shop.example.com/orders", "must be an absolute"},
	{"relative without slash", "orders", "must be an absolute"},
	{"query only", "?next=/", "must be an absolute"},
	{"fragment only", "#top", "must be an absolute"},

	// Control characters, raw or encoded, anywhere.
	{"CRLF header injection", "/\r\nLocation: https://evil.com", "control character"},
	{"encoded CRLF", "/%0d%0aSet-Cookie:%20x=y", "encoded control character (%0D)"},
	{"encoded tab", "/%09/evil.com", "encoded control character (%09)"},
	{"encoded NUL", "/%00", "encoded control character (%00)"},
	{"raw NUL in absolute", "https://shop.example.com/\x00", "control character 0x00"},
	{"encoded LF in query", "https://shop.example.com/?q=%0A", "encoded control character (%0A)"},
	{"encoded CR in fragment", "https://shop.example.com/#%0d", "encoded control character (%0D)"},
	{"DEL", "\x7f/evil.com", "control character 0x7F"},
	{"encoded DEL", "/%7F", "encoded control character (%7F)"},
	{"encoded NUL in host", "https://shop.example.com%00.evil.com/", "encoded control character"},
	{"tab inside host", "https://shop.example.com\t.evil.com/", "control character"},

	// Encoded slashes and backslashes.
	{"encoded slash after slash", "/%2fevil.com", "encoded slash"},
	{"encoded slash upper case", "/%2Fevil.com", "encoded slash"},
	{"encoded backslash", "/%5cevil.com", "encoded slash or backslash"},
	{"encoded backslash upper case", "/%5Cevil.com", "encoded slash or backslash"},
	{"two encoded slashes", "%2f%2fevil.com", "must be an absolute"},
	{"encoded slashes in absolute path", "https://shop.example.com/%2f%2fevil.com", "encoded slash"},
	{"double-encoded slash", "/%252fevil.com", "double-encoded"},
	{"absolute path starting with two slashes", "https://shop.example.com//evil.com", "//"},
	{"encoded dot-segments then two slashes", "/%2e%2e/%2E%2e//evil.com", "encoded dot-segment"},
	{"encoded dot-segment in absolute path", "https://shop.example.com/a/.%2e//evil.com", "encoded dot-segment"},
	{"encoded single dot", "/a/%2e/b", "encoded dot-segment"},

	// Hosts that look allowed but are not.
	{"not allowed", "https://evil.com/", "not one this policy may redirect to"},
	{"not allowed upper case", "HTTPS://EVIL.COM/", "not one this policy may redirect to"},
	{"not allowed trailing dot", "https://evil.com./", "not one this policy may redirect to"},
	{"suffix without dot", "https://evilexample.com/", "not one this policy may redirect to"},
	{"allowed domain as prefix", "https://example.com.evil.com/", "not one this policy may redirect to"},
	{"allowed host as prefix", "https://shop.example.com.evil.com/", "not one this policy may redirect to"},
	{"exact allowed host as prefix", "https://shop.example.org.evil.com/", "not one this policy may redirect to"},
	{"parent of exact host", "https://example.org/", "not one this policy may redirect to"},
	{"child of exact host", "https://www.shop.example.org/", "not one this policy may redirect to"},
	{"two trailing dots", "https://shop.example.com../", "empty label"},
	{"leading dot", "https://.example.com/", "empty label"},
	{"host in fragment", "https://evil.com#.example.com", "not one this policy may redirect to"},
	{"host in query", "https://evil.com?.example.com", "not one this policy may redirect to"},
	{"host in path", "https://evil.com/.example.com", "not one this policy may redirect to"},
	{"encoded dot in host", "https://evil.com%2e.example.com/", "percent-escape"},
	{"encoded letter in host", "https://ex%61mple.com/", "percent-escape"},
	{"encoded ideographic full stop", "https://shop.example.com%E3%80%82evil.com", "percent-escape"},
	{"port out of range", "https://shop.example.com:99999/", "port"},
	{"port not a number", "https://shop.example.com:https/", "port"},
	{"two ports", "https://shop.example.com:80:80/", "more than one ':'"},
	{"bracketed name", "https://[shop.example.com]/", "IPv6"},
	{"unbalanced bracket", "https://[::1/", "'['"},
	{"localhost", "http://localhost/", "not one this policy may redirect to"},
	{"not allowed with port", "https://evil.com:443", "not one this policy may redirect to"},

	// International look-alikes.
	{"Cyrillic e", "https://shop.\u0435xample.com/", "non-ASCII"},
	{"Cyrillic e punycode", "https://shop.xn--xample-2of.com/", "not one this policy may redirect to"},
	{"ideographic full stop", "https://shop\u3002example.com/", "non-ASCII"},
	{"fullwidth letter", "https://\uff53hop.example.com/", "non-ASCII"},
	{"punycode look-alike", "https://xn--80ak6aa92e.com/", "not one this policy may redirect to"},

	// IP literals, in the spellings browsers accept.
	{"IPv4 loopback", "http://127.0.0.1/", "not one this policy may redirect to"},
	{"IPv6 loopback", "http://[::1]/", "not one this policy may redirect to"},
	{"IPv4-mapped IPv6", "http://[::ffff:127.0.0.1]/", "not one this policy may redirect to"},
	{"decimal IPv4", "http://2130706433/", "not one this policy may redirect to"},
	{"hex IPv4", "http://0x7f.0.0.1/", "not one this policy may redirect to"},
	{"octal IPv4", "http://0177.0.0.1/", "not one this policy may redirect to"},
	{"IPv6 with zone", "http://[fe80::1%25eth0]/", "percent-escape"},

	// Whitespace and length.
	{"space before scheme", " https://evil.com", "space"},
	{"space before allowed", " https://shop.example.com/", "space"},
	{"trailing space", "https://shop.example.com/ ", "space"},
	{"too long relative", "/" + strings.Repeat("a", MaxRedirectLen), "longer than 2048"},
	// Found by FuzzValidateRedirect (a false alarm of checkEcho, kept for it).
	{"long, quote after 100 bytes", strings.Repeat("0", 100) + "\"0", "must be an absolute"},
	{"too long absolute", "https://shop.example.com" + strings.Repeat("/a", MaxRedirectLen/2), "longer than 2048"},
}

func TestValidateRedirectRefusesHostileInput(t *testing.T) {
	p := shopPolicy(t)
	base := mustURL(t, pageURL)
	if len(hostileRedirects) < 60 {
		t.Fatalf("only %d hostile cases; want at least 60", len(hostileRedirects))
	}
	seen := map[string]bool{}
	for _, tc := range hostileRedirects {
		if seen[tc.in] {
			t.Errorf("case %q repeats input %q", tc.name, tc.in)
		}
		seen[tc.in] = true
		t.Run(tc.name, func(t *testing.T) {
			got, err := ValidateRedirect(p, tc.in, base)
			if err == nil {
				t.Fatalf("ValidateRedirect(%q) = %q; want it refused", tc.in, got)
			}
			if got != "" {
				t.Errorf("ValidateRedirect(%q) returned %q along with its error", tc.in, got)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ValidateRedirect(%q) error %q; want it to contain %q", tc.in, err, tc.want)
			}
			checkEcho(t, tc.in, err)
		})
	}
}

// checkEcho fails when err repeats more than 100 consecutive bytes of in, or is long enough to
// repeat more in pieces. Stretches of the input that hold '"' or '\' are not looked for: quoting
// escapes both, so where they appear in the message they are its own delimiters, which would make
// "100 zeros and a quote" look like 101 repeated bytes.
func checkEcho(t testing.TB, in string, err error) {
	t.Helper()
	msg := err.Error()
	for i := 0; i+maxEcho+1 <= len(in); i++ {
		w := in[i : i+maxEcho+1]
		if strings.ContainsAny(w, "\"\\") {
			continue
		}
		if strings.Contains(msg, w) {
			t.Fatalf("error for a %d-byte input repeats more than %d bytes of it: %q", len(in), maxEcho, msg)
		}
	}
	if len(msg) > 2*maxEcho+400 {
		t.Fatalf("error is %d bytes long: %q", len(msg), msg)
	}
}

func TestValidateRedirectAccepts(t *testing.T) {
	p := shopPolicy(t)
	for _, tc := range []struct{ base, in, want string }{
		// Relative paths resolve against the page.
		{pageURL, "/", "https://shop.example.com/"},
		{pageURL, "/orders?id=1#x", "https://shop.example.com/orders?id=1#x"},
		{pageURL, "/a/b", "https://shop.example.com/a/b"},
		{pageURL, "/a/./b/../c", "https://shop.example.com/a/c"},
		{pageURL, "/..", "https://shop.example.com/"},
		{pageURL, "/..//evil.com", "https://shop.example.com/evil.com"},
		{pageURL, "/@evil.com", "https://shop.example.com/@evil.com"},
		{pageURL, "/javascript:alert(1)", "https://shop.example.com/javascript:alert(1)"},
		{pageURL, "/caf\u00e9", "https://shop.example.com/caf%C3%A9"},
		{pageURL, "/search?q=caf\u00e9&x='\"<>", "https://shop.example.com/search?q=caf%C3%A9&x=%27%22%3C%3E"},
		{pageURL, "/?a=%zz&b=100%", "https://shop.example.com/?a=%25zz&b=100%25"},
		{pageURL, "/#caf\u00e9", "https://shop.example.com/#caf%C3%A9"},
		{"http://shop.example.com:8080/x", "/y", "http://shop.example.com:8080/y"},
		{"https://auth.example.com/auth/login?policy=shop%2Fshop", "/done", "https://auth.example.com/done"},
		{"https://Shop.Example.com./", "/x", "https://shop.example.com/x"},

		// Absolute URLs on allowed hosts.
		{pageURL, "https://shop.example.com/", "https://shop.example.com/"},
		{pageURL, "https://shop.example.com", "https://shop.example.com"},
		{pageURL, "http://shop.example.com/", "http://shop.example.com/"},
		{pageURL, "HTTPS://shop.example.com/", "https://shop.example.com/"},
		{pageURL, "hTtP://shop.example.com/", "http://shop.example.com/"},
		{pageURL, "https://SHOP.Example.COM/Path", "https://shop.example.com/Path"},
		{pageURL, "https://shop.example.com./", "https://shop.example.com/"},
		{pageURL, "https://shop.example.com:8443/x", "https://shop.example.com:8443/x"},
		{pageURL, "https://shop.example.com:08443/x", "https://shop.example.com:8443/x"},
		{pageURL, "https://shop.example.com:/x", "https://shop.example.com/x"},
		{pageURL, "https://example.com", "https://example.com"},
		{pageURL, "https://a.b.example.com/deep?x=1", "https://a.b.example.com/deep?x=1"},
		{pageURL, "https://shop.example.org/checkout", "https://shop.example.org/checkout"},
		{pageURL, "https://shop.example.com/a/../b/./c", "https://shop.example.com/b/c"},
		{pageURL, "https://shop.example.com/?", "https://shop.example.com/"},
		{pageURL, "https://shop.example.com/x?y#", "https://shop.example.com/x?y"},
		{pageURL, "https://shop.example.com/a%20b", "https://shop.example.com/a%20b"},
		{pageURL, "https://a_b.example.com/", "https://a_b.example.com/"},
		// An absolute rd needs no base.
		{"", "https://shop.example.com/x", "https://shop.example.com/x"},
	} {
		var base *url.URL
		if tc.base != "" {
			base = mustURL(t, tc.base)
		}
		got, err := ValidateRedirect(p, tc.in, base)
		if err != nil {
			t.Errorf("ValidateRedirect(%q, base %q): %v", tc.in, tc.base, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ValidateRedirect(%q, base %q) = %q; want %q", tc.in, tc.base, got, tc.want)
		}
		again, err := ValidateRedirect(p, got, nil)
		if err != nil || again != got {
			t.Errorf("ValidateRedirect(%q) = %q, %v; want it unchanged", got, again, err)
		}
	}
}

func TestValidateRedirectRelativeNeedsAnAllowedBase(t *testing.T) {
	p := shopPolicy(t)
	for _, tc := range []struct {
		name string
		base *url.URL
		want string
	}{
		{"no base", nil, "no absolute URL"},
		{"relative base", mustURL(t, "/app"), "no absolute URL"},
		{"base on a host not allowed", mustURL(t, "https://evil.com/app"), "page it is relative to"},
		{"base with userinfo", mustURL(t, "https://user@shop.example.com/"), "user information"},
		{"base with another scheme", mustURL(t, "ftp://shop.example.com/"), "scheme"},
		{"opaque base", mustURL(t, "mailto:a@shop.example.com"), "no absolute URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ValidateRedirect(p, "/orders", tc.base)
			if err == nil {
				t.Fatalf("ValidateRedirect = %q; want it refused", got)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q; want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestValidateRedirectIPLiteralsOnlyWhenAllowed(t *testing.T) {
	p := policyWithRedirects(t, "127.0.0.1", "shop.example.com")
	for in, want := range map[string]string{
		"http://127.0.0.1/x":      "http://127.0.0.1/x",
		"http://127.0.0.1:8080/x": "http://127.0.0.1:8080/x",
		"http://127.0.0.1./x":     "http://127.0.0.1/x",
	} {
		got, err := ValidateRedirect(p, in, nil)
		if err != nil || got != want {
			t.Errorf("ValidateRedirect(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"http://127.0.0.2/", "http://2130706433/", "http://0x7f.0.0.1/", "http://0177.0.0.1/",
		"http://127.1/", "http://[::ffff:127.0.0.1]/", "http://[::1]/", "https://a.example.com/",
	} {
		if got, err := ValidateRedirect(p, in, nil); err == nil {
			t.Errorf("ValidateRedirect(%q) = %q; want it refused", in, got)
		}
	}

	p6 := policyWithRedirects(t, "shop.example.com")
	if got, err := ValidateRedirect(p6, "http://[::1]/", nil); err == nil {
		t.Errorf("ValidateRedirect(http://[::1]/) = %q; want it refused", got)
	}
}

func TestValidateRedirectWithoutLoginSettings(t *testing.T) {
	ap := fixture.AuthPolicy()
	ap.Spec.Login.AllowedRedirectDomains = nil
	p, err := policy.Compile(ap, fixture.Secrets())
	if err != nil {
		t.Fatal(err)
	}
	// Without a list, only the policy's exact hosts.
	if got, err := ValidateRedirect(p, "https://shop.example.com/x", nil); err != nil || got != "https://shop.example.com/x" {
		t.Errorf("exact host: %q, %v", got, err)
	}
	if got, err := ValidateRedirect(p, "https://a.shop.example.com/x", nil); err == nil {
		t.Errorf("wildcard host: %q; want it refused", got)
	}
	if got, err := ValidateRedirect(nil, "/", mustURL(t, pageURL)); err == nil {
		t.Errorf("nil policy: %q; want it refused", got)
	}
}

func TestValidateRedirectErrorEchoesAtMost100Bytes(t *testing.T) {
	p := shopPolicy(t)
	base := mustURL(t, pageURL)
	long := strings.Repeat("x", 300)
	for _, in := range []string{
		"https://" + long + ".evil.com/",
		"https://" + strings.Repeat("a.", 150) + "com/",
		"https://" + strings.Repeat("a", 70) + "." + strings.Repeat("b", 70) + ".com/",
		"https://shop.example.com/" + long + "/%2f",
		"https://shop.example.com/" + long + "/%252f",
		"/" + long + "%2f",
		"javascript:" + long,
		long,
		"https://shop.example.com:" + strings.Repeat("0", 200) + "443/",
		"https://[" + strings.Repeat("1:", 150) + "]/",
		strings.Repeat("/", 3000),
	} {
		got, err := ValidateRedirect(p, in, base)
		if err == nil {
			t.Errorf("ValidateRedirect(%.40q...) = %q; want it refused", in, got)
			continue
		}
		checkEcho(t, in, err)
	}
}
