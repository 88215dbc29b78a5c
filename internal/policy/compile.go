package policy

import (
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
	"k8s.io/apimachinery/pkg/util/validation/field"

	authgatev1 "github.com/authgate/authgate/api/v1"
)

// Secrets holds the data of the Secrets a policy references, by Secret name. Every Secret is in the
// policy's own namespace. A name missing from the map is a Secret that does not exist.
type Secrets map[string]map[string][]byte

// CompileError lists everything that keeps an AuthPolicy from compiling, each with its field path.
type CompileError struct {
	// Invalid are problems of the spec itself: the policy cannot work whatever the cluster holds.
	Invalid field.ErrorList
	// Unresolved are problems of referenced Secrets: missing, lacking a key, or not parsing.
	Unresolved field.ErrorList
}

// Error lists every problem, spec problems first.
func (e *CompileError) Error() string {
	all := append(slices.Clone(e.Invalid), e.Unresolved...)
	msgs := make([]string, 0, len(all))
	for _, fe := range all {
		msgs = append(msgs, fe.Error())
	}
	return strings.Join(msgs, "; ")
}

// MissingSecrets reports whether every unresolved reference is a Secret that does not exist (as
// opposed to one that exists but is wrong).
func (e *CompileError) MissingSecrets() bool {
	if len(e.Unresolved) == 0 {
		return false
	}
	for _, fe := range e.Unresolved {
		if fe.Type != field.ErrorTypeNotFound {
			return false
		}
	}
	return true
}

// Compile turns an AuthPolicy and the data of the Secrets it references into a Policy. It applies
// the schema's defaults and checks every schema rule again (policies read from files never met an API
// server), then checks what the schema cannot: Secret contents, keys matching the algorithm,
// paths and hosts that can match. On failure it returns a *CompileError listing every problem.
// Compile does not modify p and has no side effects.
func Compile(p *authgatev1.AuthPolicy, secrets Secrets) (*Policy, error) {
	c := newCompiler(p, secrets)
	c.compile()
	if len(c.invalid) > 0 || len(c.unresolved) > 0 {
		return nil, &CompileError{Invalid: c.invalid, Unresolved: c.unresolved}
	}
	return c.out, nil
}

func newCompiler(p *authgatev1.AuthPolicy, secrets Secrets) *compiler {
	spec := p.Spec.DeepCopy()
	spec.Default()
	c := &compiler{
		ref:  Ref{Namespace: p.Namespace, Name: p.Name},
		spec: spec,
		out: &Policy{
			ref:                Ref{Namespace: p.Namespace, Name: p.Name},
			name:               p.Namespace + "/" + p.Name,
			generation:         p.Generation,
			created:            p.CreationTimestamp.Time,
			onStoreUnavailable: spec.OnStoreUnavailable,
		},
		secrets: secrets,
	}
	return c
}

type compiler struct {
	ref     Ref
	spec    *authgatev1.AuthPolicySpec
	secrets Secrets
	// specOnly skips referenced Secrets without recording them as unresolved: ClaimsOf needs only
	// what the spec says.
	specOnly   bool
	out        *Policy
	invalid    field.ErrorList
	unresolved field.ErrorList
}

var specPath = field.NewPath("spec")

func (c *compiler) fail(err *field.Error) { c.invalid = append(c.invalid, err) }

func (c *compiler) compile() {
	if c.ref.Name == "" {
		c.fail(field.Required(field.NewPath("metadata", "name"), "a policy needs a name"))
	}
	if c.ref.Namespace == "" {
		c.fail(field.Required(field.NewPath("metadata", "namespace"), "a policy needs a namespace"))
	}
	c.hosts()
	c.rules()
	c.session()
	c.jwt()
	c.login()
	c.identityHeaders()
	switch c.spec.OnStoreUnavailable {
	case authgatev1.StoreUnavailableDeny, authgatev1.StoreUnavailableAllowCached:
	default:
		c.fail(field.NotSupported(specPath.Child("onStoreUnavailable"), c.spec.OnStoreUnavailable,
			[]string{string(authgatev1.StoreUnavailableDeny), string(authgatev1.StoreUnavailableAllowCached)}))
	}
	c.crossChecks()
}

func (c *compiler) hosts() {
	path := specPath.Child("hosts")
	if len(c.spec.Hosts) > 32 {
		c.fail(field.TooMany(path, len(c.spec.Hosts), 32))
	}
	seen := map[string]bool{}
	for i, h := range c.spec.Hosts {
		hp, err := ParseHostPattern(string(h))
		if err != nil {
			c.fail(field.Invalid(path.Index(i), h, err.Error()))
			continue
		}
		if hp.String() != string(h) {
			c.fail(field.Invalid(path.Index(i), h, "must be written in lower case without a port or trailing dot, as "+hp.String()))
			continue
		}
		if !hostName.MatchString(string(h)) || len(h) > 253 {
			c.fail(field.Invalid(path.Index(i), h, "must be a lower-case host name of letters, digits, '-' and '.', or a wildcard such as *.example.com"))
			continue
		}
		if seen[hp.String()] {
			c.fail(field.Duplicate(path.Index(i), h))
			continue
		}
		seen[hp.String()] = true
		c.out.hosts = append(c.out.hosts, hp)
	}
}

var (
	dnsLabel   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	roleName   = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.:]*[A-Za-z0-9])?$`)
	httpToken  = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
	claimName  = regexp.MustCompile(`^[!-~]{1,128}$`)
	domainName = regexp.MustCompile(`^\.?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	// hostName and durationText are the schema's patterns of HostPattern and Duration, which the
	// parsers behind them (ParseHostPattern, time.ParseDuration) are laxer than.
	hostName     = regexp.MustCompile(`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	durationText = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`)
)

var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}

func (c *compiler) rules() {
	path := specPath.Child("rules")
	switch n := len(c.spec.Rules); {
	case n == 0:
		c.fail(field.Required(path, "a policy needs at least one rule"))
	case n > 64:
		c.fail(field.TooMany(path, n, 64))
	}
	names := map[string]bool{}
	for i, r := range c.spec.Rules {
		rp := path.Index(i)
		out := Rule{name: r.Name, mode: r.Mode}
		if !dnsLabel.MatchString(r.Name) || len(r.Name) > 63 {
			c.fail(field.Invalid(rp.Child("name"), r.Name, "must be lower-case letters, digits and '-', at most 63 characters"))
		} else if names[r.Name] {
			c.fail(field.Duplicate(rp.Child("name"), r.Name))
		}
		names[r.Name] = true
		switch r.Mode {
		case authgatev1.ModeSession, authgatev1.ModeJWT, authgatev1.ModeEither, authgatev1.ModePublic:
		case "":
			c.fail(field.Required(rp.Child("mode"), "one of Session, JWT, Either, Public"))
		default:
			c.fail(field.NotSupported(rp.Child("mode"), r.Mode, []string{"Session", "JWT", "Either", "Public"}))
		}
		m := r.Match
		var err error
		switch {
		case m.Path != "" && m.PathPrefix != "":
			c.fail(field.Invalid(rp.Child("match"), m.Path, "set either path (exact) or pathPrefix, not both"))
		case utf8.RuneCountInString(m.Path) > 1024: // the schema counts characters
			c.fail(field.TooLong(rp.Child("match", "path"), "", 1024))
		case utf8.RuneCountInString(m.PathPrefix) > 1024:
			c.fail(field.TooLong(rp.Child("match", "pathPrefix"), "", 1024))
		case m.Path != "":
			out.path, err = ExactPath(m.Path)
			if err != nil {
				c.fail(field.Invalid(rp.Child("match", "path"), m.Path, err.Error()))
			}
		case m.PathPrefix != "":
			out.path, err = PathPrefix(m.PathPrefix)
			if err != nil {
				c.fail(field.Invalid(rp.Child("match", "pathPrefix"), m.PathPrefix, err.Error()))
			}
		default:
			out.anyPath = true
		}
		methods := make([]string, 0, len(m.Methods))
		for j, meth := range m.Methods {
			if !slices.Contains(httpMethods, string(meth)) {
				c.fail(field.NotSupported(rp.Child("match", "methods").Index(j), meth, httpMethods))
			}
			methods = append(methods, string(meth))
		}
		if out.methods, err = NewMethodSet(methods); err != nil {
			c.fail(field.Invalid(rp.Child("match", "methods"), m.Methods, err.Error()))
		}
		if len(r.RequireRoles) > 16 {
			c.fail(field.TooMany(rp.Child("requireRoles"), len(r.RequireRoles), 16))
		}
		if r.Mode == authgatev1.ModePublic && len(r.RequireRoles) > 0 {
			c.fail(field.Invalid(rp.Child("requireRoles"), r.RequireRoles, "a Public rule cannot require roles; use mode Session, JWT or Either"))
		}
		for j, role := range r.RequireRoles {
			if !roleName.MatchString(string(role)) || len(role) > 63 {
				c.fail(field.Invalid(rp.Child("requireRoles").Index(j), role, "must be letters, digits and -_.: , at most 63 characters"))
			}
			out.roles = append(out.roles, string(role))
		}
		c.out.rules = append(c.out.rules, out)
	}
}

// duration parses a duration field; min is the smallest value allowed (exclusive when positive).
func (c *compiler) duration(path *field.Path, d authgatev1.Duration, positive bool) time.Duration {
	v, err := d.Parse()
	switch {
	case err != nil || len(d) > 32 || !durationText.MatchString(string(d)):
		c.fail(field.Invalid(path, d, "must be a duration such as 90s, 15m or 24h (units ns, us, ms, s, m, h)"))
	case positive && v <= 0:
		c.fail(field.Invalid(path, d, "must be greater than zero"))
	case v < 0:
		c.fail(field.Invalid(path, d, "must not be negative"))
	}
	return v
}

func (c *compiler) session() {
	s := c.spec.Session
	if s == nil {
		return
	}
	path := specPath.Child("session")
	out := &SessionSettings{
		TTL:              c.duration(path.Child("ttl"), s.TTL, true),
		RefreshThreshold: c.duration(path.Child("refreshThreshold"), s.RefreshThreshold, true),
		MaxLifetime:      c.duration(path.Child("maxLifetime"), s.MaxLifetime, true),
	}
	if s.IdleTimeout != "" {
		out.IdleTimeout = c.duration(path.Child("idleTimeout"), s.IdleTimeout, false)
	}
	if out.RefreshThreshold >= out.TTL && out.TTL > 0 {
		c.fail(field.Invalid(path.Child("refreshThreshold"), s.RefreshThreshold, "session.refreshThreshold must be less than session.ttl"))
	}
	if out.TTL > out.MaxLifetime && out.MaxLifetime > 0 {
		c.fail(field.Invalid(path.Child("ttl"), s.TTL, "session.ttl must not exceed session.maxLifetime"))
	}
	if out.IdleTimeout > out.TTL && out.TTL > 0 {
		c.fail(field.Invalid(path.Child("idleTimeout"), s.IdleTimeout, "session.idleTimeout must not exceed session.ttl (it could never fire); use 0s to turn it off"))
	}
	cp := path.Child("cookie")
	ck := s.Cookie
	c.cookieName(cp.Child("name"), ck.Name)
	if ck.Domain != "" && (!domainName.MatchString(string(ck.Domain)) || len(ck.Domain) > 253) {
		c.fail(field.Invalid(cp.Child("domain"), ck.Domain, "must be a lower-case host name, optionally with a leading dot"))
	}
	if !strings.HasPrefix(ck.Path, "/") || strings.ContainsAny(ck.Path, "; \t\r\n") || len(ck.Path) > 256 {
		c.fail(field.Invalid(cp.Child("path"), ck.Path, "must start with / and contain no ';' or white space"))
	}
	secure := ck.IsSecure()
	switch ck.SameSite {
	case authgatev1.SameSiteStrict:
		out.SameSite = http.SameSiteStrictMode
	case authgatev1.SameSiteLax:
		out.SameSite = http.SameSiteLaxMode
	case authgatev1.SameSiteNone:
		out.SameSite = http.SameSiteNoneMode
		if !secure {
			c.fail(field.Invalid(cp.Child("secure"), secure, "sameSite None requires secure: true (browsers drop such cookies otherwise)"))
		}
	default:
		c.fail(field.NotSupported(cp.Child("sameSite"), ck.SameSite, []string{"Strict", "Lax", "None"}))
	}
	if strings.HasPrefix(ck.Name, "__Secure-") && !secure {
		c.fail(field.Invalid(cp.Child("secure"), secure, "a cookie named __Secure-* requires secure: true"))
	}
	if strings.HasPrefix(ck.Name, "__Host-") && (!secure || ck.Path != "/" || ck.Domain != "") {
		c.fail(field.Invalid(cp, ck.Name, "a cookie named __Host-* requires secure: true, path / and no domain"))
	}
	out.CookieName, out.CookieDomain, out.CookiePath, out.Secure = ck.Name, string(ck.Domain), ck.Path, secure
	c.out.session = out
}

func (c *compiler) cookieName(path *field.Path, name string) {
	if !httpToken.MatchString(name) || len(name) > 64 || strings.ContainsAny(name, "`") {
		c.fail(field.Invalid(path, name, "must be 1 to 64 characters of letters, digits and !#$%&'*+.^_|~-"))
	}
}

func (c *compiler) url(path *field.Path, u authgatev1.URL) string {
	parsed, err := url.Parse(string(u))
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Hostname() == "" || len(u) > 2048 {
		c.fail(field.Invalid(path, u, "must be an absolute http:// or https:// URL with a host"))
	}
	return string(u)
}

func (c *compiler) audiences(path *field.Path, auds []string) []string {
	if len(auds) > 16 {
		c.fail(field.TooMany(path, len(auds), 16))
	}
	seen := map[string]bool{}
	for i, a := range auds {
		if a == "" || len(a) > 256 {
			c.fail(field.Invalid(path.Index(i), a, "must be 1 to 256 characters"))
		}
		if seen[a] {
			c.fail(field.Duplicate(path.Index(i), a))
		}
		seen[a] = true
	}
	return slices.Clone(auds)
}

func (c *compiler) jwt() {
	j := c.spec.JWT
	if j == nil {
		return
	}
	path := specPath.Child("jwt")
	out := &JWTSettings{
		Algorithm:            j.Algorithm,
		AccessTokenTTL:       c.duration(path.Child("accessTokenTTL"), j.AccessTokenTTL, true),
		RefreshTokenTTL:      c.duration(path.Child("refreshTokenTTL"), j.RefreshTokenTTL, true),
		RefreshTokenRotation: j.RotatesRefreshTokens(),
		KeyRotationPeriod:    c.duration(path.Child("keyRotationPeriod"), j.KeyRotationPeriod, true),
		ClockSkew:            c.duration(path.Child("clockSkew"), j.ClockSkew, false),
	}
	if j.Issuer != "" {
		out.Issuer = c.url(path.Child("issuer"), j.Issuer)
	}
	switch j.Algorithm {
	case authgatev1.AlgorithmES256, authgatev1.AlgorithmRS256, authgatev1.AlgorithmEdDSA, authgatev1.AlgorithmHS256:
	default:
		c.fail(field.NotSupported(path.Child("algorithm"), j.Algorithm, []string{"ES256", "RS256", "EdDSA", "HS256"}))
	}
	if out.AccessTokenTTL > 24*time.Hour {
		c.fail(field.Invalid(path.Child("accessTokenTTL"), j.AccessTokenTTL, "accessTokenTTL must be at most 24h; use refresh tokens for longer sessions"))
	}
	if out.AccessTokenTTL >= out.RefreshTokenTTL && out.RefreshTokenTTL > 0 {
		c.fail(field.Invalid(path.Child("accessTokenTTL"), j.AccessTokenTTL, "jwt.accessTokenTTL must be less than jwt.refreshTokenTTL"))
	}
	if out.KeyRotationPeriod < time.Hour && out.KeyRotationPeriod > 0 {
		c.fail(field.Invalid(path.Child("keyRotationPeriod"), j.KeyRotationPeriod, "keyRotationPeriod must be at least 1h"))
	}
	if out.AccessTokenTTL >= out.KeyRotationPeriod && out.KeyRotationPeriod > 0 {
		c.fail(field.Invalid(path.Child("keyRotationPeriod"), j.KeyRotationPeriod, "jwt.keyRotationPeriod must be longer than jwt.accessTokenTTL"))
	}
	if out.ClockSkew > 5*time.Minute {
		c.fail(field.Invalid(path.Child("clockSkew"), j.ClockSkew, "clockSkew must be at most 5m"))
	}
	if j.AccessTokenCookie != nil {
		c.cookieName(path.Child("accessTokenCookie", "name"), j.AccessTokenCookie.Name)
		out.AccessTokenCookie = j.AccessTokenCookie.Name
	}
	out.audiences = c.audiences(path.Child("audiences"), j.Audiences)
	if len(out.audiences) == 0 {
		// A token always names the policy it is for, so one policy's token never passes another.
		out.audiences = []string{c.ref.String()}
	}
	tp := path.Child("trustedIssuers")
	if len(j.TrustedIssuers) > 8 {
		c.fail(field.TooMany(tp, len(j.TrustedIssuers), 8))
	}
	for i, t := range j.TrustedIssuers {
		ip := tp.Index(i)
		ti := TrustedIssuer{
			issuer:    c.url(ip.Child("issuer"), t.Issuer),
			jwksURL:   c.url(ip.Child("jwksURL"), t.JWKSURL),
			audiences: c.audiences(ip.Child("audiences"), t.Audiences),
		}
		if len(ti.audiences) == 0 {
			ti.audiences = out.audiences
		}
		if ti.issuer == out.Issuer && out.Issuer != "" {
			c.fail(field.Invalid(ip.Child("issuer"), t.Issuer, "a trustedIssuers entry cannot repeat jwt.issuer"))
		}
		if _, dup := out.TrustedIssuer(ti.issuer); dup {
			c.fail(field.Duplicate(ip.Child("issuer"), t.Issuer))
		}
		out.trusted = append(out.trusted, ti)
	}
	if out.Issuer == "" && len(out.trusted) == 0 {
		c.fail(field.Required(path.Child("issuer"), "jwt needs an issuer (authgate issues tokens) or at least one trustedIssuers entry, or no token could ever be valid"))
	}
	kp := path.Child("signingKeySecretRef")
	switch {
	case j.SigningKeySecretRef == nil && out.Issuer != "":
		c.fail(field.Required(kp, "jwt.signingKeySecretRef is required when jwt.issuer is set (the operator creates the Secret when it does not exist)"))
	case j.SigningKeySecretRef == nil && j.Algorithm == authgatev1.AlgorithmHS256:
		c.fail(field.Required(kp, "jwt.algorithm HS256 requires jwt.signingKeySecretRef (the shared secret)"))
	case j.SigningKeySecretRef != nil:
		if data, ok := c.secret(kp.Child("name"), j.SigningKeySecretRef); ok {
			keys, errs := parseSigningKeys(kp.Child("name"), j.SigningKeySecretRef.Name, j.Algorithm, data)
			c.unresolved = append(c.unresolved, errs...)
			out.keys = keys
		}
	}
	c.out.jwt = out
}

// secret returns the data of a referenced Secret, recording an unresolved reference when it is absent.
func (c *compiler) secret(path *field.Path, ref *authgatev1.SecretReference) (map[string][]byte, bool) {
	if !isDNSSubdomain(ref.Name) {
		c.fail(field.Invalid(path, ref.Name, "must be a Secret name (lower-case DNS subdomain)"))
		return nil, false
	}
	data, ok := c.secrets[ref.Name]
	if c.specOnly {
		return nil, false
	}
	if !ok {
		c.unresolved = append(c.unresolved, field.NotFound(path, fmt.Sprintf("Secret %s/%s", c.ref.Namespace, ref.Name)))
		return nil, false
	}
	return data, true
}

func (c *compiler) login() {
	l := c.spec.Login
	if l == nil {
		return
	}
	path := specPath.Child("login")
	out := &LoginSettings{}
	if l.URL != "" {
		out.URL = c.url(path.Child("url"), l.URL)
	}
	rp := path.Child("allowedRedirectDomains")
	if len(l.AllowedRedirectDomains) > 32 {
		c.fail(field.TooMany(rp, len(l.AllowedRedirectDomains), 32))
	}
	for i, d := range l.AllowedRedirectDomains {
		if !domainName.MatchString(string(d)) || len(d) > 253 {
			c.fail(field.Invalid(rp.Index(i), d, "must be a lower-case host name, or a domain with a leading dot (.example.com)"))
			continue
		}
		// ".0.0.1" would allow 127.0.0.1 and every other address ending so: addresses are only
		// ever allowed exactly.
		if strings.HasPrefix(string(d), ".") && numericLabel(string(d)[strings.LastIndexByte(string(d), '.')+1:]) {
			c.fail(field.Invalid(rp.Index(i), d, "a domain suffix cannot end in a numeric label (IP addresses are allowed only as exact entries)"))
			continue
		}
		out.redirects = append(out.redirects, string(d))
	}
	if len(l.AllowedRedirectDomains) == 0 {
		// Without a list, browsers may only be sent back to the hosts the policy guards by name.
		for _, h := range c.out.hosts {
			if !h.IsWildcard() {
				out.redirects = append(out.redirects, h.String())
			}
		}
	}
	if l.UsersSecretRef != nil {
		up := path.Child("usersSecretRef", "name")
		if data, ok := c.secret(up, l.UsersSecretRef); ok {
			users, errs := parseUsers(up, l.UsersSecretRef.Name, data)
			c.unresolved = append(c.unresolved, errs...)
			out.users = users
			out.usersByID = make(map[string]string, len(users))
			for email, u := range users {
				out.usersByID[u.ID] = email
				if cost, err := bcrypt.Cost(u.passwordHash); err == nil && cost > out.maxCost {
					out.maxCost = cost
				}
			}
		}
	}
	c.out.login = out
}

// hopByHop are headers an identity header must never be: they frame the message, carry
// credentials, or steer the proxy, so setting them from a claim would break or subvert the request.
var hopByHop = []string{
	"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection", "Te",
	"Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length", "Content-Type", "Cookie",
	"Set-Cookie", "Authorization", "Www-Authenticate", "Location", "Cache-Control",
}

func (c *compiler) identityHeaders() {
	path := specPath.Child("identityHeaders")
	if len(c.spec.IdentityHeaders) > 32 {
		c.fail(field.TooMany(path, len(c.spec.IdentityHeaders), 32))
	}
	seen := map[string]bool{}
	for _, name := range sortedKeys(c.spec.IdentityHeaders) {
		claim := string(c.spec.IdentityHeaders[name])
		hp := path.Key(name)
		if !httpToken.MatchString(name) || len(name) > 64 {
			c.fail(field.Invalid(hp, name, "identity header names must be HTTP header names (letters, digits and !#$%&'*+.^_`|~-), at most 64 characters"))
			continue
		}
		canon := textproto.CanonicalMIMEHeaderKey(name)
		if slices.Contains(hopByHop, canon) {
			c.fail(field.Invalid(hp, name, "identity headers cannot be hop-by-hop, framing or credential headers"))
			continue
		}
		if seen[canon] {
			c.fail(field.Duplicate(hp, name))
			continue
		}
		seen[canon] = true
		if !claimName.MatchString(claim) {
			c.fail(field.Invalid(hp, claim, "must be a claim name of 1 to 128 printable characters without spaces"))
		}
		c.out.headers = append(c.out.headers, IdentityHeader{Name: canon, Claim: claim})
	}
	sort.Slice(c.out.headers, func(i, j int) bool { return c.out.headers[i].Name < c.out.headers[j].Name })
}

// crossChecks are the rules that tie sections together.
func (c *compiler) crossChecks() {
	var session, jwt bool
	for _, r := range c.spec.Rules {
		session = session || r.Mode.UsesSession()
		jwt = jwt || r.Mode.UsesJWT()
	}
	hasUsers := c.spec.Login != nil && c.spec.Login.UsersSecretRef != nil
	if jwt && c.spec.JWT == nil {
		c.fail(field.Required(specPath.Child("jwt"), "spec.jwt is required when a rule uses mode JWT or Either"))
	}
	if session && c.spec.Session == nil {
		c.fail(field.Required(specPath.Child("session"), "spec.session is required when a rule uses mode Session or Either"))
	}
	if session && !hasUsers {
		c.fail(field.Required(specPath.Child("login", "usersSecretRef"), "spec.login.usersSecretRef is required when a rule uses mode Session or Either: sessions are created by authgate's login"))
	}
	if c.spec.JWT != nil && c.spec.JWT.Issuer != "" && !hasUsers {
		c.fail(field.Required(specPath.Child("login", "usersSecretRef"), "spec.login.usersSecretRef is required when spec.jwt.issuer is set: authgate issues tokens only to users it can log in"))
	}
	if c.spec.Session != nil && c.spec.JWT != nil && c.spec.JWT.AccessTokenCookie != nil &&
		c.spec.JWT.AccessTokenCookie.Name == c.spec.Session.Cookie.Name {
		c.fail(field.Invalid(specPath.Child("jwt", "accessTokenCookie", "name"), c.spec.JWT.AccessTokenCookie.Name,
			"spec.jwt.accessTokenCookie.name must differ from spec.session.cookie.name"))
	}
}

func numericLabel(l string) bool {
	for i := 0; i < len(l); i++ {
		if l[i] < '0' || l[i] > '9' {
			return false
		}
	}
	return l != ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
