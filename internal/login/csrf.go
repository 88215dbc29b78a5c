package login

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
)

// Login and logout are protected against cross-site request forgery twice, because each defence
// covers what the other misses:
//
//   - CrossOrigin (net/http.CrossOriginProtection) refuses non-safe requests that a browser marks
//     as coming from another origin: Sec-Fetch-Site "cross-site" or "same-site", or, from browsers
//     too old to send Sec-Fetch-Site, an Origin whose host is not the Host. It needs no token and
//     no cookie, and it also stops same-site attackers (a compromised or user-content subdomain of
//     the login host's site), which no cookie-based token can fully stop: such a subdomain can set
//     cookies for the whole site. But it lets through every request that carries neither header,
//     which is what browsers from before about 2020 send with some form posts, and what privacy
//     proxies that strip Origin produce.
//   - The double-submit token (CSRF) covers those: a cross-site page can make the browser post a
//     form, but it can neither read the CSRF cookie nor compute the field that matches it without
//     the key. It needs no server-side state, so any replica verifies what any other issued, as long
//     as they share the key.
//
// The token alone is weaker against a same-site attacker who can plant its own cookie ("cookie
// tossing"): it can fetch a valid cookie and field pair for itself and set that cookie in the
// victim's browser. A cookie named "__Host-..." with Path=/ would prevent that, at the cost of the
// narrower /auth/ path; CrossOriginProtection is what covers this case in current browsers.

// CSRFCookieName is the name of the cookie that holds the CSRF nonce.
const CSRFCookieName = "authgate_csrf"

// CSRFCookiePath is the path of the CSRF cookie: sent to the login, logout and refresh endpoints
// only, never to the applications behind authgate.
const CSRFCookiePath = "/auth/"

// csrfMinKeyLen is the shortest key NewCSRF accepts: the key is all that keeps fields unforgeable.
const csrfMinKeyLen = 32

// csrfNonceLen is the size of the random nonce in the cookie, and so of the HMAC input prefix;
// being fixed, it keeps nonce || purpose unambiguous.
const csrfNonceLen = 32

// csrfKeyLabel separates the keys derived from the configured key, in case the same secret is ever
// used for something else too.
const csrfKeyLabel = "authgate login csrf v1"

var (
	// ErrCSRFCookieMissing means the request carried no CSRF cookie: cookies are disabled, the
	// cookie expired with the browser session, or the form was not served by authgate.
	ErrCSRFCookieMissing = errors.New("csrf: the csrf cookie is missing")
	// ErrCSRFFieldMissing means the form carried no csrf field.
	ErrCSRFFieldMissing = errors.New("csrf: the csrf form field is missing")
	// ErrCSRFMismatch means the field does not belong to the cookie (or to this purpose), or one of
	// them is not a token authgate issued.
	ErrCSRFMismatch = errors.New("csrf: the csrf form field does not match the csrf cookie")
)

// CSRF issues and checks stateless double-submit tokens: the cookie holds a random nonce and the
// form field HMAC-SHA256(k, nonce || purpose), base64url without padding, where k is derived from
// the configured key (k = HMAC-SHA256(key, "authgate login csrf v1")). A CSRF is safe for
// concurrent use.
type CSRF struct {
	key []byte
}

// NewCSRF returns a CSRF that signs with key, which must be at least 32 bytes long and should be
// random. Every replica must use the same key.
func NewCSRF(key []byte) (*CSRF, error) {
	if len(key) < csrfMinKeyLen {
		return nil, fmt.Errorf("csrf key is %d bytes long; it must be at least %d", len(key), csrfMinKeyLen)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(csrfKeyLabel))
	return &CSRF{key: m.Sum(nil)}, nil
}

// Issue returns a token for the hidden form field and the value of the CSRF cookie to set (see
// CSRFCookie for its attributes). purpose names the form ("login", "logout"): a field issued for one
// purpose does not pass Check for another.
//
// Each call makes a new nonce, and so replaces the cookie of any form issued before in the same
// browser; use Field to issue another form for a cookie the browser already holds.
func (c *CSRF) Issue(purpose string) (field, cookie string, err error) {
	if purpose == "" {
		return "", "", errors.New("csrf: purpose is empty")
	}
	nonce := make([]byte, csrfNonceLen)
	if _, err := rand.Read(nonce); err != nil {
		return "", "", fmt.Errorf("csrf: reading random nonce: %w", err)
	}
	return c.field(nonce, purpose), base64.RawURLEncoding.EncodeToString(nonce), nil
}

// Field returns the form field for purpose that matches cookie, a CSRF cookie value the browser
// already holds, so that a page rendered while another is open (a second tab) does not invalidate
// the first. It fails with ErrCSRFCookieMissing or ErrCSRFMismatch when cookie is empty or not a
// value Issue returns; then call Issue.
func (c *CSRF) Field(purpose, cookie string) (string, error) {
	if purpose == "" {
		return "", errors.New("csrf: purpose is empty")
	}
	if cookie == "" {
		return "", ErrCSRFCookieMissing
	}
	nonce, ok := decodeToken(cookie, csrfNonceLen)
	if !ok {
		return "", fmt.Errorf("%w: the cookie is malformed", ErrCSRFMismatch)
	}
	return c.field(nonce, purpose), nil
}

// Check verifies a posted field against the cookie value, in constant time. The error is
// ErrCSRFCookieMissing, ErrCSRFFieldMissing or (wrapping) ErrCSRFMismatch; it never repeats the
// values.
func (c *CSRF) Check(purpose, field, cookie string) error {
	if cookie == "" {
		return ErrCSRFCookieMissing
	}
	if field == "" {
		return ErrCSRFFieldMissing
	}
	if purpose == "" {
		return errors.New("csrf: purpose is empty")
	}
	nonce, ok := decodeToken(cookie, csrfNonceLen)
	if !ok {
		return fmt.Errorf("%w: the cookie is malformed", ErrCSRFMismatch)
	}
	got, ok := decodeToken(field, sha256.Size)
	if !ok {
		return fmt.Errorf("%w: the form field is malformed", ErrCSRFMismatch)
	}
	if !hmac.Equal(got, c.mac(nonce, purpose)) {
		return ErrCSRFMismatch
	}
	return nil
}

// CSRFCookie returns the cookie that carries value, a cookie value from Issue: HttpOnly (no script
// needs it), Secure, SameSite=Strict (no other site's page sends it), on CSRFCookiePath, and without
// Max-Age, so it ends with the browser session.
func CSRFCookie(value string) *http.Cookie {
	return &http.Cookie{
		Name:     CSRFCookieName,
		Value:    value,
		Path:     CSRFCookiePath,
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	}
}

// CrossOrigin returns the standard library's protection against cross-origin form posts, which
// refuses (403) non-safe requests (anything but GET, HEAD and OPTIONS) that a browser marks as
// cross-origin. Wrap the login, logout and refresh handlers with its Handler, in addition to
// checking the CSRF token (see the comment at the top of this file for why both). A page on another
// origin that legitimately calls these endpoints with fetch must be added with AddTrustedOrigin.
func CrossOrigin() *http.CrossOriginProtection {
	return http.NewCrossOriginProtection()
}

func (c *CSRF) mac(nonce []byte, purpose string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write(nonce)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

func (c *CSRF) field(nonce []byte, purpose string) string {
	return base64.RawURLEncoding.EncodeToString(c.mac(nonce, purpose))
}

// decodeToken decodes an n-byte value in unpadded, canonical base64url (a cookie nonce or a field
// MAC). The length is checked first, so a huge value is never decoded; it is not secret.
func decodeToken(s string, n int) ([]byte, bool) {
	if len(s) != base64.RawURLEncoding.EncodedLen(n) {
		return nil, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != n {
		return nil, false
	}
	return b, true
}
