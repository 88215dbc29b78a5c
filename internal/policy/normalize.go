package policy

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// This file holds the request-path and host canonicalization that every policy
// decision starts from, and the low-level matchers that compare a canonical
// request against a rule.
//
// The threat it defends against is a parser differential: authgate decides on
// one reading of the URL while the upstream application serves another. If a
// client can make authgate see "/public/x" while the application serves
// "/admin", every rule on "/admin" is bypassed. So the canonical form folds
// together everything that some common server treats as the same resource
// (case, dot-segments, duplicate slashes, ";params", trailing dots), and the
// input is rejected outright where servers disagree and no single reading is
// safe (encoded slashes, double encoding, control characters).

// normMaxQuoted bounds how much of a client-controlled value is echoed into an
// error message. Errors end up in logs and responses; echoing a few kilobytes
// of attacker input per request would make both easy to flood.
const normMaxQuoted = 100

// normQuote quotes s for an error message, truncated to normMaxQuoted bytes.
func normQuote(s string) string {
	if len(s) > normMaxQuoted {
		return strconv.Quote(s[:normMaxQuoted]) + "..."
	}
	return strconv.Quote(s)
}

// normQuoteTarget quotes a request-target for an error message without its query and fragment:
// they may carry credentials (a token in a query parameter), and errors end up in logs.
func normQuoteTarget(uri string) string {
	if i := strings.IndexAny(uri, "?#"); i >= 0 {
		return normQuote(uri[:i]) + " (query and fragment left out)"
	}
	return normQuote(uri)
}

func normPathError(raw, problem string) error {
	return errors.New("path " + normQuote(raw) + ": " + problem)
}

func normIsCTL(b byte) bool { return b < 0x20 || b == 0x7f }

func normIsHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

func normUnhex(b byte) byte {
	switch {
	case '0' <= b && b <= '9':
		return b - '0'
	case 'a' <= b && b <= 'f':
		return b - 'a' + 10
	default:
		return b - 'A' + 10
	}
}

// normLower folds only ASCII letters. strings.ToLower would also fold
// non-ASCII runes (and rewrite invalid UTF-8 to U+FFFD), which no web server
// does when it looks up a path; folding them would merge resources the
// upstream keeps apart.
func normLower(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + ('a' - 'A')
	}
	return b
}

// NormalizePath turns a raw request path (percent-encoded, as the proxy sent
// it, WITHOUT the query string) into the canonical form that policy rules are
// matched against. It is the one normalization every caller uses.
//
// The canonical form is the percent-decoded path with ASCII letters folded to
// lower case, ";parameters" and trailing dots and spaces removed from every
// segment, empty and "." segments dropped and ".." resolved. It keeps a
// trailing slash. A space inside a segment is the only byte written
// percent-encoded ("%20"), because a raw space is rejected on input and the
// canonical form must itself normalize to itself. Non-ASCII bytes are kept as
// they are, whether or not they are valid UTF-8 (except overlong forms, below).
//
// Folding is deliberately aggressive: it maps a request onto the most
// protected resource some server could take it for. A rule on "/admin" then
// also covers "/ADMIN" (case-insensitive file systems), "/admin." and
// "/admin%20" (Windows drops trailing dots and spaces) and "/admin;x" (Java
// servlet containers drop path parameters). Where servers disagree about the
// structure of the path itself, the request is rejected instead; see the
// error cases below.
//
// NormalizePath returns an error, whose message names the problem, when raw
//   - does not start with '/' (asterisk-form "*" and absolute-form URLs are
//     not paths; the empty string is read as "/");
//   - contains a raw control character, space, '#', '?' or backslash;
//   - contains an encoded slash or backslash (%2F, %5C), control character
//     (%00-%1F, %7F), '?' (%3F) or '#' (%23);
//   - decodes to something that still contains a percent-escape, i.e. it was
//     encoded twice ("%2561"), or an IIS-style "%uXXXX" escape;
//   - contains overlong UTF-8 ("%C0%AE"), which lenient decoders read as an
//     ASCII character (other invalid UTF-8 is kept as it is);
//   - has a segment made only of dots and spaces other than ".", ".." and a
//     run of three or more dots (e.g. ". ." or "%20").
//
// A '%' that is not followed by two hex digits is kept as a literal '%', as
// browsers do, rather than being an error.
//
// NormalizePath is idempotent: a path it returns normalizes to itself.
func NormalizePath(raw string) (string, error) {
	if raw == "" {
		// An empty path in an origin-form request means the root.
		return "/", nil
	}
	if raw[0] != '/' {
		switch {
		case raw == "*":
			return "", normPathError(raw, "asterisk-form (OPTIONS *) is not a path")
		case strings.Contains(raw, "://"):
			return "", normPathError(raw, "must start with '/'; absolute URLs must be parsed by the caller")
		default:
			return "", normPathError(raw, "must start with '/'")
		}
	}
	if normIsCanonicalPath(raw) {
		// Most real requests are already canonical; returning raw avoids
		// any allocation on the hot path.
		return raw, nil
	}
	return normPathSlow(raw)
}

// normIsCanonicalPath reports whether p, which starts with '/', is already in
// canonical form, so NormalizePath may return it unchanged. It is
// conservative: any byte that could need decoding, folding, stripping or
// rejecting sends the path to the full algorithm, and the fuzz test checks
// that the full algorithm agrees whenever this returns true.
func normIsCanonicalPath(p string) bool {
	segStart := 1
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			seg := p[segStart:i]
			if len(seg) == 0 {
				if i != len(p) {
					return false // "//": an empty segment
				}
			} else if seg[len(seg)-1] == '.' {
				return false // ".", ".." or a trailing dot
			}
			segStart = i + 1
			continue
		}
		switch b := p[i]; {
		case normIsCTL(b), b == ' ', b == '#', b == '?', b == '\\', b == '%', b == ';', 'A' <= b && b <= 'Z', b >= 0x80:
			// b >= 0x80: non-ASCII paths are rare enough that the
			// overlong UTF-8 check is left to the full algorithm.
			return false
		}
	}
	return true
}

// normPathSlow is the full NormalizePath algorithm for a raw path that starts
// with '/'.
func normPathSlow(raw string) (string, error) {
	// Raw bytes that have no business in a request path. A proxy never sends
	// them; their presence means something upstream of us already decoded the
	// path, or the client is probing for a lenient parser.
	for i := 0; i < len(raw); i++ {
		switch b := raw[i]; {
		case normIsCTL(b):
			return "", normPathError(raw, fmt.Sprintf("control character 0x%02X is not allowed", b))
		case b == ' ':
			return "", normPathError(raw, "raw space is not allowed (it must be sent as %20)")
		case b == '#':
			return "", normPathError(raw, "'#' is not allowed: a fragment is never part of a request path")
		case b == '?':
			return "", normPathError(raw, "'?' is not allowed: pass the path without its query (see SplitRequestURI)")
		case b == '\\':
			return "", normPathError(raw, "backslash is not allowed: servers disagree on whether it separates segments")
		}
	}

	// Decode exactly once. Paths up to the size of this buffer are decoded
	// without touching the heap.
	var decBuf [256]byte
	dec := decBuf[:0]
	for i := 0; i < len(raw); i++ {
		b := raw[i]
		if b != '%' || i+2 >= len(raw) || !normIsHex(raw[i+1]) || !normIsHex(raw[i+2]) {
			// Not a complete escape: a literal '%', the way browsers
			// treat it. Rejecting it would break real links for no
			// gain, since no server decodes it either.
			dec = append(dec, b)
			continue
		}
		d := normUnhex(raw[i+1])<<4 | normUnhex(raw[i+2])
		switch {
		case d == '/':
			// Some servers split segments on %2F after decoding, others
			// treat it as part of a name: "/public%2F..%2Fadmin" is one
			// segment to one and "/admin" to the other.
			return "", normPathError(raw, "encoded slash (%2F) is not allowed: servers disagree on whether it separates segments")
		case d == '\\':
			// Windows servers and some frameworks treat '\' as a
			// separator after decoding.
			return "", normPathError(raw, "encoded backslash (%5C) is not allowed: servers disagree on whether it separates segments")
		case normIsCTL(d):
			// NUL truncates paths in C-based servers, CR/LF split
			// headers and log lines.
			return "", normPathError(raw, fmt.Sprintf("encoded control character (%%%02X) is not allowed", d))
		case d == '?':
			// Rewrite engines that decode before substituting (Apache
			// mod_rewrite, some routers) read a decoded '?' as the start
			// of the query and serve the path before it.
			return "", normPathError(raw, "encoded '?' (%3F) is not allowed: some servers treat it as the start of the query")
		case d == '#':
			return "", normPathError(raw, "encoded '#' (%23) is not allowed: some servers treat it as the start of a fragment")
		}
		dec = append(dec, d)
		i += 2
	}

	// Byte sequences that some server decodes into something structural.
	// They are checked after decoding so that the raw and the encoded
	// spelling are both caught, and so that the canonical form never
	// contains them (which keeps NormalizePath idempotent).
	for i := 0; i < len(dec); i++ {
		switch b := dec[i]; {
		case b == '%' && i+2 < len(dec) && normIsHex(dec[i+1]) && normIsHex(dec[i+2]):
			// A percent-escape that survives one decoding means the
			// client encoded twice ("%2561" -> "%61"). A server or
			// framework that decodes again would see "a" where we see
			// "%61"; no reading is safe.
			return "", normPathError(raw, "double-encoded percent sign (%25 followed by two hex digits) is not allowed")
		case b == '%' && i+5 < len(dec) && (dec[i+1] == 'u' || dec[i+1] == 'U') &&
			normIsHex(dec[i+2]) && normIsHex(dec[i+3]) && normIsHex(dec[i+4]) && normIsHex(dec[i+5]):
			// IIS decodes the non-standard "%u002e" as '.', so
			// "/public/%u002e%u002e/admin" is "/admin" to it while it
			// is a literal name to everyone else.
			return "", normPathError(raw, "%u escape is not allowed: IIS decodes %uXXXX as a character")
		case normIsOverlongAt(dec, i):
			return "", normPathError(raw, normOverlongProblem)
		}
	}

	var outBuf [256]byte
	out, problem := normCanonicalSegments(outBuf[:0], dec, false)
	if problem != "" {
		return "", normPathError(raw, problem)
	}
	return string(out), nil
}

const normOverlongProblem = "overlong UTF-8 encoding is not allowed: lenient decoders read it as an ASCII character"

// normIsOverlongAt reports whether an overlong UTF-8 sequence starts at s[i].
// Overlong UTF-8 ("%C0%AE" for '.', "%C0%AF" for '/') is invalid, and exists
// only because lenient decoders (old IIS, Tomcat, some JVMs) read it as the
// ASCII byte it spells, turning "/public/%C0%AE%C0%AE/admin" into "/admin".
// Other invalid UTF-8 is harmless and kept as it is.
func normIsOverlongAt[T string | []byte](s T, i int) bool {
	switch s[i] {
	case 0xC0, 0xC1:
		return true
	case 0xE0:
		return i+1 < len(s) && 0x80 <= s[i+1] && s[i+1] < 0xA0
	case 0xF0:
		return i+1 < len(s) && 0x80 <= s[i+1] && s[i+1] < 0x90
	}
	return false
}

// normCanonicalSegments writes the canonical form of the decoded path p, which
// starts with '/', to dst[:0] and returns it, or a description of why p
// cannot be canonicalized. With policy set, p is a path written in a policy
// rather than one sent by a client, and dot-segments are an error instead of
// being resolved: a rule author who writes "/a/../b" almost certainly made a
// mistake, and silently resolving it would hide it.
func normCanonicalSegments(dst, p []byte, policy bool) ([]byte, string) {
	dst = dst[:0]
	// trailing records whether the last segment seen was empty or a
	// dot-segment, which RFC 3986 remove_dot_segments turns into a trailing
	// slash ("/a/b/.." -> "/a/"). Servers treat "/dir" and "/dir/"
	// differently, so the slash is kept rather than folded away.
	trailing := false
	for len(p) > 0 {
		p = p[1:] // the '/' that starts this segment
		seg := p
		if end := bytes.IndexByte(p, '/'); end >= 0 {
			seg, p = p[:end], p[end:]
		} else {
			p = nil
		}

		// Java servlet containers strip ";params" from every segment
		// before routing, so "/admin;jsessionid=1" is "/admin" and
		// "/public/..;/admin" is "/public/../admin" to them, while
		// proxies such as nginx see a segment named "..;". Dropping the
		// parameters here makes us agree with the servlet container,
		// which is the reading that reaches more resources.
		if i := bytes.IndexByte(seg, ';'); i >= 0 {
			seg = seg[:i]
		}

		switch string(seg) {
		case "":
			// Duplicate slashes: every common server collapses them.
			trailing = true
			continue
		case ".":
			if policy {
				return nil, `contains a "." segment: write the path without dot-segments`
			}
			trailing = true
			continue
		case "..":
			if policy {
				return nil, `contains a ".." segment: write the path without dot-segments`
			}
			// Pop the previous segment; at the root there is nothing
			// to pop, as in RFC 3986 (never above the root).
			if i := bytes.LastIndexByte(dst, '/'); i >= 0 {
				dst = dst[:i]
			}
			trailing = true
			continue
		}

		// Windows (and so IIS and anything serving from NTFS) ignores
		// trailing dots and spaces in a file name: "/admin." and
		// "/admin%20" open "/admin".
		trimmed := seg
		for len(trimmed) > 0 && (trimmed[len(trimmed)-1] == '.' || trimmed[len(trimmed)-1] == ' ') {
			trimmed = trimmed[:len(trimmed)-1]
		}
		if len(trimmed) == 0 {
			// The segment was made only of dots and spaces and is not
			// "." or "..".
			if policy {
				return nil, fmt.Sprintf("segment %s is made only of dots and spaces", normQuote(string(seg)))
			}
			if bytes.IndexByte(seg, ' ') >= 0 {
				// ". ." or ".. " might be read as "." or ".." by a
				// server that trims spaces first, or as a name by
				// one that does not; refuse to guess.
				return nil, "segment made only of dots and spaces is ambiguous"
			}
			// "..." and longer: Windows trims it to nothing, so it is
			// dropped like an empty segment. No server treats it as
			// a parent reference.
			trailing = true
			continue
		}

		dst = append(dst, '/')
		for _, b := range trimmed {
			if b == ' ' {
				dst = append(dst, "%20"...)
				continue
			}
			// Case-insensitive file systems (Windows, default macOS)
			// and many routers serve "/ADMIN" as "/admin".
			dst = append(dst, normLower(b))
		}
		trailing = false
	}
	if len(dst) == 0 {
		return append(dst, '/'), ""
	}
	if trailing {
		dst = append(dst, '/')
	}
	return dst, ""
}

// SplitRequestURI splits a raw request-target "path?query" into the raw path
// and the raw query (without '?'). An empty path becomes "/". A target
// containing '#' is an error. Absolute-form ("http://h/p") is NOT accepted here
// (adapters parse URLs).
//
// Only origin-form is accepted because it is what proxies put in
// X-Original-URI and :path; anything else reaching this point means the
// adapter picked the wrong field, and guessing where the path starts in an
// absolute URL is exactly the kind of parsing that must happen in one place.
// Neither part is decoded or validated further; NormalizePath does that for
// the path.
func SplitRequestURI(uri string) (path, query string, err error) {
	if strings.IndexByte(uri, '#') >= 0 {
		// Clients never send fragments; a '#' here is either a broken
		// client or an attempt to make two parsers disagree on where the
		// path or query ends.
		return "", "", fmt.Errorf("request-target %s: '#' is not allowed", normQuoteTarget(uri))
	}
	path, query, _ = strings.Cut(uri, "?")
	if path == "" {
		return "/", query, nil
	}
	if path[0] != '/' {
		return "", "", fmt.Errorf("request-target %s: must be origin-form (\"/path?query\"); absolute-form and asterisk-form are not accepted", normQuoteTarget(uri))
	}
	return path, query, nil
}

// normMaxHostLen and normMaxLabelLen are the DNS limits (RFC 1035). Enforcing
// them costs nothing and keeps absurd Host headers out of logs and matching.
const (
	normMaxHostLen  = 253
	normMaxLabelLen = 63
)

func normHostError(raw, problem string) error {
	return errors.New("host " + normQuote(raw) + ": " + problem)
}

// NormalizeHost lowercases a Host / :authority value, strips the port
// (including IPv6 "[::1]:8080" -> "::1"), strips one trailing dot, and
// validates it (letters, digits, '-', '.', and for IP literals what IPv6
// needs). Errors name what is wrong.
//
// Underscores are accepted too: they are not valid in host names, but they
// are common in real DNS names and Kubernetes-internal hosts, and rejecting
// them would only break traffic. IPv6 literals are returned without brackets
// in the canonical text form of RFC 5952 ("[0:0::1]" -> "::1"), so that a
// host pattern matches however the client spelled the address; a bare,
// unbracketed IPv6 address is accepted for the same reason (and because it is
// what NormalizeHost itself returns). IPv6 zones are rejected. The port, when
// present, must be a decimal number up to 65535 (or empty, which RFC 3986
// allows).
func NormalizeHost(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("host is empty")
	}
	host, port, hasPort, ipv6, problem := normSplitHostPort(raw)
	if problem != "" {
		return "", normHostError(raw, problem)
	}
	if hasPort {
		if problem := normCheckPort(port); problem != "" {
			return "", normHostError(raw, problem)
		}
	}
	if ipv6 {
		canon, problem := normIPv6(host)
		if problem != "" {
			return "", normHostError(raw, problem)
		}
		return canon, nil
	}
	canon, problem := normHostname(host)
	if problem != "" {
		return "", normHostError(raw, problem)
	}
	return canon, nil
}

// normSplitHostPort splits raw into host and port without validating either.
// ipv6 reports that the host is (or claims to be) an IPv6 literal, either
// because it was bracketed or because it has more than one colon.
func normSplitHostPort(raw string) (host, port string, hasPort, ipv6 bool, problem string) {
	if raw[0] == '[' {
		end := strings.IndexByte(raw, ']')
		if end < 0 {
			return "", "", false, false, "missing ']' after IPv6 address"
		}
		host, rest := raw[1:end], raw[end+1:]
		switch {
		case rest == "":
			return host, "", false, true, ""
		case rest[0] == ':':
			return host, rest[1:], true, true, ""
		default:
			return "", "", false, false, "unexpected characters after ']' (only \":port\" may follow)"
		}
	}
	switch strings.Count(raw, ":") {
	case 0:
		return raw, "", false, false, ""
	case 1:
		host, port, _ := strings.Cut(raw, ":")
		return host, port, true, false, ""
	default:
		return raw, "", false, true, ""
	}
}

func normCheckPort(port string) string {
	if port == "" {
		return ""
	}
	if len(port) > 5 {
		return "port " + normQuote(port) + " is not a number between 0 and 65535"
	}
	n := 0
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return "port " + normQuote(port) + " is not a number between 0 and 65535"
		}
		n = n*10 + int(port[i]-'0')
	}
	if n > 65535 {
		return "port " + normQuote(port) + " is not a number between 0 and 65535"
	}
	return ""
}

func normIPv6(s string) (string, string) {
	addr, err := netip.ParseAddr(s)
	if err != nil || !addr.Is6() {
		// The caller's error quotes the whole host already: the address is not echoed twice.
		return "", "invalid IPv6 address"
	}
	if addr.Zone() != "" {
		// A zone names an interface on the client's machine; it means
		// nothing to the server and no rule could match it.
		return "", "IPv6 zone is not allowed"
	}
	return addr.String(), ""
}

// normHostname strips one trailing dot from h, folds it to lower case and
// validates it as a DNS name. It returns h itself when nothing needs folding.
func normHostname(h string) (string, string) {
	// "example.com." is the fully-qualified spelling of "example.com" and
	// reaches the same virtual host; without this a rule on the one would
	// not cover the other.
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return "", "host name is empty"
	}
	if len(h) > normMaxHostLen {
		return "", fmt.Sprintf("host name is longer than %d characters", normMaxHostLen)
	}
	upper := false
	label := 0
	for i := 0; i < len(h); i++ {
		b := h[i]
		switch {
		case 'a' <= b && b <= 'z', '0' <= b && b <= '9', b == '-', b == '_':
			label++
		case 'A' <= b && b <= 'Z':
			upper = true
			label++
		case b == '.':
			if label == 0 {
				return "", "empty label (\"..\" or a leading '.')"
			}
			label = 0
		case b >= 0x80:
			return "", "non-ASCII character; use the punycode (\"xn--\") form of the name"
		default:
			return "", fmt.Sprintf("invalid character %q", rune(b))
		}
		if label > normMaxLabelLen {
			return "", fmt.Sprintf("label is longer than %d characters", normMaxLabelLen)
		}
	}
	if label == 0 {
		return "", "empty label (more than one trailing '.')"
	}
	if !upper {
		return h, ""
	}
	b := []byte(h)
	for i, c := range b {
		b[i] = normLower(c)
	}
	return string(b), ""
}

// HostPattern matches a normalized host: either exact ("shop.example.com") or
// a wildcard "*.example.com", which (as in Kubernetes Ingress) matches exactly
// ONE extra leading label: "a.example.com" yes, "a.b.example.com" no,
// "example.com" no.
//
// The one-label rule is the Ingress semantics users already know, and it is
// the narrower reading: a rule for "*.example.com" must not silently cover a
// deeper, separately delegated zone such as "*.internal.example.com".
//
// The zero HostPattern matches nothing.
type HostPattern struct {
	// host is the canonical exact host, or for a wildcard the domain
	// after "*.".
	host     string
	pattern  string
	wildcard bool
}

// ParseHostPattern parses an exact host or a "*.domain" wildcard. It folds to
// lower case and strips one trailing dot, as NormalizeHost does, and rejects
// bad patterns ("*" alone, "a.*.com", "*x.com", empty labels) and patterns
// with a port: rules are about names, and the port a client claims says
// nothing about which virtual host serves it. An exact IPv6 literal may be
// written with or without brackets.
func ParseHostPattern(s string) (HostPattern, error) {
	if s == "" {
		return HostPattern{}, errors.New("host pattern is empty")
	}
	bad := func(problem string) (HostPattern, error) {
		return HostPattern{}, errors.New("host pattern " + normQuote(s) + ": " + problem)
	}
	if base, ok := strings.CutPrefix(s, "*."); ok {
		if strings.IndexByte(base, '*') >= 0 {
			return bad("'*' is only allowed as the whole first label, as in \"*.example.com\"")
		}
		if strings.IndexByte(base, ':') >= 0 || strings.IndexByte(base, '[') >= 0 {
			return bad("a wildcard must be followed by a DNS name without a port")
		}
		h, problem := normHostname(base)
		if problem != "" {
			return bad(problem)
		}
		return HostPattern{host: h, pattern: "*." + h, wildcard: true}, nil
	}
	if strings.IndexByte(s, '*') >= 0 {
		return bad("'*' is only allowed as the whole first label, as in \"*.example.com\"")
	}
	host, _, hasPort, ipv6, problem := normSplitHostPort(s)
	if problem != "" {
		return bad(problem)
	}
	if hasPort {
		return bad("must not include a port")
	}
	var canon string
	if ipv6 {
		canon, problem = normIPv6(host)
	} else {
		canon, problem = normHostname(host)
	}
	if problem != "" {
		return bad(problem)
	}
	return HostPattern{host: canon, pattern: canon}, nil
}

// Matches reports whether host, which must already be normalized by
// NormalizeHost, matches the pattern.
func (h HostPattern) Matches(host string) bool {
	if h.host == "" {
		return false
	}
	if !h.wildcard {
		return host == h.host
	}
	// host must be "<label>.<h.host>" with a non-empty label that has no
	// dot of its own.
	n := len(host) - len(h.host) - 1
	return n > 0 &&
		host[n] == '.' &&
		host[n+1:] == h.host &&
		strings.IndexByte(host[:n], '.') < 0
}

// IsWildcard reports whether the pattern is a "*.domain" wildcard.
func (h HostPattern) IsWildcard() bool { return h.wildcard }

// String returns the canonical pattern (lower case, no trailing dot).
func (h HostPattern) String() string { return h.pattern }

type normPathKind uint8

const (
	normPathNone normPathKind = iota // the zero PathMatcher: matches nothing
	normPathExact
	normPathPrefix
)

// PathMatcher matches a normalized request path. Built from a policy's `path`
// (exact) or `pathPrefix`.
//
// The zero PathMatcher matches nothing, so a matcher that was never built
// cannot turn into a catch-all.
type PathMatcher struct {
	raw string
	// canon is the canonical path for an exact matcher, and the canonical
	// prefix without its trailing '/' for a prefix matcher ("" for "/").
	canon string
	kind  normPathKind
}

// ExactPath builds a matcher for exactly the path p, written decoded by the
// user (e.g. "/login"). p is canonicalized the same way NormalizePath does
// (so "/Login" and "/login" are the same) and must start with '/'.
//
// A policy path is written decoded, so it must not contain '%' (write "/a b",
// not "/a%20b"), nor '?', '#', ';', '\\' or control characters, which could
// never survive NormalizePath and so would make a rule that silently never
// matches. Dot-segments (".", "..", "...") are an error too. Trailing dots and
// spaces are stripped from segments and case is folded, exactly as for
// requests. A trailing slash is significant: "/docs/" does not match "/docs".
func ExactPath(p string) (PathMatcher, error) {
	canon, err := normPolicyPath(p)
	if err != nil {
		return PathMatcher{}, err
	}
	return PathMatcher{raw: p, canon: canon, kind: normPathExact}, nil
}

// PathPrefix builds an element-wise prefix matcher like Kubernetes Ingress
// pathType Prefix: p is validated and canonicalized as for ExactPath, a
// trailing '/' is ignored, and a path matches when it equals the prefix or
// continues it with '/'. So "/api/" matches "/api", "/api/" and "/api/x" but
// not "/apix", and "/" matches every path.
//
// Matching on whole segments is what makes a prefix rule safe: a plain string
// prefix "/admin" would also hand its policy to "/administrator-public".
func PathPrefix(p string) (PathMatcher, error) {
	canon, err := normPolicyPath(p)
	if err != nil {
		return PathMatcher{}, err
	}
	return PathMatcher{raw: p, canon: strings.TrimSuffix(canon, "/"), kind: normPathPrefix}, nil
}

func normPolicyPath(p string) (string, error) {
	bad := func(problem string) (string, error) {
		return "", errors.New("policy path " + normQuote(p) + ": " + problem)
	}
	if p == "" || p[0] != '/' {
		return bad("must start with '/'")
	}
	for i := 0; i < len(p); i++ {
		switch b := p[i]; {
		case normIsCTL(b):
			return bad(fmt.Sprintf("control character 0x%02X is not allowed", b))
		case b == '%':
			return bad("must be written decoded, without percent-escapes (e.g. \"/a b\", not \"/a%20b\")")
		case b == '?':
			return bad("'?' is not allowed: rules match the path only, never the query")
		case b == '#':
			return bad("'#' is not allowed: fragments are never sent to servers")
		case b == ';':
			return bad("';' is not allowed: path parameters are stripped from requests before matching")
		case b == '\\':
			return bad("backslash is not allowed")
		case normIsOverlongAt(p, i):
			// NormalizePath rejects every request containing it, so a
			// rule with it could never match.
			return bad(normOverlongProblem)
		}
	}
	out, problem := normCanonicalSegments(nil, []byte(p), true)
	if problem != "" {
		return bad(problem)
	}
	return string(out), nil
}

// Matches reports whether normalizedPath, which must come from NormalizePath,
// matches. It does not allocate.
func (m PathMatcher) Matches(normalizedPath string) bool {
	switch m.kind {
	case normPathExact:
		return normalizedPath == m.canon
	case normPathPrefix:
		return strings.HasPrefix(normalizedPath, m.canon) &&
			(len(normalizedPath) == len(m.canon) || normalizedPath[len(m.canon)] == '/')
	default:
		return false
	}
}

// IsExact reports whether the matcher was built by ExactPath.
func (m PathMatcher) IsExact() bool { return m.kind == normPathExact }

// String returns the path as the user wrote it, for error messages and status.
func (m PathMatcher) String() string { return m.raw }

// MethodSet is a set of HTTP methods. The nil/empty set matches every method.
type MethodSet struct {
	// names are upper case, deduplicated, in the order first given.
	names   []string
	withGet bool
}

// NewMethodSet builds a set from methods, upper-casing them. A name that is
// not an HTTP token (RFC 9110) is an error, as is an empty name: neither could
// ever match a real request, so it is a typo in the policy.
func NewMethodSet(methods []string) (MethodSet, error) {
	var s MethodSet
	for i, m := range methods {
		if m == "" {
			return MethodSet{}, fmt.Errorf("method at index %d is empty", i)
		}
		b := make([]byte, len(m))
		for j := 0; j < len(m); j++ {
			if !normIsTokenChar(m[j]) {
				return MethodSet{}, fmt.Errorf("method %s: %q is not allowed in an HTTP method name", normQuote(m), rune(m[j]))
			}
			c := m[j]
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			b[j] = c
		}
		name := string(b)
		dup := false
		for _, n := range s.names {
			if n == name {
				dup = true
				break
			}
		}
		if !dup {
			s.names = append(s.names, name)
		}
		if name == "GET" {
			s.withGet = true
		}
	}
	return s, nil
}

func normIsTokenChar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

// Matches reports whether method is in the set. Comparison is ASCII
// case-insensitive. A set containing GET also matches HEAD, as Go's
// http.ServeMux does: servers answer HEAD with the GET handler, so a rule
// that allows GET while a HEAD fell through to a stricter or laxer rule would
// be surprising either way. It does not allocate.
func (s MethodSet) Matches(method string) bool {
	if len(s.names) == 0 {
		return true
	}
	for _, n := range s.names {
		if normEqualUpperASCII(method, n) {
			return true
		}
	}
	return s.withGet && normEqualUpperASCII(method, "HEAD")
}

// String returns the methods separated by commas, or "*" for the set that
// matches every method.
func (s MethodSet) String() string {
	if len(s.names) == 0 {
		return "*"
	}
	return strings.Join(s.names, ",")
}

// normEqualUpperASCII reports whether s upper-cased (ASCII letters only)
// equals upper. strings.EqualFold is not used because it applies Unicode
// folding, under which "ſ" (U+017F) equals "s": a method "PoſT" would match
// POST while every server sees an unknown method.
func normEqualUpperASCII(s, upper string) bool {
	if len(s) != len(upper) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}
