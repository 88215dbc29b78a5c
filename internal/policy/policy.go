package policy

import (
	"crypto"
	"fmt"
	"iter"
	"net/http"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	authgatev1 "github.com/authgate/authgate/api/v1"
)

// Ref names a policy by namespace and name.
type Ref struct {
	Namespace string
	Name      string
}

// String returns "<namespace>/<name>", the form proxies use in ?policy= and context_extensions.
func (r Ref) String() string { return r.Namespace + "/" + r.Name }

// ParseRef parses "<namespace>/<name>".
func ParseRef(s string) (Ref, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok {
		return Ref{}, fmt.Errorf("policy reference %s: want <namespace>/<name>", normQuote(s))
	}
	// Every check that names its policy parses the reference: the common, valid case is decided
	// without the regular expressions of the validation package, which only explain a refusal.
	if !dnsName(ns, 63, false) {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return Ref{}, fmt.Errorf("policy reference %s: namespace: %s", normQuote(s), errs[0])
		}
	}
	if !dnsName(name, 253, true) {
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			return Ref{}, fmt.Errorf("policy reference %s: name: %s", normQuote(s), errs[0])
		}
	}
	return Ref{Namespace: ns, Name: name}, nil
}

// dnsName reports whether s is a DNS-1123 label (dots false) or subdomain (dots true) of at most
// max bytes: lower-case letters, digits and '-', each dot-separated part starting and ending with a
// letter or digit. It accepts exactly what the validation package's expressions accept.
func dnsName(s string, max int, dots bool) bool {
	if s == "" || len(s) > max {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			c := s[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
			continue
		}
		if i < len(s) && !dots {
			return false
		}
		part := s[start:i]
		if part == "" || part[0] == '-' || part[len(part)-1] == '-' {
			return false
		}
		start = i + 1
	}
	return true
}

// Policy is a compiled AuthPolicy. It is immutable: nothing changes it after Compile returns, and
// its methods hand out copies or read-only views, so one Policy serves every request concurrently.
type Policy struct {
	ref                Ref
	name               string
	generation         int64
	created            time.Time
	hosts              []HostPattern
	rules              []Rule
	session            *SessionSettings
	jwt                *JWTSettings
	login              *LoginSettings
	headers            []IdentityHeader
	onStoreUnavailable authgatev1.StoreUnavailablePolicy
}

// Ref returns the policy's namespace and name.
func (p *Policy) Ref() Ref { return p.ref }

// Name returns Ref().String() without building it again: metrics label every check with it.
func (p *Policy) Name() string { return p.name }

// Generation returns the metadata.generation the policy was compiled from.
func (p *Policy) Generation() int64 { return p.generation }

// Created returns the policy's creation time, which decides which of two policies claiming the same
// host is tried first.
func (p *Policy) Created() time.Time { return p.created }

// Hosts returns the host patterns the policy guards.
func (p *Policy) Hosts() iter.Seq[HostPattern] { return slices.Values(p.hosts) }

// Rules returns the policy's rules in order.
func (p *Policy) Rules() iter.Seq[*Rule] {
	return func(yield func(*Rule) bool) {
		for i := range p.rules {
			if !yield(&p.rules[i]) {
				return
			}
		}
	}
}

// Match returns the first rule that matches a request. method is the request method as sent; path
// must come from NormalizePath. A request that matches no rule must be denied.
func (p *Policy) Match(method, path string) (*Rule, bool) {
	for i := range p.rules {
		if r := &p.rules[i]; r.matches(method, path) {
			return r, true
		}
	}
	return nil, false
}

// LongestLife bounds how long a session or token issued under the policy can stay valid: what a
// revocation must be remembered for.
func (p *Policy) LongestLife() time.Duration {
	var d time.Duration
	if p.session != nil {
		d = p.session.MaxLifetime
	}
	if j := p.jwt; j != nil {
		d = max(d, j.RefreshTokenTTL, j.AccessTokenTTL+j.ClockSkew)
	}
	return d
}

// Session returns the session settings, or false when the policy has no session section.
func (p *Policy) Session() (SessionSettings, bool) {
	if p.session == nil {
		return SessionSettings{}, false
	}
	return *p.session, true
}

// JWT returns the token settings, or nil when the policy has no jwt section.
func (p *Policy) JWT() *JWTSettings { return p.jwt }

// Login returns the login settings, or nil when the policy has no login section.
func (p *Policy) Login() *LoginSettings { return p.login }

// IdentityHeaders returns the headers to send upstream on allow, sorted by name. Names are in
// canonical form (X-User-Id) and unique.
func (p *Policy) IdentityHeaders() iter.Seq[IdentityHeader] { return slices.Values(p.headers) }

// IdentityHeaderCount returns how many identity headers the policy sets.
func (p *Policy) IdentityHeaderCount() int { return len(p.headers) }

// OnStoreUnavailable says what a check that needs an unavailable store does.
func (p *Policy) OnStoreUnavailable() authgatev1.StoreUnavailablePolicy { return p.onStoreUnavailable }

// Rule is one compiled rule of a policy.
type Rule struct {
	name    string
	path    PathMatcher
	anyPath bool
	methods MethodSet
	mode    authgatev1.Mode
	roles   []string
}

// Name returns the rule's name.
func (r *Rule) Name() string { return r.name }

// Mode returns how requests under the rule authenticate.
func (r *Rule) Mode() authgatev1.Mode { return r.mode }

// RequiresRoles reports whether the rule lets through only identities with one of its roles.
func (r *Rule) RequiresRoles() bool { return len(r.roles) > 0 }

// RequiredRoles returns the roles of which an identity needs at least one.
func (r *Rule) RequiredRoles() iter.Seq[string] { return slices.Values(r.roles) }

// Allows reports whether an identity holding roles may pass the rule: always when the rule requires
// no role, else when it holds at least one of the rule's roles. Role names compare exactly.
func (r *Rule) Allows(roles []string) bool {
	if len(r.roles) == 0 {
		return true
	}
	for _, want := range r.roles {
		if slices.Contains(roles, want) {
			return true
		}
	}
	return false
}

func (r *Rule) matches(method, path string) bool {
	return r.methods.Matches(method) && (r.anyPath || r.path.Matches(path))
}

// SessionSettings are a policy's session settings.
type SessionSettings struct {
	CookieName   string
	CookieDomain string
	CookiePath   string
	SameSite     http.SameSite
	Secure       bool
	// TTL is the lifetime given at login and at each sliding extension.
	TTL time.Duration
	// RefreshThreshold: a check that finds less lifetime left than this extends the session.
	RefreshThreshold time.Duration
	// MaxLifetime caps a session's life from login.
	MaxLifetime time.Duration
	// IdleTimeout ends a session unused for this long; zero turns it off.
	IdleTimeout time.Duration
}

// JWTSettings are a policy's token settings.
type JWTSettings struct {
	// Issuer is the "iss" of tokens authgate issues; empty when it only verifies trusted issuers.
	Issuer               string
	Algorithm            authgatev1.Algorithm
	AccessTokenTTL       time.Duration
	RefreshTokenTTL      time.Duration
	RefreshTokenRotation bool
	KeyRotationPeriod    time.Duration
	ClockSkew            time.Duration
	// AccessTokenCookie names the cookie that carries access tokens to browsers; empty for none.
	AccessTokenCookie string

	audiences []string
	trusted   []TrustedIssuer
	keys      *KeySet
}

// Issues reports whether authgate issues tokens under this policy.
func (j *JWTSettings) Issues() bool { return j.Issuer != "" }

// Audiences returns the audiences authgate puts in its tokens and requires in them.
func (j *JWTSettings) Audiences() iter.Seq[string] { return slices.Values(j.audiences) }

// AcceptsAudience reports whether a token whose "aud" holds auds is meant for this policy.
func (j *JWTSettings) AcceptsAudience(auds []string) bool {
	return anyIn(auds, j.audiences)
}

// TrustedIssuers returns the external issuers whose tokens the policy accepts.
func (j *JWTSettings) TrustedIssuers() iter.Seq[*TrustedIssuer] {
	return func(yield func(*TrustedIssuer) bool) {
		for i := range j.trusted {
			if !yield(&j.trusted[i]) {
				return
			}
		}
	}
}

// TrustedIssuer returns the trusted issuer whose "iss" is issuer.
func (j *JWTSettings) TrustedIssuer(issuer string) (*TrustedIssuer, bool) {
	for i := range j.trusted {
		if j.trusted[i].issuer == issuer {
			return &j.trusted[i], true
		}
	}
	return nil, false
}

// Keys returns the keys that sign and verify authgate's own tokens, or nil when the policy does not
// issue tokens.
func (j *JWTSettings) Keys() *KeySet { return j.keys }

// TrustedIssuer is an external issuer whose tokens a policy accepts.
type TrustedIssuer struct {
	issuer    string
	jwksURL   string
	audiences []string
}

// Issuer returns the "iss" the issuer's tokens carry.
func (t *TrustedIssuer) Issuer() string { return t.issuer }

// JWKSURL returns where the issuer publishes its keys.
func (t *TrustedIssuer) JWKSURL() string { return t.jwksURL }

// AcceptsAudience reports whether a token whose "aud" holds auds is meant for this policy.
func (t *TrustedIssuer) AcceptsAudience(auds []string) bool { return anyIn(auds, t.audiences) }

func anyIn(have, want []string) bool {
	for _, a := range have {
		if slices.Contains(want, a) {
			return true
		}
	}
	return false
}

// KeySet holds the key that signs a policy's tokens and every key that still verifies them.
type KeySet struct {
	active SigningKey
	verify []VerificationKey
}

// Active returns the key that signs new tokens.
func (k *KeySet) Active() SigningKey { return k.active }

// Verifier returns the key with this kid, if it still verifies tokens.
func (k *KeySet) Verifier(kid string) (VerificationKey, bool) {
	for _, v := range k.verify {
		if v.kid == kid {
			return v, true
		}
	}
	return VerificationKey{}, false
}

// Verifiers returns every key that still verifies tokens, the active one first.
func (k *KeySet) Verifiers() iter.Seq[VerificationKey] { return slices.Values(k.verify) }

// SigningKey is a private key (or HS256 secret) that signs tokens.
type SigningKey struct {
	kid    string
	alg    authgatev1.Algorithm
	signer crypto.Signer
	secret []byte
}

// ID returns the key's "kid".
func (k SigningKey) ID() string { return k.kid }

// Algorithm returns the JWS algorithm the key signs with.
func (k SigningKey) Algorithm() authgatev1.Algorithm { return k.alg }

// Signer returns the private key, or nil for HS256.
func (k SigningKey) Signer() crypto.Signer { return k.signer }

// Secret returns a copy of the HS256 shared secret, or nil for other algorithms.
func (k SigningKey) Secret() []byte { return slices.Clone(k.secret) }

// VerificationKey is a public key (or HS256 secret) that verifies tokens.
type VerificationKey struct {
	kid    string
	alg    authgatev1.Algorithm
	public crypto.PublicKey
	secret []byte
}

// ID returns the key's "kid".
func (k VerificationKey) ID() string { return k.kid }

// Algorithm returns the only JWS algorithm the key verifies; tokens claiming another are refused.
func (k VerificationKey) Algorithm() authgatev1.Algorithm { return k.alg }

// Public returns the public key, or nil for HS256 (which is never published).
func (k VerificationKey) Public() crypto.PublicKey { return k.public }

// Secret returns a copy of the HS256 shared secret, or nil for other algorithms.
func (k VerificationKey) Secret() []byte { return slices.Clone(k.secret) }

// LoginSettings are a policy's login settings.
type LoginSettings struct {
	// URL is the login page browsers are sent to; empty when browsers get a 401 instead.
	URL string

	users     map[string]User // by lower-cased email
	usersByID map[string]string
	maxCost   int
	redirects []string
}

// User returns the user with this email (compared case-insensitively).
func (l *LoginSettings) User(email string) (User, bool) {
	u, ok := l.users[strings.ToLower(email)]
	if !ok {
		return User{}, false
	}
	u.roles = slices.Clone(u.roles)
	u.passwordHash = slices.Clone(u.passwordHash)
	return u, true
}

// UserByID returns the user with this id. Sessions hold the id, so that a check reads the user's
// current roles (and notices a removed or disabled user) on every request.
func (l *LoginSettings) UserByID(id string) (User, bool) {
	email, ok := l.usersByID[id]
	if !ok {
		return User{}, false
	}
	return l.User(email)
}

// AllUsers returns every user, in no particular order.
func (l *LoginSettings) AllUsers() iter.Seq[User] {
	return func(yield func(User) bool) {
		for email := range l.users {
			u, _ := l.User(email)
			if !yield(u) {
				return
			}
		}
	}
}

// MaxHashCost returns the highest bcrypt cost among the users' password hashes.
func (l *LoginSettings) MaxHashCost() int { return l.maxCost }

// Users returns the number of users who can log in.
func (l *LoginSettings) Users() int { return len(l.users) }

// RedirectHostAllowed reports whether login and logout may send a browser back to host, which must
// be normalized (NormalizeHost). Entries with a leading dot allow the domain and every host under it;
// others allow that host only.
func (l *LoginSettings) RedirectHostAllowed(host string) bool {
	if host == "" {
		return false
	}
	for _, d := range l.redirects {
		if suffix, ok := strings.CutPrefix(d, "."); ok {
			if host == suffix || strings.HasSuffix(host, d) {
				return true
			}
		} else if host == d {
			return true
		}
	}
	return false
}

// User is someone who can log in.
type User struct {
	// ID is the user's stable identifier and the "sub" of their identity; the email by default.
	ID string
	// Email is the login name, in lower case.
	Email string
	// Name is a display name; may be empty.
	Name string
	// Disabled users cannot log in and their sessions end at their next check.
	Disabled     bool
	passwordHash []byte
	roles        []string
}

// PasswordHash returns the user's bcrypt hash.
func (u User) PasswordHash() []byte { return u.passwordHash }

// Roles returns the user's roles.
func (u User) Roles() []string { return u.roles }

// IdentityHeader is a header sent upstream on allow, filled from an identity claim.
type IdentityHeader struct {
	// Name is the canonical header name (X-User-Id).
	Name string
	// Claim is the claim that fills it (sub, email, roles, ...).
	Claim string
}
