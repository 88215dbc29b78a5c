package login

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/authgate/authgate/internal/policy"
)

// MaxRedirectLen is the longest "rd" ValidateRedirect accepts, before and after re-encoding. Real
// return URLs are far shorter; a longer one is either an attack or would overflow the Location
// header limits of some proxies.
const MaxRedirectLen = 2048

// maxEcho bounds how much of a client-controlled value an error message repeats: errors end up in
// logs and maybe on the page, and echoing kilobytes of attacker input per request floods both.
const maxEcho = 100

// maxHostLen is the DNS limit; checked here, before policy.NormalizeHost, so that its error (which
// quotes the host) stays short.
const maxHostLen = 253

// maxIPv6Literal is the longest textual IPv6 address ("ffff:...:255.255.255.255" is 45 bytes).
const maxIPv6Literal = 45

func quoteInput(s string) string {
	if len(s) > maxEcho {
		return strconv.Quote(s[:maxEcho]) + "..."
	}
	return strconv.Quote(s)
}

// refusal is a refused redirect: its message quotes (at most 100 bytes of) the input, which may
// hold a query or user information; logs take its reason only (redirectRefusal).
type refusal struct{ input, reason string }

func (e *refusal) Error() string { return "redirect " + quoteInput(e.input) + ": " + e.reason }

func refuse(rd, reason string) error { return &refusal{input: rd, reason: reason} }

// redirectRefusal describes a ValidateRedirect error for the log without the input it refused.
// Errors of internal/policy quote a host or a path, never a query: they stay as they are.
func redirectRefusal(err error) string {
	var r *refusal
	if errors.As(err, &r) {
		return "redirect refused: " + r.reason
	}
	return err.Error()
}

// refuseWith wraps an error of internal/policy, which already quotes (at most 100 bytes of) the part
// it refused; rd is not quoted again so that no error repeats more than 100 bytes of the input.
func refuseWith(err error) error {
	return fmt.Errorf("redirect refused: %w", err)
}

// ValidateRedirect checks a user-supplied "rd" for policy p and returns the URL to send the browser to.
// Accepted: an absolute http or https URL whose host (normalized with policy.NormalizeHost) passes
// p.Login().RedirectHostAllowed, or a relative path that starts with a single "/" (resolved against
// base, the absolute URL of the page being protected or the login host; the result must still be on
// an allowed host). Everything else is refused with an error that says why (never echoing more than
// 100 bytes of the input).
//
// The URL returned is re-serialized from what was checked, never the raw input: the scheme and host
// in lower case, the host without its trailing dot and the port in decimal, dot-segments resolved,
// and bytes the query may not hold raw percent-encoded. Validating it again returns it unchanged.
//
// Beyond the host allow-list the rules are strict on purpose, because every leniency here is a
// parser differential between this function and some browser (WHATWG URL parsing differs from
// RFC 3986 and from net/url in the details that open redirects are made of):
//   - control characters, spaces and backslashes are refused anywhere, raw, and control characters
//     also percent-encoded: browsers silently drop tabs and newlines and read '\' as '/', so
//     "/\t/evil.com" and "/\evil.com" are "//evil.com" to them;
//   - an absolute URL must be "http://" or "https://" followed by a host: "https:evil.com",
//     "https:/evil.com" and "https:///evil.com" all go to evil.com in a browser;
//   - user information ("user@host") is refused whatever it holds: it exists mostly to make
//     "https://shop.example.com@evil.com" look like it goes to shop.example.com;
//   - the host may hold only ASCII letters, digits, '-', '.', '_' (and for bracketed IPv6 literals,
//     hex digits, ':' and '.'): no percent-escapes and no non-ASCII, so no IDN look-alikes;
//   - the path must pass policy.NormalizePath, the check authgate applies to every request: a target
//     the check would refuse (encoded slashes, double encoding, ...) is refused here too. Dot-segments
//     are resolved, and encoded ones ("%2e%2e", which browsers resolve and net/url does not) refused.
//
// IP literals get no special treatment: they pass only if RedirectHostAllowed accepts them, which
// means an IPv4 address listed in allowedRedirectDomains (IPv6 cannot be listed). Other spellings of
// an address ("2130706433", "0x7f.0.0.1") are names that match no entry.
func ValidateRedirect(p *policy.Policy, rd string, base *url.URL) (string, error) {
	if p == nil || p.Login() == nil {
		return "", errors.New("redirect refused: the policy has no login settings, so it allows no redirect")
	}
	if rd == "" {
		return "", errors.New("redirect is empty")
	}
	if len(rd) > MaxRedirectLen {
		return "", refuse(rd, fmt.Sprintf("is longer than %d bytes", MaxRedirectLen))
	}
	if reason := scanRaw(rd); reason != "" {
		return "", refuse(rd, reason)
	}
	if rd[0] != '/' {
		return validateAbsolute(p.Login(), rd, rd, false)
	}

	// A path relative to base.
	if len(rd) > 1 && rd[1] == '/' {
		return "", refuse(rd, "starts with \"//\", which browsers read as the start of another host")
	}
	if l := strings.ToLower(rd); strings.HasPrefix(l, "/%2f") || strings.HasPrefix(l, "/%5c") {
		return "", refuse(rd, "starts with an encoded slash or backslash, which some servers decode into \"//\"")
	}
	ref, err := url.Parse(rd)
	if err != nil {
		return "", refuse(rd, "is not a valid URL path")
	}
	if ref.Scheme != "" || ref.Host != "" || ref.User != nil || ref.Opaque != "" {
		// Cannot happen for input starting with a single '/'; refuse rather than trust it.
		return "", refuse(rd, "does not parse as a path")
	}
	if base == nil || base.Scheme == "" || base.Host == "" || base.Opaque != "" {
		return "", refuse(rd, "is relative, but there is no absolute URL to resolve it against")
	}
	resolved := base.ResolveReference(ref).String()
	if len(resolved) > MaxRedirectLen {
		return "", refuse(rd, fmt.Sprintf("is longer than %d bytes once resolved", MaxRedirectLen))
	}
	return validateAbsolute(p.Login(), resolved, rd, true)
}

// scanRaw refuses bytes that browsers drop or reinterpret before parsing (so that what they parse
// would differ from what is checked here), raw or percent-encoded.
func scanRaw(s string) string {
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b < 0x20 || b == 0x7f:
			return fmt.Sprintf("contains control character 0x%02X (browsers drop tabs and newlines, which changes the URL after it was checked)", b)
		case b == ' ':
			return "contains a space (browsers strip leading and trailing spaces; a URL sends it as %20)"
		case b == '\\':
			return "contains a backslash, which browsers read as '/'"
		case b == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			if d := unhex(s[i+1])<<4 | unhex(s[i+2]); d < 0x20 || d == 0x7f {
				return fmt.Sprintf("contains an encoded control character (%%%02X)", d)
			}
		}
	}
	return ""
}

// validateAbsolute checks s, an absolute URL, and returns it re-serialized. rd is the caller's input,
// for error messages; relative says that s was resolved from a relative rd.
func validateAbsolute(l *policy.LoginSettings, s, rd string, relative bool) (string, error) {
	colon := strings.IndexByte(s, ':')
	if colon <= 0 || !isScheme(s[:colon]) {
		return "", refuse(rd, "must be an absolute http:// or https:// URL, or a path starting with a single '/'")
	}
	scheme := strings.ToLower(s[:colon])
	if scheme != "http" && scheme != "https" {
		return "", refuse(rd, "scheme is not http or https")
	}
	rest, ok := strings.CutPrefix(s[colon+1:], "//")
	if !ok {
		return "", refuse(rd, "must have \"//\" after the scheme (browsers read \"https:evil.com\" and \"https:/evil.com\" as a host)")
	}
	authority := rest
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		authority = rest[:end]
	}
	if authority == "" {
		// "https:///evil.com" goes to evil.com in a browser, which skips any number of slashes.
		return "", refuse(rd, "has an empty host")
	}
	if strings.IndexByte(authority, '@') >= 0 {
		return "", refuse(rd, "contains user information (\"user@host\"), which is never allowed: it makes URLs that look like they go to another host")
	}
	host, port, hasPort, reason := splitAuthority(authority)
	if reason != "" {
		return "", refuse(rd, reason)
	}
	norm, err := policy.NormalizeHost(host)
	if err != nil {
		return "", refuseWith(err)
	}
	if !l.RedirectHostAllowed(norm) {
		if relative {
			return "", refuse(rd, "the page it is relative to is not on a host this policy may redirect to")
		}
		return "", refuse(rd, "host is not one this policy may redirect to")
	}

	// Parse with net/url only now, and check that it read the URL the same way.
	u, err := url.Parse(s)
	if err != nil {
		return "", refuse(rd, "is not a valid URL")
	}
	if u.Scheme != scheme || u.Opaque != "" || u.User != nil || u.Host != authority {
		return "", refuse(rd, "parses ambiguously")
	}
	// Resolve dot-segments as a browser would, so that the path returned is the one it will request.
	u = new(url.URL).ResolveReference(u)
	path := u.EscapedPath()
	if strings.HasPrefix(path, "//") {
		return "", refuse(rd, "path starts with \"//\", which is another host when read as a relative URL")
	}
	if hasEncodedDotSegment(path) {
		// Browsers resolve "%2e%2e" as "..", net/url does not: the path they request would not be
		// the one returned, and "/%2e%2e//evil.com" would become "//evil.com".
		return "", refuse(rd, "path has an encoded dot-segment (%2e)")
	}
	if path != "" {
		if _, err := policy.NormalizePath(path); err != nil {
			return "", refuseWith(err)
		}
	}

	if strings.IndexByte(norm, ':') >= 0 {
		norm = "[" + norm + "]"
	}
	if hasPort {
		norm += ":" + port
	}
	out := url.URL{
		Scheme:      scheme,
		Host:        norm,
		Path:        u.Path,
		RawPath:     u.RawPath,
		RawQuery:    encodeQuery(u.RawQuery),
		Fragment:    u.Fragment,
		RawFragment: u.RawFragment,
	}
	res := out.String()
	if len(res) > MaxRedirectLen {
		return "", refuse(rd, fmt.Sprintf("is longer than %d bytes once encoded", MaxRedirectLen))
	}
	for i := 0; i < len(res); i++ {
		if b := res[i]; b <= ' ' || b >= 0x7f || b == '\\' {
			// net/url escapes all of these in paths and fragments and encodeQuery in queries;
			// refuse rather than hand out something unchecked should that ever change.
			return "", refuse(rd, "cannot be re-encoded safely")
		}
	}
	return res, nil
}

// hasEncodedDotSegment reports whether an escaped path has a segment that is "." or ".." once
// "%2e" is read as '.', but was not written so.
func hasEncodedDotSegment(path string) bool {
	for seg := range strings.SplitSeq(path, "/") {
		if len(seg) < 3 || len(seg) > 6 {
			continue
		}
		if d := strings.ReplaceAll(strings.ToLower(seg), "%2e", "."); d == "." || d == ".." {
			return true
		}
	}
	return false
}

// splitAuthority splits an authority without user information into host and port, allowing only
// the characters a DNS name, an IPv4 address or a bracketed IPv6 address are made of. The port, when
// present, is returned in canonical decimal form (without leading zeros); an empty port ("host:")
// counts as none.
func splitAuthority(a string) (host, port string, hasPort bool, reason string) {
	for i := 0; i < len(a); i++ {
		switch b := a[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9',
			b == '-', b == '.', b == '_', b == ':', b == '[', b == ']':
		case b >= 0x80:
			return "", "", false, "host contains non-ASCII characters (look-alike international host names are refused)"
		case b == '%':
			return "", "", false, "host contains a percent-escape"
		default:
			return "", "", false, fmt.Sprintf("host contains the character %q", rune(b))
		}
	}
	var rawPort string
	if a[0] == '[' {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return "", "", false, "host has '[' without ']'"
		}
		host = a[:end+1]
		switch after := a[end+1:]; {
		case after == "":
		case after[0] == ':':
			hasPort, rawPort = true, after[1:]
		default:
			return "", "", false, "host has characters after ']' other than a port"
		}
		if inner := host[1 : len(host)-1]; inner == "" || len(inner) > maxIPv6Literal || strings.ContainsAny(inner, "[]") {
			return "", "", false, "host is not a valid IPv6 literal"
		}
	} else {
		if strings.ContainsAny(a, "[]") {
			return "", "", false, "host has '[' or ']' outside an IPv6 literal"
		}
		switch strings.Count(a, ":") {
		case 0:
			host = a
		case 1:
			host, rawPort, _ = strings.Cut(a, ":")
			hasPort = true
		default:
			return "", "", false, "host has more than one ':' (IPv6 addresses must be in brackets)"
		}
		if len(host) > maxHostLen+1 { // one trailing dot is allowed
			return "", "", false, fmt.Sprintf("host is longer than %d characters", maxHostLen)
		}
	}
	if hasPort {
		if rawPort == "" {
			return host, "", false, ""
		}
		n, err := strconv.ParseUint(rawPort, 10, 16)
		if err != nil || len(rawPort) > 5 || strings.Trim(rawPort, "0123456789") != "" {
			return "", "", false, "port is not a number between 0 and 65535"
		}
		port = strconv.FormatUint(n, 10)
	}
	return host, port, hasPort, ""
}

// isScheme reports whether s is an RFC 3986 scheme: a letter, then letters, digits, '+', '-', '.'.
func isScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z':
		case '0' <= b && b <= '9', b == '+', b == '-', b == '.':
			if i == 0 {
				return false
			}
		default:
			return false
		}
	}
	return s != ""
}

// encodeQuery percent-encodes every byte of a raw query that is not a query character of
// RFC 3986 (keeping complete "%XX" escapes), so that the query handed to the browser is exactly the
// one it will send: net/url keeps RawQuery as it was given, spaces, quotes and non-ASCII included.
// A '%' that does not start an escape becomes "%25". The apostrophe is encoded too, as browsers do
// in the query of http(s) URLs.
func encodeQuery(q string) string {
	ok := true
	for i := 0; i < len(q) && ok; i++ {
		ok = queryByteOK(q, i)
	}
	if ok {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	for i := 0; i < len(q); i++ {
		if queryByteOK(q, i) {
			b.WriteByte(q[i])
			continue
		}
		const hexDigits = "0123456789ABCDEF"
		b.WriteByte('%')
		b.WriteByte(hexDigits[q[i]>>4])
		b.WriteByte(hexDigits[q[i]&0xf])
	}
	return b.String()
}

func queryByteOK(q string, i int) bool {
	switch b := q[i]; {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	case b == '%':
		return i+2 < len(q) && isHex(q[i+1]) && isHex(q[i+2])
	default:
		return strings.IndexByte("-._~!$&()*+,;=:@/?", b) >= 0
	}
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

func unhex(b byte) byte {
	switch {
	case '0' <= b && b <= '9':
		return b - '0'
	case 'a' <= b && b <= 'f':
		return b - 'a' + 10
	default:
		return b - 'A' + 10
	}
}
