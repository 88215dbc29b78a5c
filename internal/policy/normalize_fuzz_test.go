package policy

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// FuzzNormalizePath checks the invariants the matchers rely on. A canonical
// path that could still contain "//", a dot-segment or an upper-case letter
// would let a prefix rule be sidestepped, and a non-idempotent normalization
// would mean two components of authgate could disagree on the same request.
func FuzzNormalizePath(f *testing.F) {
	for _, tc := range normPathCases {
		f.Add(tc.in)
	}
	for _, s := range []string{
		"/%", "/%%", "/%%%", "/%2", "/%25", "/%2525", "/%252", "/%%2541",
		"/.", "/..", "/...", "/.;", "/..;", "/;", "/;/", "/a;/..", "/a/.;/..;/b",
		"/%2e", "/%2e%2e", "/%2e.", "/.%2E", "/%2e%2e%2e",
		"/a%20", "/%20a", "/a%20%20b", "/a%20.", "/.%20", "/%20.%20",
		"/a%3b%2e%2e", "/..%3b/x", "/x/..%3B/..%3B/y",
		"/A/B/../C/./D//E/", "/%C3%A9%C3%89", "/\xc3\x89", "/\x80\xff",
		"/" + strings.Repeat("a/", 300), "/" + strings.Repeat("../", 100) + "x",
		"/%u002e", "/%25u0041", "/%u00 e", "/%c0%ae", "/\xe0\x80\xae", "/\xe0.;/\x80", "/\xf0\x8f",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		n, err := NormalizePath(raw)
		if err != nil {
			if n != "" {
				t.Fatalf("NormalizePath(%q) = %q with error %v", raw, n, err)
			}
			if len(err.Error()) > 4*normMaxQuoted+200 {
				t.Fatalf("NormalizePath(%q) error is %d bytes long", raw, len(err.Error()))
			}
			return
		}
		if n == "" || n[0] != '/' {
			t.Fatalf("NormalizePath(%q) = %q: does not start with '/'", raw, n)
		}
		if strings.Contains(n, "//") {
			t.Fatalf("NormalizePath(%q) = %q: contains \"//\"", raw, n)
		}
		for _, seg := range strings.Split(n[1:], "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("NormalizePath(%q) = %q: contains a dot-segment", raw, n)
			}
			if strings.HasSuffix(seg, ".") || strings.HasSuffix(seg, "%20") {
				t.Fatalf("NormalizePath(%q) = %q: segment %q has a trailing dot or space", raw, n, seg)
			}
		}
		for i := 0; i < len(n); i++ {
			b := n[i]
			switch {
			case normIsCTL(b):
				t.Fatalf("NormalizePath(%q) = %q: contains control character 0x%02X", raw, n, b)
			case 'A' <= b && b <= 'Z':
				t.Fatalf("NormalizePath(%q) = %q: contains upper-case ASCII", raw, n)
			case b == ' ', b == ';', b == '?', b == '#', b == '\\':
				t.Fatalf("NormalizePath(%q) = %q: contains %q", raw, n, b)
			case b == '%' && i+2 < len(n) && normIsHex(n[i+1]) && normIsHex(n[i+2]) && n[i+1:i+3] != "20":
				t.Fatalf("NormalizePath(%q) = %q: contains a percent-escape other than %%20", raw, n)
			case b == '%' && i+1 < len(n) && n[i+1] == 'u' && i+5 < len(n) && normIsHex(n[i+2]) && normIsHex(n[i+3]) && normIsHex(n[i+4]) && normIsHex(n[i+5]):
				t.Fatalf("NormalizePath(%q) = %q: contains a %%u escape", raw, n)
			case b == 0xC0 || b == 0xC1:
				t.Fatalf("NormalizePath(%q) = %q: contains an overlong UTF-8 lead byte", raw, n)
			}
		}
		again, err := NormalizePath(n)
		if err != nil || again != n {
			t.Fatalf("not idempotent: NormalizePath(%q) = %q, but NormalizePath(%q) = %q, %v", raw, n, n, again, err)
		}
		if raw != "" && normIsCanonicalPath(raw) {
			if slow, err := normPathSlow(raw); err != nil || slow != raw {
				t.Fatalf("fast path accepts %q but full algorithm gives %q, %v", raw, slow, err)
			}
		}
		// Every normalized path is under the root prefix.
		root, _ := PathPrefix("/")
		if !root.Matches(n) {
			t.Fatalf("PathPrefix(\"/\") does not match %q", n)
		}
	})
}

// FuzzPolicyPathAgreesWithNormalizePath checks that a rule matches the
// request for the very path it names, whichever way the client encodes it.
// A rule that silently never matches its own path is a security bug when the
// rule is a deny.
func FuzzPolicyPathAgreesWithNormalizePath(f *testing.F) {
	for _, s := range []string{"/login", "/Login", "/my docs/", "/a.", "//a//b", "/caf\xc3\xa9", "/a b.", "/x/y z/", "/%", "/a..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		exact, err := ExactPath(p)
		if err != nil {
			if _, perr := PathPrefix(p); perr == nil {
				t.Fatalf("ExactPath(%q) fails (%v) but PathPrefix accepts it", p, err)
			}
			return
		}
		prefix, err := PathPrefix(p)
		if err != nil {
			t.Fatalf("PathPrefix(%q) fails (%v) but ExactPath accepts it", p, err)
		}
		for _, req := range []string{normPercentEncodeAll(p), normPercentEncodeSpaces(p)} {
			n, err := NormalizePath(req)
			if err != nil {
				t.Fatalf("ExactPath(%q) accepted, but NormalizePath(%q) fails: %v", p, req, err)
			}
			if !exact.Matches(n) {
				t.Fatalf("ExactPath(%q) does not match NormalizePath(%q) = %q", p, req, n)
			}
			if !prefix.Matches(n) {
				t.Fatalf("PathPrefix(%q) does not match NormalizePath(%q) = %q", p, req, n)
			}
		}
	})
}

// normPercentEncodeAll encodes every byte except '/', the most a client can
// encode without changing the path's structure.
func normPercentEncodeAll(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			b.WriteByte('/')
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[s[i]>>4])
		b.WriteByte(hex[s[i]&0xf])
	}
	return b.String()
}

// normPercentEncodeSpaces encodes only what a client must encode.
func normPercentEncodeSpaces(s string) string {
	return strings.ReplaceAll(s, " ", "%20")
}

// FuzzNormalizeHost checks that host normalization never panics, is
// idempotent, and produces only what host patterns are written in.
func FuzzNormalizeHost(f *testing.F) {
	for _, tc := range normHostCases {
		f.Add(tc.in)
	}
	for _, s := range []string{"[::]", "::", "[::ffff:127.0.0.1]:80", "a.b.", "A_B-C", "[", "]", "[]:", ":", "::1]", "[::1]]", "1:2", "a:1:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		h, err := NormalizeHost(raw)
		if err != nil {
			if h != "" {
				t.Fatalf("NormalizeHost(%q) = %q with error %v", raw, h, err)
			}
			return
		}
		if h == "" || strings.HasSuffix(h, ".") || strings.ContainsAny(h, "[]/ @*") {
			t.Fatalf("NormalizeHost(%q) = %q: not a clean host", raw, h)
		}
		if h != strings.ToLower(h) {
			t.Fatalf("NormalizeHost(%q) = %q: not lower case", raw, h)
		}
		again, err := NormalizeHost(h)
		if err != nil || again != h {
			t.Fatalf("not idempotent: NormalizeHost(%q) = %q, but NormalizeHost(%q) = %q, %v", raw, h, h, again, err)
		}
		// The normalized host, used as an exact pattern, matches itself,
		// and "*." + host matches a single extra label only.
		p, err := ParseHostPattern(h)
		if err != nil {
			t.Fatalf("ParseHostPattern(%q) of a normalized host: %v", h, err)
		}
		if !p.Matches(h) {
			t.Fatalf("pattern %q does not match itself", h)
		}
		if !strings.Contains(h, ":") {
			w, err := ParseHostPattern("*." + h)
			if err == nil {
				if w.Matches(h) || !w.Matches("x."+h) || w.Matches("x.y."+h) {
					t.Fatalf("wildcard %q matches wrongly around %q", w, h)
				}
			}
		}
	})
}

// FuzzParseRef: the fast check of ParseRef accepts exactly what the validation package accepts.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"default/shop", "a/b.c", "a/-b", "a-/b", "a/b..c", "a.b/c", "a/B", "a/b.", "/b", "a/", strings.Repeat("a", 64) + "/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, err := ParseRef(s)
		ns, name, ok := strings.Cut(s, "/")
		want := ok && len(validation.IsDNS1123Label(ns)) == 0 && len(validation.IsDNS1123Subdomain(name)) == 0
		if (err == nil) != want {
			t.Fatalf("ParseRef(%q) error %v, validation package says valid=%v", s, err, want)
		}
	})
}
