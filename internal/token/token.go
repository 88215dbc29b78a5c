package token

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
	"weak"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/maypok86/otter/v2"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/policy"
)

// MaxTokenSize is the length in bytes above which a token is refused without being parsed.
const MaxTokenSize = 8 << 10

// TypeAccessToken is the "typ" header of authgate's access tokens (RFC 9068).
const TypeAccessToken = "at+jwt"

// Reason says why a token was refused. Its values are stable: metrics and logs use them.
type Reason string

const (
	// Malformed: not a compact JWS of JSON objects, a claim of the wrong type, no "exp", a "crit"
	// or "b64" header, or (own tokens) a "typ" other than at+jwt.
	Malformed Reason = "malformed"
	// TooLarge: longer than MaxTokenSize.
	TooLarge Reason = "too_large"
	// UnknownIssuer: "iss" is neither the policy's issuer nor one it trusts.
	UnknownIssuer Reason = "unknown_issuer"
	// UnknownKey: no "kid", or no key of the issuer has it.
	UnknownKey Reason = "unknown_key"
	// BadAlgorithm: "alg" is none, unsupported, or not the algorithm of the key.
	BadAlgorithm Reason = "bad_algorithm"
	// BadSignature: the signature does not verify.
	BadSignature Reason = "bad_signature"
	// Expired: "exp" has passed.
	Expired Reason = "expired"
	// NotYetValid: "nbf" or "iat" is in the future.
	NotYetValid Reason = "not_yet_valid"
	// WrongAudience: "aud" names none of the audiences the policy accepts.
	WrongAudience Reason = "wrong_audience"
	// WrongIssuer: signed by one of the policy's own keys but with another "iss".
	WrongIssuer Reason = "wrong_issuer"
	// Revoked: the Denylist holds it.
	Revoked Reason = "revoked"
	// Unavailable: the trusted issuer's JWKS could not be fetched and no earlier copy is cached.
	Unavailable Reason = "unavailable"
)

// Error is a refused token. Reason is stable for metrics and logs; Detail is for humans and never
// contains the token (header values it quotes are shortened and escaped).
type Error struct {
	Reason Reason
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return "token refused: " + string(e.Reason)
	}
	return "token refused: " + string(e.Reason) + ": " + e.Detail
}

func refuse(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// quote makes an untrusted value safe for Detail: escaped, and at most 64 bytes of it.
func quote(s string) string {
	const limit = 64
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "..."
	}
	return strconv.Quote(s)
}

// Claims are the verified claims of an access token.
type Claims struct {
	Issuer    string
	Subject   string
	Audience  []string
	IssuedAt  time.Time
	NotBefore time.Time
	ExpiresAt time.Time
	// ID is the "jti".
	ID string
	// SessionID is the "sid": the login's refresh family.
	SessionID string
	Email     string
	Name      string
	Roles     []string

	// extra holds the other string or list-of-strings claims of trusted issuers' tokens (lists
	// joined with ","), for identity headers.
	extra map[string]string
}

// Claim returns a claim by name as a header value: "iss", "sub", "email", "name", "sid" and "jti"
// as they are; "roles", "aud" and any other list claim joined with ","; other string claims of
// trusted issuers' tokens as they are. ok is false when the claim is absent or empty, is not a
// string or list of strings (exp, nbf, iat included), or holds control characters, which no header
// value may carry.
func (c *Claims) Claim(name string) (string, bool) {
	var v string
	switch name {
	case "iss":
		v = c.Issuer
	case "sub":
		v = c.Subject
	case "email":
		v = c.Email
	case "name":
		v = c.Name
	case "sid":
		v = c.SessionID
	case "jti":
		v = c.ID
	case "roles":
		v = strings.Join(c.Roles, ",")
	case "aud":
		v = strings.Join(c.Audience, ",")
	default:
		v = c.extra[name]
	}
	return v, v != "" && headerSafe(v)
}

func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// Denylist says whether a verified token has been revoked. policy is the policy's
// "<namespace>/<name>". It is consulted for trusted issuers' tokens too: Claims.Issuer tells them
// apart.
type Denylist interface {
	Revoked(policy string, c *Claims) bool
}

// issued is the payload of an access token, members in a fixed order.
type issued struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  []string `json:"aud"`
	ExpiresAt int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	ID        string   `json:"jti"`
	SessionID string   `json:"sid"`
	Email     string   `json:"email,omitempty"`
	Name      string   `json:"name,omitempty"`
	Roles     []string `json:"roles,omitempty"`
}

// Issue signs a new access token for user under policy p, for the login family sid, valid from now
// for p.JWT().AccessTokenTTL. Times are whole seconds: now is truncated.
//
// Claims: iss, sub (user.ID), aud (the policy's audiences, always a list), exp, iat, nbf, jti (128
// random bits, base64url), sid, email and name (when not empty), roles (when any). Header: alg of the
// active key, its kid, and typ at+jwt. Issue fails when the policy does not issue tokens, and for an
// empty user ID or sid: every token must name a subject and belong to a family that can be revoked.
func Issue(p *policy.Policy, user policy.User, sid string, now time.Time) (raw string, claims Claims, err error) {
	if p == nil || p.JWT() == nil || !p.JWT().Issues() || p.JWT().Keys() == nil {
		name := "(nil)"
		if p != nil {
			name = p.Name()
		}
		return "", Claims{}, fmt.Errorf("token: policy %s does not issue tokens", name)
	}
	if user.ID == "" {
		return "", Claims{}, errors.New("token: user without an ID")
	}
	if sid == "" {
		return "", Claims{}, errors.New("token: no session family (sid)")
	}
	j := p.JWT()
	key := j.Keys().Active()
	if key.Algorithm() != j.Algorithm {
		return "", Claims{}, fmt.Errorf("token: policy %s: active key %s is for %s, not %s", p.Ref(), key.ID(), key.Algorithm(), j.Algorithm)
	}
	alg, ok := jwa.LookupSignatureAlgorithm(string(key.Algorithm()))
	if !ok {
		return "", Claims{}, fmt.Errorf("token: unsupported algorithm %s", key.Algorithm())
	}
	var signWith any = key.Signer()
	if key.Algorithm() == authgatev1.AlgorithmHS256 {
		signWith = key.Secret()
	}

	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", Claims{}, fmt.Errorf("token: %w", err)
	}
	iat := time.Unix(now.Unix(), 0)
	claims = Claims{
		Issuer:    j.Issuer,
		Subject:   user.ID,
		Audience:  slices.Collect(j.Audiences()),
		IssuedAt:  iat,
		NotBefore: iat,
		ExpiresAt: time.Unix(iat.Add(j.AccessTokenTTL).Unix(), 0),
		ID:        base64.RawURLEncoding.EncodeToString(jti[:]),
		SessionID: sid,
		Email:     user.Email,
		Name:      user.Name,
	}
	if roles := user.Roles(); len(roles) > 0 {
		claims.Roles = slices.Clone(roles)
	}
	payload, err := json.Marshal(issued{
		Issuer: claims.Issuer, Subject: claims.Subject, Audience: claims.Audience,
		ExpiresAt: claims.ExpiresAt.Unix(), IssuedAt: iat.Unix(), NotBefore: iat.Unix(),
		ID: claims.ID, SessionID: sid, Email: claims.Email, Name: claims.Name, Roles: claims.Roles,
	})
	if err != nil {
		return "", Claims{}, fmt.Errorf("token: %w", err)
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.KeyIDKey, key.ID()); err != nil {
		return "", Claims{}, fmt.Errorf("token: %w", err)
	}
	if err := hdr.Set(jws.TypeKey, TypeAccessToken); err != nil {
		return "", Claims{}, fmt.Errorf("token: %w", err)
	}
	signed, err := jws.Sign(payload, jws.WithKey(alg, signWith, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", Claims{}, fmt.Errorf("token: signing with key %s: %w", key.ID(), err)
	}
	return string(signed), claims, nil
}

// Verifier verifies tokens against compiled policies. It is safe for concurrent use; Close stops its
// background JWKS refreshes.
type Verifier struct {
	now       func() time.Time
	deny      Denylist
	jwks      *jwksCache
	ownClient *http.Client // the default client, whose idle connections Close closes

	// policies caches each policy's own keys, converted once, by a weak pointer to the policy so
	// that replaced policies are not kept alive; a cleanup removes their entry.
	policies sync.Map // weak.Pointer[policy.Policy] -> *ownKeys

	// verified holds tokens that passed every check but time and revocation, which are checked
	// again on each hit; nil without WithCache.
	verified *otter.Cache[verifiedKey, *Claims]
	// hits and misses count lookups of verified, when set (WithCacheCounters).
	hits, misses Counter
}

// Counter is what the verifier counts cache lookups with; a prometheus.Counter is one.
type Counter interface{ Inc() }

// WithCacheCounters counts the lookups of the verified-token cache (WithCache): a hit skips the
// signature check (time limits and the denylist are still checked), a miss verifies the token.
// Without a cache nothing is counted.
func WithCacheCounters(hits, misses Counter) VerifierOption {
	return func(v *Verifier) { v.hits, v.misses = hits, misses }
}

// verifiedKey names a verified token by the SHA-256 of its text: the cache holds 32 bytes per token
// instead of the token itself (half a kilobyte and more), and no two tokens share a key. The
// policy is part of it: the same token may be valid for one policy and not another.
type verifiedKey struct {
	policy *policy.Policy
	sum    [sha256.Size]byte
}

func newVerifiedKey(p *policy.Policy, raw string) verifiedKey {
	// Hashing reads the string's bytes in place rather than copying a token per check;
	// sha256 never writes to its input.
	return verifiedKey{policy: p, sum: sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))}
}

// verifiedTTL bounds how long a verified token stays cached. Time limits are checked on every hit
// anyway; this only lets memory go back after a burst.
const verifiedTTL = 10 * time.Minute

// WithCache keeps up to size verified tokens, so that a token seen before costs a map lookup instead
// of a signature check. exp, nbf and the denylist are still checked on every hit, so a cached token
// expires and is revoked exactly like a new one. size <= 0 turns the cache off.
func WithCache(size int) VerifierOption {
	return func(v *Verifier) {
		if size <= 0 {
			return
		}
		v.verified = otter.Must(&otter.Options[verifiedKey, *Claims]{
			MaximumSize:      size,
			ExpiryCalculator: otter.ExpiryWriting[verifiedKey, *Claims](verifiedTTL),
		})
	}
}

// VerifierOption configures a Verifier.
type VerifierOption func(*Verifier)

// WithClock sets the clock that exp, nbf and iat are checked against, and that paces JWKS refetches.
func WithClock(now func() time.Time) VerifierOption {
	return func(v *Verifier) {
		if now != nil {
			v.now = now
		}
	}
}

// WithHTTPClient sets the client that fetches JWKS. The default is a client of the Verifier's own
// with a 5 second limit; a client given here gets each fetch limited to 5 seconds too.
func WithHTTPClient(c *http.Client) VerifierOption {
	return func(v *Verifier) {
		if c != nil {
			v.jwks.client = c
		}
	}
}

// WithDenylist sets the Denylist consulted after every other check.
func WithDenylist(d Denylist) VerifierOption {
	return func(v *Verifier) { v.deny = d }
}

// NewVerifier returns a Verifier. Call Close when done with it.
func NewVerifier(opts ...VerifierOption) *Verifier {
	v := &Verifier{now: time.Now}
	v.jwks = newJWKSCache(nil, func() time.Time { return v.now() })
	for _, o := range opts {
		o(v)
	}
	if v.jwks.client == nil {
		v.ownClient = newHTTPClient()
		v.jwks.client = v.ownClient
	}
	return v
}

// Close stops JWKS refreshing and waits for fetches under way to end. Tokens of trusted issuers
// whose JWKS is cached still verify; others are Unavailable.
func (v *Verifier) Close() {
	v.jwks.close()
	if v.ownClient != nil {
		v.ownClient.CloseIdleConnections()
	}
}

// Verify checks raw for policy p and returns its claims, or an *Error saying why it was refused.
// ctx bounds waiting for a trusted issuer's JWKS.
//
// The returned Claims may be shared with other callers (they come from the cache): never modify them.
func (v *Verifier) Verify(ctx context.Context, p *policy.Policy, raw string) (*Claims, error) {
	var key verifiedKey
	if v.verified != nil && p != nil {
		key = newVerifiedKey(p, raw)
		c, ok := v.verified.GetIfPresent(key)
		v.countLookup(ok)
		if ok {
			if e := v.checkTimes(p.JWT(), c); e != nil {
				return nil, e
			}
			if v.deny != nil && v.deny.Revoked(p.Name(), c) {
				return nil, refuse(Revoked, "the token has been revoked")
			}
			return c, nil
		}
	}
	c, e := v.verify(ctx, p, raw)
	if e != nil {
		return nil, e
	}
	if v.verified != nil && p != nil {
		v.verified.Set(key, c)
	}
	return c, nil
}

func (v *Verifier) countLookup(hit bool) {
	switch {
	case hit && v.hits != nil:
		v.hits.Inc()
	case !hit && v.misses != nil:
		v.misses.Inc()
	}
}

// checkTimes checks exp, nbf and iat against the clock, with the policy's leeway.
func (v *Verifier) checkTimes(j *policy.JWTSettings, claims *Claims) *Error {
	now, skew := v.now(), j.ClockSkew
	if !now.Before(claims.ExpiresAt.Add(skew)) {
		return refuse(Expired, "expired at %s", claims.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if !claims.NotBefore.IsZero() && now.Add(skew).Before(claims.NotBefore) {
		return refuse(NotYetValid, "not valid before %s", claims.NotBefore.UTC().Format(time.RFC3339))
	}
	if !claims.IssuedAt.IsZero() && now.Add(skew).Before(claims.IssuedAt) {
		return refuse(NotYetValid, "issued in the future, at %s", claims.IssuedAt.UTC().Format(time.RFC3339))
	}
	return nil
}

func (v *Verifier) verify(ctx context.Context, p *policy.Policy, raw string) (*Claims, *Error) {
	t, e := parseCompact(raw)
	if e != nil {
		return nil, e
	}
	var j *policy.JWTSettings
	if p != nil {
		j = p.JWT()
	}
	if j == nil {
		return nil, refuse(UnknownIssuer, "the policy accepts no tokens")
	}
	claims, e := parseClaims(t.claims)
	if e != nil {
		return nil, e
	}

	var key *verifyKey
	var accepts func([]string) bool
	switch ti, trusted := j.TrustedIssuer(claims.Issuer); {
	case claims.Issuer == "":
		return nil, refuse(UnknownIssuer, "the token has no iss")
	case j.Issues() && claims.Issuer == j.Issuer:
		key, e = v.ownKey(p, j, t)
		accepts = j.AcceptsAudience
	case trusted:
		key, e = v.trustedKey(ctx, ti, t)
		accepts = ti.AcceptsAudience
	default:
		return nil, v.otherIssuer(p, j, t, claims.Issuer)
	}
	if e != nil {
		return nil, e
	}
	if !key.verify(t.signingInput, t.sig) {
		return nil, refuse(BadSignature, "the signature does not verify with key %s", quote(key.kid))
	}

	// The signature covers the claims: from here on they are the issuer's.
	if len(claims.Audience) == 0 {
		return nil, refuse(WrongAudience, "the token has no aud")
	}
	if !accepts(claims.Audience) {
		return nil, refuse(WrongAudience, "aud %s names no audience of this policy", quote(strings.Join(claims.Audience, ",")))
	}
	if claims.ExpiresAt.IsZero() {
		return nil, refuse(Malformed, "the token has no exp")
	}
	if e := v.checkTimes(j, claims); e != nil {
		return nil, e
	}
	if v.deny != nil && v.deny.Revoked(p.Name(), claims) {
		return nil, refuse(Revoked, "the token has been revoked")
	}
	return claims, nil
}

// ownKey picks the policy's key for one of its own tokens.
func (v *Verifier) ownKey(p *policy.Policy, j *policy.JWTSettings, t *compact) (*verifyKey, *Error) {
	if t.alg != string(j.Algorithm) {
		return nil, refuse(BadAlgorithm, "alg %s: the policy's tokens are %s", quote(t.alg), j.Algorithm)
	}
	if !isAccessTokenType(t.typ) {
		return nil, refuse(Malformed, "typ %s: want %s", quote(t.typ), TypeAccessToken)
	}
	if !t.hasKid {
		return nil, refuse(UnknownKey, "the token has no kid")
	}
	key := v.ownKeys(p).byKid[t.kid]
	if key == nil {
		return nil, refuse(UnknownKey, "kid %s is not a key of the policy", quote(t.kid))
	}
	if key.alg != t.alg {
		return nil, refuse(BadAlgorithm, "alg %s: key %s is for %s", quote(t.alg), quote(key.kid), key.alg)
	}
	return key, nil
}

// otherIssuer explains a token whose iss is neither the policy's nor trusted: WrongIssuer when one
// of the policy's own keys signed it, UnknownIssuer otherwise.
func (v *Verifier) otherIssuer(p *policy.Policy, j *policy.JWTSettings, t *compact, iss string) *Error {
	if j.Issues() && t.hasKid && t.alg == string(j.Algorithm) {
		if key := v.ownKeys(p).byKid[t.kid]; key != nil && key.alg == t.alg && key.verify(t.signingInput, t.sig) {
			return refuse(WrongIssuer, "signed by key %s of the policy but iss is %s, not %s", quote(t.kid), quote(iss), quote(j.Issuer))
		}
	}
	return refuse(UnknownIssuer, "iss %s is neither the policy's issuer nor trusted by it", quote(iss))
}

func isAccessTokenType(typ string) bool {
	typ = strings.ToLower(typ)
	return typ == TypeAccessToken || typ == "application/"+TypeAccessToken
}

// ownKeys is a policy's verification keys by kid, converted once.
type ownKeys struct {
	byKid map[string]*verifyKey
}

func (v *Verifier) ownKeys(p *policy.Policy) *ownKeys {
	wp := weak.Make(p)
	if k, ok := v.policies.Load(wp); ok {
		return k.(*ownKeys)
	}
	k := newOwnKeys(p.JWT())
	if prev, loaded := v.policies.LoadOrStore(wp, k); loaded {
		return prev.(*ownKeys)
	}
	// The cleanup holds the weak pointer and the map, never p, so p can still be collected.
	runtime.AddCleanup(p, func(wp weak.Pointer[policy.Policy]) { v.policies.Delete(wp) }, wp)
	return k
}

func newOwnKeys(j *policy.JWTSettings) *ownKeys {
	k := &ownKeys{byKid: map[string]*verifyKey{}}
	if j == nil || j.Keys() == nil {
		return k
	}
	for vk := range j.Keys().Verifiers() {
		var material any = vk.Public()
		if vk.Algorithm() == authgatev1.AlgorithmHS256 {
			material = vk.Secret()
		}
		// Compile checked every key against the algorithm; one that fails here is left out, so
		// its tokens are UnknownKey rather than verified with something unexpected.
		if key, err := newVerifyKey(vk.ID(), string(vk.Algorithm()), material); err == nil {
			k.byKid[vk.ID()] = key
		}
	}
	return k
}

// trustedKey picks the key of a trusted issuer's JWKS for a token.
func (v *Verifier) trustedKey(ctx context.Context, ti *policy.TrustedIssuer, t *compact) (*verifyKey, *Error) {
	switch t.alg {
	case algES256, algRS256, algEdDSA:
	default:
		return nil, refuse(BadAlgorithm, "alg %s: trusted issuers' tokens are accepted with ES256, RS256 or EdDSA only", quote(t.alg))
	}
	if !t.hasKid {
		return nil, refuse(UnknownKey, "the token has no kid")
	}
	url := ti.JWKSURL()
	set, err := v.jwks.keys(ctx, url)
	if err != nil {
		return nil, refuse(Unavailable, "the JWKS of %s: %v", ti.Issuer(), err)
	}
	key, known := set.lookup(t.kid, t.alg)
	if !known {
		// The issuer may have rotated its keys since the set was fetched.
		if fresh := v.jwks.refetch(ctx, url); fresh != nil {
			key, known = fresh.lookup(t.kid, t.alg)
		}
	}
	switch {
	case !known:
		return nil, refuse(UnknownKey, "kid %s is not in the JWKS of %s", quote(t.kid), ti.Issuer())
	case key == nil:
		return nil, refuse(BadAlgorithm, "alg %s: key %s of %s is for another algorithm", quote(t.alg), quote(t.kid), ti.Issuer())
	}
	return key, nil
}
