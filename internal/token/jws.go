package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
)

// The algorithms authgate signs and verifies with. Every other "alg" is refused.
const (
	algES256 = "ES256"
	algRS256 = "RS256"
	algEdDSA = "EdDSA"
	algHS256 = "HS256"
)

const (
	minRSABits = 2048
	maxRSABits = 8192
	minHMACLen = 32
	// maxNumericDate is 9999-12-31T23:59:59Z: later dates are refused rather than overflow.
	maxNumericDate = 253402300799
)

// b64 decodes segments: unpadded base64url with canonical trailing bits, so that one token has one
// encoding. (Line breaks, which the decoder would skip, never reach it: parseCompact refuses every
// byte outside the alphabet first.)
var b64 = base64.RawURLEncoding.Strict()

// compact is a token split and decoded, not yet verified.
type compact struct {
	// signingInput is "<header>.<payload>" as received: what the signature covers.
	signingInput []byte
	alg          string
	kid          string
	hasKid       bool
	typ          string
	claims       map[string]json.RawMessage
	sig          []byte
}

// parseCompact splits a compact JWS and decodes its parts, refusing what no key could make valid.
func parseCompact(raw string) (*compact, *Error) {
	if len(raw) > MaxTokenSize {
		return nil, refuse(TooLarge, "the token is %d bytes, the limit is %d", len(raw), MaxTokenSize)
	}
	dot1, dot2 := -1, -1
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '.':
			switch {
			case dot1 < 0:
				dot1 = i
			case dot2 < 0:
				dot2 = i
			default:
				return nil, refuse(Malformed, "more than three segments")
			}
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return nil, refuse(Malformed, "byte %d is not base64url", i)
		}
	}
	if dot2 < 0 {
		return nil, refuse(Malformed, "not three dot-separated segments")
	}
	hSeg, pSeg, sSeg := raw[:dot1], raw[dot1+1:dot2], raw[dot2+1:]
	if hSeg == "" || pSeg == "" {
		return nil, refuse(Malformed, "empty header or payload")
	}

	// One buffer holds the signing input and the three decoded segments.
	buf := make([]byte, dot2+b64.DecodedLen(len(hSeg))+b64.DecodedLen(len(pSeg))+b64.DecodedLen(len(sSeg)))
	t := &compact{signingInput: buf[:dot2:dot2]}
	copy(t.signingInput, raw[:dot2])
	rest := buf[dot2:]
	decode := func(seg string) ([]byte, bool) {
		n, err := b64.Decode(rest, []byte(seg))
		if err != nil {
			return nil, false
		}
		out := rest[:n:n]
		rest = rest[n:]
		return out, true
	}

	hdrJSON, ok := decode(hSeg)
	if !ok {
		return nil, refuse(Malformed, "the header is not base64url")
	}
	header, ok := jsonObject(hdrJSON)
	if !ok {
		return nil, refuse(Malformed, "the header is not a JSON object in UTF-8")
	}
	if e := t.readHeader(header); e != nil {
		return nil, e
	}

	payload, ok := decode(pSeg)
	if !ok {
		return nil, refuse(Malformed, "the payload is not base64url")
	}
	if t.claims, ok = jsonObject(payload); !ok {
		return nil, refuse(Malformed, "the payload is not a JSON object in UTF-8")
	}
	if t.sig, ok = decode(sSeg); !ok {
		return nil, refuse(Malformed, "the signature is not base64url")
	}
	if len(t.sig) == 0 {
		return nil, refuse(Malformed, "the token is not signed")
	}
	return t, nil
}

// readHeader applies the header rules that hold whoever issued the token. jku, x5u, jwk and x5c are
// never read.
func (t *compact) readHeader(h map[string]json.RawMessage) *Error {
	if _, ok := h["crit"]; ok {
		return refuse(Malformed, "crit header: no JWS extension is understood")
	}
	if _, ok := h["b64"]; ok {
		return refuse(Malformed, "b64 header: only base64url payloads are accepted")
	}
	raw, ok := h["alg"]
	if !ok {
		return refuse(BadAlgorithm, "the header has no alg")
	}
	if t.alg, ok = jsonString(raw); !ok {
		return refuse(Malformed, "alg is not a string")
	}
	switch t.alg {
	case algES256, algRS256, algEdDSA, algHS256:
	default:
		if strings.EqualFold(t.alg, "none") {
			return refuse(BadAlgorithm, "alg none: unsigned tokens are never accepted")
		}
		return refuse(BadAlgorithm, "alg %s is not supported", quote(t.alg))
	}
	if raw, ok := h["kid"]; ok {
		if t.kid, ok = jsonString(raw); !ok {
			return refuse(Malformed, "kid is not a string")
		}
		t.hasKid = t.kid != ""
	}
	if raw, ok := h["typ"]; ok {
		if t.typ, ok = jsonString(raw); !ok {
			return refuse(Malformed, "typ is not a string")
		}
	}
	return nil
}

// jsonObject decodes a JSON object in UTF-8. Of repeated member names the last counts, as RFC 7515
// and RFC 7519 allow.
func jsonObject(b []byte) (map[string]json.RawMessage, bool) {
	if !utf8.Valid(b) {
		return nil, false
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, false
	}
	return m, true
}

// jsonString decodes a JSON string value; anything else, null included, is not one.
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	// raw is a valid JSON value (the whole document parsed): without escapes it is the bytes
	// between the quotes.
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// stringList decodes a string or a list of strings.
func stringList(raw json.RawMessage) ([]string, bool) {
	if s, ok := jsonString(raw); ok {
		return []string{s}, true
	}
	if len(raw) == 0 || raw[0] != '[' {
		return nil, false
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, false
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, ok := jsonString(it)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// numericDate decodes a NumericDate: seconds since the epoch, fractions allowed, not negative.
func numericDate(raw json.RawMessage) (time.Time, bool) {
	if len(raw) == 0 || raw[0] < '0' || raw[0] > '9' {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f > maxNumericDate {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// registered are the claims parseClaims reads into fields; the others go to extra.
var registered = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true,
	"sid": true, "email": true, "name": true, "roles": true,
}

// parseClaims reads the claims set. Registered claims and sid must have their RFC types; email,
// name and roles of another type are ignored, as are other claims that are not strings or lists of
// strings.
func parseClaims(m map[string]json.RawMessage) (*Claims, *Error) {
	c := &Claims{}
	str := func(name string, dst *string) bool {
		raw, ok := m[name]
		if !ok {
			return true
		}
		*dst, ok = jsonString(raw)
		return ok
	}
	date := func(name string, dst *time.Time) bool {
		raw, ok := m[name]
		if !ok {
			return true
		}
		*dst, ok = numericDate(raw)
		return ok
	}
	for _, check := range [...]struct {
		name string
		ok   bool
	}{
		{"iss", str("iss", &c.Issuer)},
		{"sub", str("sub", &c.Subject)},
		{"jti", str("jti", &c.ID)},
		{"sid", str("sid", &c.SessionID)},
		{"exp", date("exp", &c.ExpiresAt)},
		{"nbf", date("nbf", &c.NotBefore)},
		{"iat", date("iat", &c.IssuedAt)},
	} {
		if !check.ok {
			return nil, refuse(Malformed, "claim %s has the wrong type", check.name)
		}
	}
	known := 0
	if raw, ok := m["aud"]; ok {
		known++
		if c.Audience, ok = stringList(raw); !ok {
			return nil, refuse(Malformed, "claim aud is neither a string nor a list of strings")
		}
	}
	if raw, ok := m["email"]; ok {
		known++
		c.Email, _ = jsonString(raw)
	}
	if raw, ok := m["name"]; ok {
		known++
		c.Name, _ = jsonString(raw)
	}
	if raw, ok := m["roles"]; ok {
		known++
		if roles, ok := stringList(raw); ok && len(roles) > 0 {
			c.Roles = roles
		}
	}
	for _, name := range [...]string{"iss", "sub", "jti", "sid", "exp", "nbf", "iat"} {
		if _, ok := m[name]; ok {
			known++
		}
	}
	if known == len(m) {
		return c, nil
	}
	for name, raw := range m {
		if registered[name] {
			continue
		}
		if s, ok := jsonString(raw); ok {
			c.setExtra(name, s)
		} else if l, ok := stringList(raw); ok {
			c.setExtra(name, strings.Join(l, ","))
		}
	}
	return c, nil
}

func (c *Claims) setExtra(name, value string) {
	if value == "" {
		return
	}
	if c.extra == nil {
		c.extra = map[string]string{}
	}
	c.extra[name] = value
}

// verifyKey is a key ready to check signatures of exactly one algorithm.
type verifyKey struct {
	kid string
	alg string
	// key is a *ecdsa.PublicKey (P-256), *rsa.PublicKey, ed25519.PublicKey or []byte (HS256).
	key any
	// sigLen is the only signature length the key can have made.
	sigLen int
}

// newVerifyKey checks that material suits alg.
func newVerifyKey(kid, alg string, material any) (*verifyKey, error) {
	k := &verifyKey{kid: kid, alg: alg, key: material}
	switch alg {
	case algES256:
		pub, ok := material.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			return nil, fmt.Errorf("key %s: ES256 needs a P-256 public key, not %T", kid, material)
		}
		k.sigLen = 64
	case algRS256:
		pub, ok := material.(*rsa.PublicKey)
		if !ok || pub.N == nil {
			return nil, fmt.Errorf("key %s: RS256 needs an RSA public key, not %T", kid, material)
		}
		if bits := pub.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return nil, fmt.Errorf("key %s: RSA key of %d bits, want %d to %d", kid, bits, minRSABits, maxRSABits)
		}
		if pub.E < 3 || pub.E%2 == 0 {
			return nil, fmt.Errorf("key %s: RSA public exponent %d", kid, pub.E)
		}
		k.sigLen = pub.Size()
	case algEdDSA:
		pub, ok := material.(ed25519.PublicKey)
		if !ok || len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("key %s: EdDSA needs an Ed25519 public key, not %T", kid, material)
		}
		k.sigLen = ed25519.SignatureSize
	case algHS256:
		secret, ok := material.([]byte)
		if !ok || len(secret) < minHMACLen {
			return nil, fmt.Errorf("key %s: HS256 needs a secret of at least %d bytes", kid, minHMACLen)
		}
		k.sigLen = 32
	default:
		return nil, fmt.Errorf("key %s: unsupported algorithm %s", kid, alg)
	}
	return k, nil
}

// verify checks sig over signingInput with the key's own algorithm, never the header's.
func (k *verifyKey) verify(signingInput, sig []byte) bool {
	return len(sig) == k.sigLen && jwsbb.Verify(k.key, k.alg, signingInput, sig) == nil
}
