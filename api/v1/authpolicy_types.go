package v1

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Mode says how a request proves who it is on the routes a rule matches.
// +kubebuilder:validation:Enum=Session;JWT;Either;Public
type Mode string

const (
	// ModeSession requires a server-side session: an opaque ID in an HttpOnly cookie whose record
	// lives in the store. Logout and revocation take effect at once.
	ModeSession Mode = "Session"
	// ModeJWT requires a signed access token (Bearer header, or the access-token cookie for browsers)
	// checked without a store lookup.
	ModeJWT Mode = "JWT"
	// ModeEither accepts a session cookie or a JWT.
	ModeEither Mode = "Either"
	// ModePublic lets every request through without identity.
	ModePublic Mode = "Public"
)

// UsesSession reports whether requests under this mode may carry a session.
func (m Mode) UsesSession() bool { return m == ModeSession || m == ModeEither }

// UsesJWT reports whether requests under this mode may carry a JWT.
func (m Mode) UsesJWT() bool { return m == ModeJWT || m == ModeEither }

// Algorithm is the JWS algorithm authgate signs its tokens with.
// +kubebuilder:validation:Enum=ES256;RS256;EdDSA;HS256
type Algorithm string

const (
	// AlgorithmES256 is ECDSA with P-256 and SHA-256, the default: small keys, small signatures.
	AlgorithmES256 Algorithm = "ES256"
	// AlgorithmRS256 is RSASSA-PKCS1-v1_5 with SHA-256, for verifiers that know nothing else.
	AlgorithmRS256 Algorithm = "RS256"
	// AlgorithmEdDSA is Ed25519.
	AlgorithmEdDSA Algorithm = "EdDSA"
	// AlgorithmHS256 is HMAC with SHA-256: one shared secret signs and verifies, so it is never
	// published in the JWKS and only authgate itself can check such tokens.
	AlgorithmHS256 Algorithm = "HS256"
)

// SameSite is the SameSite attribute of a cookie.
// +kubebuilder:validation:Enum=Strict;Lax;None
type SameSite string

const (
	// SameSiteStrict sends the cookie only with same-site requests.
	SameSiteStrict SameSite = "Strict"
	// SameSiteLax also sends the cookie with top-level cross-site navigations (following a link).
	SameSiteLax SameSite = "Lax"
	// SameSiteNone sends the cookie with every request; browsers require Secure with it.
	SameSiteNone SameSite = "None"
)

// StoreUnavailablePolicy says what a check does when it needs the session store and the store does
// not answer.
// +kubebuilder:validation:Enum=Deny;AllowCached
type StoreUnavailablePolicy string

const (
	// StoreUnavailableDeny answers such checks with an error, which the proxy turns into a denial.
	StoreUnavailableDeny StoreUnavailablePolicy = "Deny"
	// StoreUnavailableAllowCached lets a session through when this replica holds a cached record of
	// it that is still valid; every other such check is an error.
	StoreUnavailableAllowCached StoreUnavailablePolicy = "AllowCached"
)

// HTTPMethod is an HTTP request method.
// +kubebuilder:validation:Enum=GET;HEAD;POST;PUT;PATCH;DELETE;OPTIONS;CONNECT;TRACE
type HTTPMethod string

// Duration is a Go duration string such as "90s", "15m" or "1h30m". Units: ns, us, ms, s, m, h.
// +kubebuilder:validation:MaxLength=32
// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 90s, 15m or 24h (units ns, us, ms, s, m, h)"
type Duration string

// Parse returns the duration the string names.
func (d Duration) Parse() (time.Duration, error) {
	v, err := time.ParseDuration(string(d))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 15m or 24h: %w", string(d), err)
	}
	return v, nil
}

// HostPattern is a lower-case host name, or a wildcard "*.example.com" that matches exactly one
// more label in front ("a.example.com", not "example.com" nor "a.b.example.com"), as in Kubernetes
// Ingress.
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:Pattern=`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
type HostPattern string

// DomainMatch is a host name ("app.example.com", that host only) or a suffix with a leading dot
// (".example.com", that domain and every host under it).
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:Pattern=`^\.?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
type DomainMatch string

// Role is the name of a role a user holds, such as "admin".
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9_.:]*[A-Za-z0-9])?$`
type Role string

// ClaimName names a claim of the identity: "sub", "email", "name", "roles", "sid", or any claim of a
// trusted issuer's token (for example "groups" or "https://example.com/tenant").
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=128
// +kubebuilder:validation:Pattern=`^[!-~]+$`
type ClaimName string

// URL is an absolute http or https URL.
// +kubebuilder:validation:MaxLength=2048
// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && size(url(self).getHostname()) > 0",message="must be an absolute http:// or https:// URL with a host"
type URL string

// SecretReference names a Secret in the policy's own namespace.
type SecretReference struct {
	// name of the Secret, in the same namespace as the AuthPolicy.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// AuthPolicySpec is what an app team writes: which hosts the policy guards, how each route is
// authenticated, and how identity is carried and passed upstream.
//
// +kubebuilder:validation:XValidation:rule="!self.rules.exists(r, r.mode == 'JWT' || r.mode == 'Either') || has(self.jwt)",message="spec.jwt is required when a rule uses mode JWT or Either"
// +kubebuilder:validation:XValidation:rule="!self.rules.exists(r, r.mode == 'Session' || r.mode == 'Either') || has(self.session)",message="spec.session is required when a rule uses mode Session or Either"
// +kubebuilder:validation:XValidation:rule="!self.rules.exists(r, r.mode == 'Session' || r.mode == 'Either') || (has(self.login) && has(self.login.usersSecretRef))",message="spec.login.usersSecretRef is required when a rule uses mode Session or Either: sessions are created by authgate's login"
// +kubebuilder:validation:XValidation:rule="!has(self.jwt) || !has(self.jwt.issuer) || (has(self.login) && has(self.login.usersSecretRef))",message="spec.login.usersSecretRef is required when spec.jwt.issuer is set: authgate issues tokens only to users it can log in"
// +kubebuilder:validation:XValidation:rule="!has(self.session) || !has(self.jwt) || !has(self.jwt.accessTokenCookie) || self.jwt.accessTokenCookie.name != self.session.cookie.name",message="spec.jwt.accessTokenCookie.name must differ from spec.session.cookie.name"
type AuthPolicySpec struct {
	// hosts are the request hosts this policy guards when the proxy does not name the policy
	// (for example Istio, which has no per-route context). Exact names ("shop.example.com") win over
	// wildcards ("*.example.com"). Leave empty for a policy that proxies always name explicitly
	// (?policy=<namespace>/<name> or context_extensions).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	Hosts []HostPattern `json:"hosts,omitempty"`

	// rules are matched in order against each request's normalized path and method; the first match
	// decides. A request that matches no rule is denied (403).
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(r, self.exists_one(o, o.name == r.name))",message="rule names must be unique within a policy"
	Rules []Rule `json:"rules"`

	// session configures server-side sessions, used by rules with mode Session or Either.
	// +optional
	Session *SessionConfig `json:"session,omitempty"`

	// jwt configures the tokens authgate issues and the external issuers it trusts, used by rules with
	// mode JWT or Either.
	// +optional
	JWT *JWTConfig `json:"jwt,omitempty"`

	// login configures who can log in and where browsers are sent to do it.
	// +optional
	Login *LoginConfig `json:"login,omitempty"`

	// identityHeaders are the headers sent upstream on an allowed request, each set exactly once,
	// mapped to the identity claim that fills them ("X-User-Id: sub"). Lists (such as roles) are
	// joined with ",". A header the identity has no value for is removed, so a client can never
	// supply it. Names are HTTP header names; hop-by-hop and framing headers are refused.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(h, h.size() <= 64 && h.matches('^[A-Za-z0-9!#$%&\\'*+.^_`|~-]+$'))",message="identity header names must be HTTP header names (letters, digits and !#$%&'*+.^_`|~-), at most 64 characters"
	// +kubebuilder:validation:XValidation:rule="self.all(h, !(h.lowerAscii() in ['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length', 'content-type', 'cookie', 'set-cookie', 'authorization', 'www-authenticate', 'location', 'cache-control']))",message="identity headers cannot be hop-by-hop, framing or credential headers (Connection, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade, Host, Content-Length, Content-Type, Cookie, Set-Cookie, Authorization, WWW-Authenticate, Location, Cache-Control)"
	// +kubebuilder:validation:XValidation:rule="self.all(h, self.exists_one(o, o.lowerAscii() == h.lowerAscii()))",message="identity header names must be unique regardless of case"
	IdentityHeaders map[string]ClaimName `json:"identityHeaders,omitempty"`

	// onStoreUnavailable says what a check that needs the session store does when the store does
	// not answer: Deny answers with an error (the proxy denies), AllowCached lets through sessions this
	// replica has a valid cached record of. Never a silent allow of an unknown session.
	// +optional
	// +kubebuilder:default=Deny
	OnStoreUnavailable StoreUnavailablePolicy `json:"onStoreUnavailable,omitempty"`
}

// Rule says how requests that match it are authenticated and which roles they need.
// +kubebuilder:validation:XValidation:rule="self.mode != 'Public' || !has(self.requireRoles) || size(self.requireRoles) == 0",message="a Public rule cannot require roles; use mode Session, JWT or Either"
type Rule struct {
	// name identifies the rule in status, logs and metrics.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// match selects the requests this rule applies to. An empty match selects every request.
	// +optional
	Match RouteMatch `json:"match,omitempty"`

	// mode is how a matching request proves who it is: Session, JWT, Either (session or JWT) or
	// Public (no identity needed).
	// +required
	Mode Mode `json:"mode"`

	// requireRoles lets through only identities that hold at least one of these roles; others get
	// 403. Empty means any authenticated identity.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	RequireRoles []Role `json:"requireRoles,omitempty"`
}

// RouteMatch selects requests by path and method. Paths are matched after normalization: decoded
// once, dot-segments resolved, duplicate slashes merged, ";" parameters and trailing dots of
// segments dropped, ASCII letters folded to lower case; so write them decoded ("/files/a b", not
// "/files/a%20b"). Requests with ambiguous paths (encoded slashes, double encoding, control
// characters) are refused with 400 before any rule is tried.
// +kubebuilder:validation:XValidation:rule="!(has(self.path) && has(self.pathPrefix))",message="set either path (exact) or pathPrefix, not both"
type RouteMatch struct {
	// pathPrefix matches a path and everything below it, element by element as Kubernetes Ingress
	// pathType Prefix does: "/api/" and "/api" both match "/api", "/api/" and "/api/v1", but not
	// "/apis". "/" matches every path.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/[^?#%;\\\s\x00-\x1f\x7f]*$`
	// +kubebuilder:validation:XValidation:rule="!self.matches('/\\\\.+(/|$)')",message="pathPrefix must not contain segments made only of dots (., .., ...)"
	PathPrefix string `json:"pathPrefix,omitempty"`

	// path matches exactly this path (after normalization); "/login" does not match "/login/".
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/[^?#%;\\\s\x00-\x1f\x7f]*$`
	// +kubebuilder:validation:XValidation:rule="!self.matches('/\\\\.+(/|$)')",message="path must not contain segments made only of dots (., .., ...)"
	Path string `json:"path,omitempty"`

	// methods restricts the rule to these request methods; empty means every method. GET also
	// matches HEAD.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=9
	Methods []HTTPMethod `json:"methods,omitempty"`
}

// SessionConfig configures server-side sessions.
// +kubebuilder:validation:XValidation:rule="!(self.refreshThreshold.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') && self.ttl.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$')) || duration(self.refreshThreshold) < duration(self.ttl)",message="session.refreshThreshold must be less than session.ttl"
// +kubebuilder:validation:XValidation:rule="!(self.ttl.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') && self.maxLifetime.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$')) || duration(self.ttl) <= duration(self.maxLifetime)",message="session.ttl must not exceed session.maxLifetime"
// +kubebuilder:validation:XValidation:rule="!has(self.idleTimeout) || !(self.idleTimeout.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') && self.ttl.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$')) || duration(self.idleTimeout) == duration('0s') || duration(self.idleTimeout) <= duration(self.ttl)",message="session.idleTimeout must not exceed session.ttl (it could never fire); use 0s to turn it off"
type SessionConfig struct {
	// cookie configures the cookie that carries the session ID. The cookie is always HttpOnly.
	// +optional
	// +kubebuilder:default={}
	Cookie CookieConfig `json:"cookie,omitempty"`

	// ttl is the lifetime a session gets at login and at each sliding extension.
	// +optional
	// +kubebuilder:default="168h"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) > duration('0s')",message="ttl must be greater than zero"
	TTL Duration `json:"ttl,omitempty"`

	// refreshThreshold drives sliding expiry: a check that finds less than this much of the session's
	// lifetime left extends it to ttl (never past maxLifetime).
	// +optional
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) > duration('0s')",message="refreshThreshold must be greater than zero"
	RefreshThreshold Duration `json:"refreshThreshold,omitempty"`

	// maxLifetime is the absolute cap on a session's life, counted from login; sliding expiry never
	// extends a session past it. Set it equal to ttl to turn sliding expiry off.
	// +optional
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) > duration('0s')",message="maxLifetime must be greater than zero"
	MaxLifetime Duration `json:"maxLifetime,omitempty"`

	// idleTimeout ends a session that has seen no check for this long. Leave it out, or set 0s, to
	// turn it off.
	// +optional
	IdleTimeout Duration `json:"idleTimeout,omitempty"`
}

// CookieConfig configures a cookie authgate sets. Cookies are always HttpOnly.
// +kubebuilder:validation:XValidation:rule="!has(self.sameSite) || self.sameSite != 'None' || !has(self.secure) || self.secure",message="sameSite None requires secure: true (browsers drop such cookies otherwise)"
// +kubebuilder:validation:XValidation:rule="!has(self.name) || !self.name.startsWith('__Secure-') || !has(self.secure) || self.secure",message="a cookie named __Secure-* requires secure: true"
// +kubebuilder:validation:XValidation:rule="!has(self.name) || !self.name.startsWith('__Host-') || ((!has(self.secure) || self.secure) && (!has(self.path) || self.path == '/') && !has(self.domain))",message="a cookie named __Host-* requires secure: true, path / and no domain"
type CookieConfig struct {
	// name of the cookie.
	// +optional
	// +kubebuilder:default=authgate_session
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	Name string `json:"name,omitempty"`

	// domain the cookie is sent to; empty means the host that set it only. ".example.com" shares
	// the cookie with every host under example.com.
	// +optional
	Domain DomainMatch `json:"domain,omitempty"`

	// path the cookie is sent for.
	// +optional
	// +kubebuilder:default="/"
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^/[^;\s]*$`
	Path string `json:"path,omitempty"`

	// sameSite is the cookie's SameSite attribute.
	// +optional
	// +kubebuilder:default=Lax
	SameSite SameSite `json:"sameSite,omitempty"`

	// secure sends the cookie over HTTPS only. Turn it off only for local development over plain HTTP.
	// +optional
	// +kubebuilder:default=true
	Secure *bool `json:"secure,omitempty"`
}

// JWTConfig configures JSON Web Tokens: those authgate issues (when issuer is set) and those of
// external issuers it trusts.
// +kubebuilder:validation:XValidation:rule="has(self.issuer) || (has(self.trustedIssuers) && size(self.trustedIssuers) > 0)",message="jwt needs an issuer (authgate issues tokens) or at least one trustedIssuers entry, or no token could ever be valid"
// +kubebuilder:validation:XValidation:rule="!has(self.issuer) || has(self.signingKeySecretRef)",message="jwt.signingKeySecretRef is required when jwt.issuer is set (the operator creates the Secret when it does not exist)"
// +kubebuilder:validation:XValidation:rule="self.algorithm != 'HS256' || has(self.signingKeySecretRef)",message="jwt.algorithm HS256 requires jwt.signingKeySecretRef (the shared secret)"
// +kubebuilder:validation:XValidation:rule="!(self.accessTokenTTL.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') && self.refreshTokenTTL.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$')) || duration(self.accessTokenTTL) < duration(self.refreshTokenTTL)",message="jwt.accessTokenTTL must be less than jwt.refreshTokenTTL"
// +kubebuilder:validation:XValidation:rule="!(self.accessTokenTTL.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') && self.keyRotationPeriod.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$')) || duration(self.accessTokenTTL) < duration(self.keyRotationPeriod)",message="jwt.keyRotationPeriod must be longer than jwt.accessTokenTTL"
// +kubebuilder:validation:XValidation:rule="!has(self.trustedIssuers) || !has(self.issuer) || self.trustedIssuers.all(t, t.issuer != self.issuer)",message="a trustedIssuers entry cannot repeat jwt.issuer"
type JWTConfig struct {
	// issuer is the "iss" of the tokens authgate issues, usually the URL of its login host. Leave it
	// out to only verify tokens of trustedIssuers.
	// +optional
	Issuer URL `json:"issuer,omitempty"`

	// audiences are the "aud" values authgate puts in its tokens and requires in them. Empty means the
	// policy's own "<namespace>/<name>", so a token of one policy never passes another.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	Audiences []string `json:"audiences,omitempty"`

	// algorithm authgate signs with. Tokens are only ever accepted with the algorithm of the key that
	// verifies them; "none" is never accepted.
	// +optional
	// +kubebuilder:default=ES256
	Algorithm Algorithm `json:"algorithm,omitempty"`

	// signingKeySecretRef names the Secret holding the signing keys. When it does not exist the
	// operator creates it and rotates its keys every keyRotationPeriod; a Secret you create yourself is
	// used as it is and never modified.
	// +optional
	SigningKeySecretRef *SecretReference `json:"signingKeySecretRef,omitempty"`

	// accessTokenTTL is the lifetime of an access token. Keep it short: an access token is checked
	// without a lookup.
	// +optional
	// +kubebuilder:default="15m"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) > duration('0s')",message="accessTokenTTL must be greater than zero"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) <= duration('24h')",message="accessTokenTTL must be at most 24h; use refresh tokens for longer sessions"
	AccessTokenTTL Duration `json:"accessTokenTTL,omitempty"`

	// refreshTokenTTL is the lifetime of a refresh token, the opaque token that gets new access tokens.
	// +optional
	// +kubebuilder:default="168h"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) > duration('0s')",message="refreshTokenTTL must be greater than zero"
	RefreshTokenTTL Duration `json:"refreshTokenTTL,omitempty"`

	// refreshTokenRotation gives a new refresh token at every refresh; presenting a used one again
	// revokes its whole family (every token descended from the same login).
	// +optional
	// +kubebuilder:default=true
	RefreshTokenRotation *bool `json:"refreshTokenRotation,omitempty"`

	// keyRotationPeriod is how often the operator replaces a signing key it manages. Previous public
	// keys stay published until every token they signed has expired.
	// +optional
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) >= duration('1h')",message="keyRotationPeriod must be at least 1h"
	KeyRotationPeriod Duration `json:"keyRotationPeriod,omitempty"`

	// clockSkew is the leeway allowed on "exp", "nbf" and "iat" for clocks that disagree.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) <= duration('5m')",message="clockSkew must be at most 5m"
	ClockSkew Duration `json:"clockSkew,omitempty"`

	// accessTokenCookie, when set, also delivers access tokens to browsers in an HttpOnly cookie of
	// this name at login and refresh, and checks accept it there. Bearer headers are always accepted.
	// +optional
	AccessTokenCookie *TokenCookieConfig `json:"accessTokenCookie,omitempty"`

	// trustedIssuers are external identity providers whose tokens are accepted too, verified with
	// the keys their JWKS URL publishes.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:XValidation:rule="self.all(t, self.exists_one(o, o.issuer == t.issuer))",message="trustedIssuers must not repeat an issuer"
	TrustedIssuers []TrustedIssuer `json:"trustedIssuers,omitempty"`
}

// TokenCookieConfig names the cookie that carries a JWT access token to browsers. It is always
// HttpOnly, Secure and SameSite=Lax, for path "/" of the host that set it.
type TokenCookieConfig struct {
	// name of the cookie.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	Name string `json:"name"`
}

// TrustedIssuer is an external identity provider whose tokens a policy accepts.
type TrustedIssuer struct {
	// issuer must equal the token's "iss" exactly.
	// +required
	Issuer URL `json:"issuer"`

	// jwksURL is where the issuer publishes its public keys (a JSON Web Key Set). Use https outside
	// the cluster.
	// +required
	JWKSURL URL `json:"jwksURL"`

	// audiences of which the token's "aud" must contain at least one. Empty means the policy's
	// jwt.audiences (or its "<namespace>/<name>" when those are empty too).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	Audiences []string `json:"audiences,omitempty"`
}

// LoginConfig configures authgate's login.
type LoginConfig struct {
	// usersSecretRef names the Secret whose key "users.yaml" lists the users who can log in: email,
	// bcrypt password hash and roles.
	// +optional
	UsersSecretRef *SecretReference `json:"usersSecretRef,omitempty"`

	// url is the login page browsers are sent to when they need a session, with the page they asked
	// for in "rd". Usually https://<login host>/auth/login. Without it, browsers get a 401 like API
	// clients do.
	// +optional
	URL URL `json:"url,omitempty"`

	// allowedRedirectDomains are where login and logout may send a browser back to ("rd"): host names
	// ("app.example.com") or suffixes (".example.com" for every host under example.com). A target
	// elsewhere is refused. Empty means the policy's exact hosts.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	AllowedRedirectDomains []DomainMatch `json:"allowedRedirectDomains,omitempty"`
}

// AuthPolicyStatus is written by the operator only.
type AuthPolicyStatus struct {
	// observedGeneration is the metadata.generation the conditions describe. It is set only when a
	// reconcile of that generation finished.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions describe the policy's state: Accepted (the spec compiles and claims no route another
	// policy has), ResolvedRefs (referenced Secrets exist and parse), Ready (both, and the webhook can
	// enforce it).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// modes summarizes the modes of the rules, each once, in rule order ("Public,JWT,Session"), for
	// kubectl get. (A printer column can show only one value of a list, so the operator writes it.)
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Modes string `json:"modes,omitempty"`

	// attachedIngresses counts the Ingresses wired to this policy by the authgate.dev/policy
	// annotation.
	// +optional
	AttachedIngresses int32 `json:"attachedIngresses,omitempty"`

	// activeKeyID is the "kid" of the key that signs new tokens.
	// +optional
	ActiveKeyID string `json:"activeKeyID,omitempty"`
}

// AuthPolicy says how requests to a set of hosts and routes are authenticated: with a server-side
// session, a signed JWT, either, or not at all, and which roles they need.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ap,categories=authgate
// +kubebuilder:printcolumn:name="Hosts",type=string,JSONPath=`.spec.hosts`,priority=1
// +kubebuilder:printcolumn:name="Modes",type=string,JSONPath=`.status.modes`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AuthPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired behaviour, written by app teams.
	// +required
	Spec AuthPolicySpec `json:"spec"`

	// status is the observed state, written by the operator.
	// +optional
	Status AuthPolicyStatus `json:"status,omitempty"`
}

// AuthPolicyList is a list of AuthPolicy objects.
//
// +kubebuilder:object:root=true
type AuthPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AuthPolicy `json:"items"`
}

// IsSecure reports whether the cookie is sent over HTTPS only (the default).
func (c CookieConfig) IsSecure() bool { return c.Secure == nil || *c.Secure }

// RotatesRefreshTokens reports whether refresh tokens rotate (the default).
func (j JWTConfig) RotatesRefreshTokens() bool {
	return j.RefreshTokenRotation == nil || *j.RefreshTokenRotation
}
