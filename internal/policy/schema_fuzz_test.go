package policy_test

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
)

// A policy read from a folder never meets the API server: Compile must refuse everything the CRD
// schema refuses. The fuzz target below sets one string field of the fixture policy at a time and,
// whenever the policy still compiles, checks the value against that field's schema as the CRD
// states it (pattern, minLength, maxLength and the field's own CEL rules), read from the CRD file
// itself, so that the test follows the schema as it changes.

// schemaField is a string field of the spec: where its schema lives in the CRD and how to set it.
type schemaField struct {
	// path leads from spec to the field's schema: property names, "[]" for an array's items and
	// "{}" for a map's values.
	path []string
	set  func(p *authgatev1.AuthPolicy, v string)
}

var schemaFields = []schemaField{
	{[]string{"hosts", "[]"}, func(p *authgatev1.AuthPolicy, v string) { p.Spec.Hosts[0] = authgatev1.HostPattern(v) }},
	{[]string{"rules", "[]", "name"}, func(p *authgatev1.AuthPolicy, v string) { p.Spec.Rules[0].Name = v }},
	{[]string{"rules", "[]", "match", "path"}, func(p *authgatev1.AuthPolicy, v string) { p.Spec.Rules[2].Match.Path = v }},
	{[]string{"rules", "[]", "match", "pathPrefix"}, func(p *authgatev1.AuthPolicy, v string) { p.Spec.Rules[0].Match.PathPrefix = v }},
	{[]string{"rules", "[]", "requireRoles", "[]"}, func(p *authgatev1.AuthPolicy, v string) { p.Spec.Rules[1].RequireRoles[0] = authgatev1.Role(v) }},
	{[]string{"session", "ttl"}, func(p *authgatev1.AuthPolicy, v string) { p.Spec.Session.TTL = authgatev1.Duration(v) }},
	{[]string{"session", "refreshThreshold"}, func(p *authgatev1.AuthPolicy, v string) {
		p.Spec.Session.RefreshThreshold = authgatev1.Duration(v)
	}},
	{[]string{"session", "maxLifetime"}, func(p *authgatev1.AuthPolicy, v string) { p.Spec.Session.MaxLifetime = authgatev1.Duration(v) }},
	{[]string{"session", "idleTimeout"}, func(p *authgatev1.AuthPolicy, v string) { p.Spec.Session.IdleTimeout = authgatev1.Duration(v) }},
	{[]string{"session", "cookie", "name"}, func(p *authgatev1.AuthPolicy, v string) { p.Spec.Session.Cookie.Name = v }},
	{[]string{"session", "cookie", "domain"}, func(p *authgatev1.AuthPolicy, v string) { p.Spec.Session.Cookie.Domain = authgatev1.DomainMatch(v) }},
	{[]string{"session", "cookie", "path"}, func(p *authgatev1.AuthPolicy, v string) { p.Spec.Session.Cookie.Path = v }},
	{[]string{"jwt", "issuer"}, func(p *authgatev1.AuthPolicy, v string) { p.Spec.JWT.Issuer = authgatev1.URL(v) }},
	{[]string{"jwt", "audiences", "[]"}, func(p *authgatev1.AuthPolicy, v string) { p.Spec.JWT.Audiences[0] = v }},
	{[]string{"jwt", "accessTokenTTL"}, func(p *authgatev1.AuthPolicy, v string) { p.Spec.JWT.AccessTokenTTL = authgatev1.Duration(v) }},
	{[]string{"jwt", "refreshTokenTTL"}, func(p *authgatev1.AuthPolicy, v string) { p.Spec.JWT.RefreshTokenTTL = authgatev1.Duration(v) }},
	{[]string{"jwt", "keyRotationPeriod"}, func(p *authgatev1.AuthPolicy, v string) {
		p.Spec.JWT.KeyRotationPeriod = authgatev1.Duration(v)
	}},
	{[]string{"jwt", "clockSkew"}, func(p *authgatev1.AuthPolicy, v string) { p.Spec.JWT.ClockSkew = authgatev1.Duration(v) }},
	{[]string{"jwt", "accessTokenCookie", "name"}, func(p *authgatev1.AuthPolicy, v string) {
		p.Spec.JWT.AccessTokenCookie = &authgatev1.TokenCookieConfig{Name: v}
	}},
	{[]string{"jwt", "trustedIssuers", "[]", "issuer"}, func(p *authgatev1.AuthPolicy, v string) {
		p.Spec.JWT.TrustedIssuers[0].Issuer = authgatev1.URL(v)
	}},
	{[]string{"jwt", "trustedIssuers", "[]", "jwksURL"}, func(p *authgatev1.AuthPolicy, v string) {
		p.Spec.JWT.TrustedIssuers[0].JWKSURL = authgatev1.URL(v)
	}},
	{[]string{"jwt", "trustedIssuers", "[]", "audiences", "[]"}, func(p *authgatev1.AuthPolicy, v string) {
		p.Spec.JWT.TrustedIssuers[0].Audiences = []string{v}
	}},
	{[]string{"jwt", "signingKeySecretRef", "name"}, func(p *authgatev1.AuthPolicy, v string) { p.Spec.JWT.SigningKeySecretRef.Name = v }},
	{[]string{"login", "url"}, func(p *authgatev1.AuthPolicy, v string) { p.Spec.Login.URL = authgatev1.URL(v) }},
	{[]string{"login", "usersSecretRef", "name"}, func(p *authgatev1.AuthPolicy, v string) { p.Spec.Login.UsersSecretRef.Name = v }},
	{[]string{"login", "allowedRedirectDomains", "[]"}, func(p *authgatev1.AuthPolicy, v string) {
		p.Spec.Login.AllowedRedirectDomains[1] = authgatev1.DomainMatch(v)
	}},
	{[]string{"identityHeaders", "{}"}, func(p *authgatev1.AuthPolicy, v string) {
		p.Spec.IdentityHeaders["X-User-Id"] = authgatev1.ClaimName(v)
	}},
}

// The rules on the identity headers map are about its keys, which no per-value check sees; they
// are checked by hand, and these must be the CRD's rules word for word.
var (
	headerNameRule = `self.all(h, h.size() <= 64 && h.matches('^[A-Za-z0-9!#$%&\'*+.^_` + "`" + `|~-]+$'))`
	uniqueNameRule = `self.all(h, self.exists_one(o, o.lowerAscii() == h.lowerAscii()))` // one key: always holds
	hopByHopRule   = `self.all(h, !(h.lowerAscii() in ['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length', 'content-type', 'cookie', 'set-cookie', 'authorization', 'www-authenticate', 'location', 'cache-control']))`
	headerToken    = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
	hopByHopNames  = []string{"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
		"transfer-encoding", "upgrade", "host", "content-length", "content-type", "cookie", "set-cookie", "authorization",
		"www-authenticate", "location", "cache-control"}
)

// specSchema reads the schema of spec from the CRD that `make manifests` generates.
func specSchema(t testing.TB) apiextensionsv1.JSONSchemaProps {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "authgate.dev_authpolicies.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(raw, &crd); err != nil {
		t.Fatalf("reading the CRD: %v", err)
	}
	if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Schema == nil {
		t.Fatal("the CRD should have exactly one version, with a schema")
	}
	return crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
}

// fieldSchema follows path from spec. optional reports that the field is a property its object does
// not require: written empty, it is left out of the JSON (omitempty) and takes its default.
func fieldSchema(t testing.TB, spec apiextensionsv1.JSONSchemaProps, path []string) (_ apiextensionsv1.JSONSchemaProps, optional bool) {
	t.Helper()
	s := spec
	for _, step := range path {
		var ok bool
		optional = false
		switch step {
		case "[]":
			ok = s.Items != nil && s.Items.Schema != nil
			if ok {
				s = *s.Items.Schema
			}
		case "{}":
			ok = s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil
			if ok {
				s = *s.AdditionalProperties.Schema
			}
		default:
			optional = !slices.Contains(s.Required, step)
			s, ok = s.Properties[step]
		}
		if !ok {
			t.Fatalf("the CRD has no schema at spec.%s", strings.Join(path, "."))
		}
	}
	if s.Type != "string" {
		t.Fatalf("spec.%s is a %s, not a string", strings.Join(path, "."), s.Type)
	}
	return s, optional
}

// celString unescapes the body of a single-quoted CEL string literal.
func celString(s string) string {
	return strings.NewReplacer(`\\`, `\`, `\'`, `'`).Replace(s)
}

var (
	celMatches  = regexp.MustCompile(`^(!?)self\.matches\('((?:[^'\\]|\\.)*)'\)$`)
	celDuration = regexp.MustCompile(`^!self\.matches\('((?:[^'\\]|\\.)*)'\) \|\| duration\(self\) (<|<=|>|>=) duration\('([0-9a-z.]+)'\)$`)
	celPathDots = `!self.matches('/\\.+(/|$)')`
	celURL      = `isURL(self) && url(self).getScheme() in ['http', 'https'] && size(url(self).getHostname()) > 0`
)

// celRule turns one CEL rule about a string (self) into Go. Rules it does not know fail the test:
// a new kind of rule needs a line here.
func celRule(t testing.TB, rule string) func(string) bool {
	t.Helper()
	rule = strings.Join(strings.Fields(rule), " ")
	if rule == celURL {
		return func(v string) bool {
			// The Kubernetes CEL library's isURL and url() parse with url.ParseRequestURI.
			u, err := url.ParseRequestURI(v)
			return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != ""
		}
	}
	if rule == celPathDots {
		re := regexp.MustCompile(`/\.+(/|$)`)
		return func(v string) bool { return !re.MatchString(v) }
	}
	if m := celDuration.FindStringSubmatch(rule); m != nil {
		re, op := regexp.MustCompile(celString(m[1])), m[2]
		bound, err := time.ParseDuration(m[3])
		if err != nil {
			t.Fatalf("rule %s: %v", rule, err)
		}
		return func(v string) bool {
			if !re.MatchString(v) {
				return true
			}
			d, err := time.ParseDuration(v)
			if err != nil {
				return false // CEL's duration() fails too, and a failing rule refuses
			}
			switch op {
			case "<":
				return d < bound
			case "<=":
				return d <= bound
			case ">":
				return d > bound
			default:
				return d >= bound
			}
		}
	}
	if m := celMatches.FindStringSubmatch(rule); m != nil {
		re, negated := regexp.MustCompile(celString(m[2])), m[1] == "!"
		return func(v string) bool { return re.MatchString(v) != negated }
	}
	t.Fatalf("no Go version of the CEL rule %q: add one to celRule", rule)
	return nil
}

// schemaCheck returns a function that says why the schema refuses a value, or "" when it accepts it.
func schemaCheck(t testing.TB, s apiextensionsv1.JSONSchemaProps) func(string) string {
	t.Helper()
	var checks []func(string) string
	if s.Pattern != "" {
		re := regexp.MustCompile(s.Pattern)
		checks = append(checks, func(v string) string {
			if !re.MatchString(v) {
				return "does not match " + s.Pattern
			}
			return ""
		})
	}
	// OpenAPI lengths count characters, not bytes.
	if s.MaxLength != nil {
		checks = append(checks, func(v string) string {
			if n := utf8.RuneCountInString(v); int64(n) > *s.MaxLength {
				return fmt.Sprintf("has %d characters, more than maxLength %d", n, *s.MaxLength)
			}
			return ""
		})
	}
	if s.MinLength != nil {
		checks = append(checks, func(v string) string {
			if n := utf8.RuneCountInString(v); int64(n) < *s.MinLength {
				return fmt.Sprintf("has %d characters, fewer than minLength %d", n, *s.MinLength)
			}
			return ""
		})
	}
	for _, r := range s.XValidations {
		ok := celRule(t, r.Rule)
		checks = append(checks, func(v string) string {
			if !ok(v) {
				return "fails the rule " + r.Rule + " (" + r.Message + ")"
			}
			return ""
		})
	}
	return func(v string) string {
		for _, c := range checks {
			if why := c(v); why != "" {
				return why
			}
		}
		return ""
	}
}

// headerKeyCheck checks an identity header name against the map's rules.
func headerKeyCheck(t testing.TB, spec apiextensionsv1.JSONSchemaProps) func(string) string {
	t.Helper()
	var rules []string
	for _, r := range spec.Properties["identityHeaders"].XValidations {
		rules = append(rules, strings.Join(strings.Fields(r.Rule), " "))
	}
	if !slices.Equal(rules, []string{headerNameRule, hopByHopRule, uniqueNameRule}) {
		t.Fatalf("the rules of spec.identityHeaders changed; update headerKeyCheck:\n%q", rules)
	}
	return func(h string) string {
		if len(h) > 64 || !headerToken.MatchString(h) {
			return "fails " + headerNameRule
		}
		if slices.Contains(hopByHopNames, strings.ToLower(h)) {
			return "fails " + hopByHopRule
		}
		return ""
	}
}

// FuzzSpecFieldAgreesWithSchema sets one string field of the fixture policy (field selects which;
// the last choice is an identity header's name) and checks that Compile never accepts a value the
// CRD schema refuses, and that a refused value is a spec problem (CompileError.Invalid).
func FuzzSpecFieldAgreesWithSchema(f *testing.F) {
	spec := specSchema(f)
	checks := make([]func(string) string, len(schemaFields)+1)
	optional := make([]bool, len(schemaFields)+1)
	for i, sf := range schemaFields {
		var s apiextensionsv1.JSONSchemaProps
		s, optional[i] = fieldSchema(f, spec, sf.path)
		checks[i] = schemaCheck(f, s)
	}
	checks[len(schemaFields)] = headerKeyCheck(f, spec)
	name := func(i int) string {
		if i == len(schemaFields) {
			return "identityHeaders key"
		}
		return "spec." + strings.Join(schemaFields[i].path, ".")
	}

	seeds := map[string][]string{
		"duration": {"0", "0s", "1h", "1.5h", "+1h", "-1h", ".5h", "1h.", "1µs", "1us", "90", "25h", "59m", "6m", "1h0m0s",
			strings.Repeat("0", 31) + "1s", "9999999999999999h"},
		"url": {"https://auth.example.com", "https://auth.example.com/#x", "http://[::1]:8080", "https://", "ftp://x", "//x",
			"https://a b", "https://u:p@x/", "http://x?y"},
		"path": {"/", "/a/../b", "/a/.../b", "/a b", "/a%20b", "/ä", "/a;b", "/a\\b", "//", "/" + strings.Repeat("a/", 512)},
		"name": {"", "x", "shop", "a_b.example.com", "[::1]", "::1", "*.example.com", "*", "A.example.com", "-admin", "a b",
			"a\x00b", ".example.com", "example.com.", strings.Repeat("a", 64), strings.Repeat("é", 40), "X-User", "Cookie",
			"__Host-x", "shop-users", "Shop-Users", "*." + strings.Repeat("abcdefgh.", 28) + "com", strings.Repeat("abcdefgh.", 28) + "com"},
	}
	for i := range checks {
		kind := "name"
		switch n := name(i); {
		case strings.Contains(n, "TTL") || strings.HasSuffix(n, "Threshold") || strings.HasSuffix(n, "Lifetime") ||
			strings.HasSuffix(n, "Timeout") || strings.HasSuffix(n, "Period") || strings.HasSuffix(n, "Skew"):
			kind = "duration"
		case strings.HasSuffix(n, "issuer") || strings.HasSuffix(n, "URL") || strings.HasSuffix(n, "url"):
			kind = "url"
		case strings.Contains(n, "match.path") || strings.HasSuffix(n, "cookie.path"):
			kind = "path"
		}
		for _, v := range seeds[kind] {
			f.Add(uint8(i), v)
		}
	}
	secrets := fixture.Secrets()
	f.Fuzz(func(t *testing.T, field uint8, v string) {
		i := int(field) % len(checks)
		if v == "" && optional[i] {
			return // absent, not empty: the default applies
		}
		p := fixture.AuthPolicy()
		if i == len(schemaFields) {
			p.Spec.IdentityHeaders = map[string]authgatev1.ClaimName{v: "sub"}
		} else {
			schemaFields[i].set(p, v)
		}
		_, err := policy.Compile(p, secrets)
		if err == nil {
			checked := v
			if strings.HasPrefix(name(i), "spec.rules.[].match.path") {
				// The CRD's pattern refuses white space, spaces included, yet the API docs and the
				// path normalization say to write a path with a space decoded ("/files/a b"): a
				// known disagreement of the schema with the docs, left to the schema's owners.
				checked = strings.ReplaceAll(v, " ", "_")
			}
			if why := checks[i](checked); why != "" {
				t.Fatalf("Compile accepts %s = %q, which the CRD refuses: it %s", name(i), v, why)
			}
			return
		}
		var ce *policy.CompileError
		if !errors.As(err, &ce) {
			t.Fatalf("%s = %q: error %v is not a CompileError", name(i), v, err)
		}
		if len(ce.Invalid) == 0 && len(ce.Unresolved) == 0 {
			t.Fatalf("%s = %q: a CompileError without problems", name(i), v)
		}
		if len(ce.Invalid) == 0 && !strings.HasSuffix(name(i), "SecretRef.name") {
			t.Fatalf("%s = %q: refused only as an unresolved Secret: %v", name(i), v, err)
		}
	})
}
