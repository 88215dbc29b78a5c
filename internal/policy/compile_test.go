package policy_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"maps"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/source"
)

func compileFixture(t *testing.T, mutate func(p *authgatev1.AuthPolicy), secrets map[string]map[string][]byte) (*policy.Policy, error) {
	t.Helper()
	p := fixture.AuthPolicy()
	if mutate != nil {
		mutate(p)
	}
	if secrets == nil {
		secrets = fixture.Secrets()
	}
	return policy.Compile(p, secrets)
}

func TestCompileFixture(t *testing.T) {
	p := fixture.AuthPolicy()
	before := p.DeepCopy()
	got, err := policy.Compile(p, fixture.Secrets())
	if err != nil {
		t.Fatalf("the fixture policy does not compile: %v", err)
	}
	if !equality.Semantic.DeepEqual(before, p) {
		t.Fatal("Compile modified its input")
	}
	if got.Ref().String() != "shop/shop" {
		t.Errorf("ref = %s", got.Ref())
	}
	var rules []string
	for r := range got.Rules() {
		rules = append(rules, r.Name()+":"+string(r.Mode()))
	}
	if want := []string{"assets:Public", "api:JWT", "health:Public", "app:Session"}; !slices.Equal(rules, want) {
		t.Errorf("rules = %v, want %v", rules, want)
	}
	s, ok := got.Session()
	if !ok {
		t.Fatal("no session settings")
	}
	wantSession := policy.SessionSettings{
		CookieName: "shop_session", CookieDomain: ".example.com", CookiePath: "/", SameSite: http.SameSiteLaxMode,
		Secure: true, TTL: 168 * time.Hour, RefreshThreshold: 24 * time.Hour, MaxLifetime: 720 * time.Hour, IdleTimeout: 2 * time.Hour,
	}
	if s != wantSession {
		t.Errorf("session = %+v\nwant      %+v", s, wantSession)
	}
	j := got.JWT()
	if j.Issuer != "https://auth.example.com" || j.Algorithm != authgatev1.AlgorithmES256 || j.AccessTokenTTL != 15*time.Minute ||
		j.RefreshTokenTTL != 168*time.Hour || !j.RefreshTokenRotation || j.KeyRotationPeriod != 720*time.Hour || j.ClockSkew != 30*time.Second {
		t.Errorf("jwt = %+v", j)
	}
	if !j.AcceptsAudience([]string{"other", "shop"}) || j.AcceptsAudience([]string{"shop/shop"}) {
		t.Error("audiences: want exactly [shop]")
	}
	ti, ok := j.TrustedIssuer("https://idp.example.com")
	if !ok || ti.JWKSURL() != "https://idp.example.com/.well-known/jwks.json" || !ti.AcceptsAudience([]string{"shop"}) {
		t.Errorf("trusted issuer = %+v, %v (its audiences default to the policy's)", ti, ok)
	}
	if k := j.Keys().Active(); k.ID() != "fixture-1" || k.Algorithm() != authgatev1.AlgorithmES256 || k.Signer() == nil || k.Secret() != nil {
		t.Errorf("active key = %+v", k)
	}
	var headers []string
	for h := range got.IdentityHeaders() {
		headers = append(headers, h.Name+"="+h.Claim)
	}
	if want := []string{"X-User-Email=email", "X-User-Id=sub", "X-User-Role=roles"}; !slices.Equal(headers, want) {
		t.Errorf("identity headers = %v, want %v", headers, want)
	}
	l := got.Login()
	if l.URL != "https://auth.example.com/auth/login" || l.Users() != 2 {
		t.Errorf("login = %+v", l)
	}
	u, ok := l.User("Admin@Example.com")
	if !ok || u.Email != "admin@example.com" || u.ID != "admin@example.com" || !slices.Equal(u.Roles(), []string{"admin", "editor"}) {
		t.Errorf("user lookup is not case-insensitive or lost roles: %+v %v", u, ok)
	}
	if byID, ok := l.UserByID("admin@example.com"); !ok || byID.Email != "admin@example.com" {
		t.Errorf("UserByID did not find the user by its default id")
	}
	if _, ok := l.UserByID("nobody"); ok {
		t.Error("UserByID found an unknown id")
	}
	u.Roles()[0] = "changed"
	if again, _ := l.User("admin@example.com"); again.Roles()[0] != "admin" {
		t.Error("a caller changed the compiled policy through User().Roles()")
	}
	if got.OnStoreUnavailable() != authgatev1.StoreUnavailableDeny {
		t.Errorf("onStoreUnavailable = %s", got.OnStoreUnavailable())
	}
}

func TestCompileDefaultsAudienceToThePolicy(t *testing.T) {
	got, err := compileFixture(t, func(p *authgatev1.AuthPolicy) {
		p.Spec.JWT.Audiences = nil
		p.Spec.JWT.TrustedIssuers[0].Audiences = nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !got.JWT().AcceptsAudience([]string{"shop/shop"}) || got.JWT().AcceptsAudience([]string{"other/shop"}) {
		t.Error("without audiences a token must name <namespace>/<name> of its policy")
	}
}

func TestCompileRefusesIPSuffixes(t *testing.T) {
	_, err := compileFixture(t, func(p *authgatev1.AuthPolicy) {
		p.Spec.Login.AllowedRedirectDomains = []authgatev1.DomainMatch{"127.0.0.1", ".0.0.1"}
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "spec.login.allowedRedirectDomains[1]") || strings.Contains(err.Error(), "allowedRedirectDomains[0]") {
		t.Fatalf("error %v: want only the suffix .0.0.1 refused", err)
	}
}

func TestCompileRedirectDomains(t *testing.T) {
	got, err := compileFixture(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		"example.com": true, "shop.example.com": true, "a.b.example.com": true, "shop.example.org": true,
		"evilexample.com": false, "example.com.evil.net": false, "a.shop.example.org": false, "": false,
	}
	for host, want := range cases {
		if got.Login().RedirectHostAllowed(host) != want {
			t.Errorf("RedirectHostAllowed(%q) = %v, want %v", host, !want, want)
		}
	}
	// Without allowedRedirectDomains only the exact hosts of the policy are allowed.
	got, err = compileFixture(t, func(p *authgatev1.AuthPolicy) { p.Spec.Login.AllowedRedirectDomains = nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{"shop.example.com": true, "a.shop.example.com": false, "example.com": false} {
		if got.Login().RedirectHostAllowed(host) != want {
			t.Errorf("without a list, RedirectHostAllowed(%q) = %v, want %v", host, !want, want)
		}
	}
}

// TestCompileRefusesWhatTheSchemaRefuses runs the table the API server tests run: a policy the CRD
// refuses must not compile either, since standalone mode has no API server in front of Compile.
func TestCompileRefusesWhatTheSchemaRefuses(t *testing.T) {
	for _, tc := range fixture.InvalidAuthPolicies() {
		t.Run(tc.Name, func(t *testing.T) {
			_, err := compileFixture(t, tc.Mutate, nil)
			var ce *policy.CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("Compile accepted the policy or failed oddly (%v); want a CompileError mentioning %q", err, tc.Compile)
			}
			if len(ce.Invalid) == 0 {
				t.Fatalf("the problem was not reported as a spec problem: %v", err)
			}
			if !strings.Contains(ce.Invalid.ToAggregate().Error(), tc.Compile) {
				t.Errorf("error does not mention %q:\n%v", tc.Compile, err)
			}
		})
	}
}

func TestCompileSecretProblems(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	users := func(yaml string) map[string][]byte { return map[string][]byte{"users.yaml": []byte(yaml)} }
	keys := func(kv ...string) map[string][]byte {
		m := map[string][]byte{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = []byte(kv[i+1])
		}
		return m
	}
	validHash := string(fixture.Secrets()["shop-users"]["users.yaml"])
	validHash = validHash[strings.Index(validHash, "$2"):]
	validHash = validHash[:strings.Index(validHash, "\n")]
	lowCost := "$2a$04$abcdefghijklmnopqrstuu5W0fFdpqHgU4bAa7OVEHcm1bbb2hV0u"

	cases := map[string]struct {
		mutate  func(p *authgatev1.AuthPolicy)
		secrets func(s map[string]map[string][]byte)
		want    string
		missing bool
	}{
		"users Secret missing": {
			secrets: func(s map[string]map[string][]byte) { delete(s, "shop-users") },
			want:    "spec.login.usersSecretRef.name: Not found: \"Secret shop/shop-users\"", missing: true,
		},
		"key Secret missing": {
			secrets: func(s map[string]map[string][]byte) { delete(s, "shop-jwt-keys") },
			want:    "spec.jwt.signingKeySecretRef.name: Not found: \"Secret shop/shop-jwt-keys\"", missing: true,
		},
		"users key missing": {
			secrets: func(s map[string]map[string][]byte) { s["shop-users"] = map[string][]byte{"users": nil} },
			want:    `Secret shop-users has no key "users.yaml" listing the users`,
		},
		"users not YAML": {
			secrets: func(s map[string]map[string][]byte) { s["shop-users"] = users("email: [") },
			want:    "spec.login.usersSecretRef.name[shop-users].data[users.yaml]: Invalid value: \"(users)\": does not parse as a YAML list of users",
		},
		"users with a typo": {
			secrets: func(s map[string]map[string][]byte) {
				s["shop-users"] = users("- email: a@example.com\n  passwordhash: " + validHash + "\n")
			},
			want: `unknown field "[0].passwordhash"`,
		},
		"user without email": {
			secrets: func(s map[string]map[string][]byte) { s["shop-users"] = users("- passwordHash: " + validHash + "\n") },
			want:    "data[users.yaml][0].email: Invalid value",
		},
		"user with a display name in email": {
			secrets: func(s map[string]map[string][]byte) {
				s["shop-users"] = users("- email: 'Admin <admin@example.com>'\n  passwordHash: " + validHash + "\n")
			},
			want: "data[users.yaml][0].email: Invalid value",
		},
		"user twice": {
			secrets: func(s map[string]map[string][]byte) {
				s["shop-users"] = users("- {email: a@example.com, passwordHash: '" + validHash + "'}\n- {email: A@example.com, passwordHash: '" + validHash + "'}\n")
			},
			want: "data[users.yaml][1].email: Duplicate value",
		},
		"user id twice": {
			secrets: func(s map[string]map[string][]byte) {
				s["shop-users"] = users("- {id: u1, email: a@example.com, passwordHash: '" + validHash + "'}\n- {id: u1, email: b@example.com, passwordHash: '" + validHash + "'}\n")
			},
			want: "data[users.yaml][1].id: Duplicate value: \"u1\"",
		},
		"user id with a space": {
			secrets: func(s map[string]map[string][]byte) {
				s["shop-users"] = users("- {id: 'u 1', email: a@example.com, passwordHash: '" + validHash + "'}\n")
			},
			want: "data[users.yaml][0].id: Invalid value",
		},
		"password in clear": {
			secrets: func(s map[string]map[string][]byte) {
				s["shop-users"] = users("- {email: a@example.com, passwordHash: hunter2hunter2}\n")
			},
			want: "data[users.yaml][0].passwordHash: Invalid value: \"(hidden)\": is not a bcrypt hash",
		},
		"weak bcrypt cost": {
			secrets: func(s map[string]map[string][]byte) {
				s["shop-users"] = users("- {email: a@example.com, passwordHash: '" + lowCost + "'}\n")
			},
			want: "bcrypt cost 4 is below the minimum 10",
		},
		"key of another algorithm": {
			secrets: func(s map[string]map[string][]byte) {
				s["shop-jwt-keys"] = keys("k1.key.pem", string(fixture.PrivateKeyPEM(rsaKey)))
			},
			want: "data[k1.key.pem]: Invalid value: \"(key material hidden)\": is an RSA key, which does not suit algorithm ES256",
		},
		"short RSA key": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.JWT.Algorithm = authgatev1.AlgorithmRS256 },
			secrets: func(s map[string]map[string][]byte) {
				s["shop-jwt-keys"] = keys("k1.key.pem", string(fixture.PrivateKeyPEM(smallRSA)))
			},
			want: "is a 1024-bit RSA key: RS256 needs at least 2048 bits",
		},
		"Ed25519 key for ES256": {
			secrets: func(s map[string]map[string][]byte) {
				s["shop-jwt-keys"] = keys("k1.key.pem", string(fixture.PrivateKeyPEM(edKey)))
			},
			want: "is an Ed25519 key, which does not suit algorithm ES256",
		},
		"not PEM": {
			secrets: func(s map[string]map[string][]byte) { s["shop-jwt-keys"] = keys("k1.key.pem", "-----BEGIN nothing") },
			want:    "data[k1.key.pem]: Invalid value: \"(key material hidden)\": is not PEM",
		},
		"public key where a private key belongs": {
			secrets: func(s map[string]map[string][]byte) {
				s["shop-jwt-keys"] = keys("k1.key.pem", string(fixture.PublicKeyPEM(fixture.ES256Key().Public())))
			},
			want: `PEM block "PUBLIC KEY" is not a private key`,
		},
		"two keys and no active-kid": {
			secrets: func(s map[string]map[string][]byte) {
				s["shop-jwt-keys"] = keys("k1.key.pem", string(fixture.PrivateKeyPEM(fixture.ES256Key())), "k2.key.pem", string(fixture.PrivateKeyPEM(fixture.ES256Key())))
			},
			want: `Secret shop-jwt-keys holds 2 signing keys: name the one that signs in "active-kid"`,
		},
		"active-kid naming no key": {
			secrets: func(s map[string]map[string][]byte) {
				s["shop-jwt-keys"] = keys("active-kid", "k9", "k1.key.pem", string(fixture.PrivateKeyPEM(fixture.ES256Key())))
			},
			want: "data[active-kid]: Invalid value: \"k9\": names no key of this Secret",
		},
		"no key at all": {
			secrets: func(s map[string]map[string][]byte) { s["shop-jwt-keys"] = keys() },
			want:    "Secret shop-jwt-keys holds no signing key",
		},
		"unexpected entry": {
			secrets: func(s map[string]map[string][]byte) {
				s["shop-jwt-keys"] = keys("k1.key.pem", string(fixture.PrivateKeyPEM(fixture.ES256Key())), "notes.txt", "x")
			},
			want: "data[notes.txt]: Invalid value: \"(key material hidden)\": unexpected key for algorithm ES256",
		},
		"bad kid": {
			secrets: func(s map[string]map[string][]byte) {
				s["shop-jwt-keys"] = keys("../k1.key.pem", string(fixture.PrivateKeyPEM(fixture.ES256Key())))
			},
			want: "the kid before .key.pem must be 1 to 64 characters",
		},
		"short HS256 secret": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.JWT.Algorithm = authgatev1.AlgorithmHS256 },
			secrets: func(s map[string]map[string][]byte) {
				s["shop-jwt-keys"] = keys("k1.secret", "too-short")
			},
			want: "an HS256 secret must be at least 32 bytes, this one has 9",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			secrets := maps.Clone(fixture.Secrets())
			if tc.secrets != nil {
				tc.secrets(secrets)
			}
			_, err := compileFixture(t, tc.mutate, secrets)
			var ce *policy.CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("Compile = %v, want a CompileError mentioning %q", err, tc.want)
			}
			if len(ce.Invalid) != 0 {
				t.Errorf("a Secret problem was reported as a spec problem: %v", ce.Invalid)
			}
			if !strings.Contains(ce.Unresolved.ToAggregate().Error(), tc.want) {
				t.Errorf("error does not mention %q:\n%v", tc.want, err)
			}
			if ce.MissingSecrets() != tc.missing {
				t.Errorf("MissingSecrets() = %v, want %v", ce.MissingSecrets(), tc.missing)
			}
			if strings.Contains(err.Error(), "BEGIN") || strings.Contains(err.Error(), validHash) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error leaks secret material: %v", err)
			}
		})
	}
}

func TestCompileKeyRotationSet(t *testing.T) {
	k1, k2, old := fixture.ES256Key(), fixture.ES256Key(), fixture.ES256Key()
	secrets := maps.Clone(fixture.Secrets())
	secrets["shop-jwt-keys"] = map[string][]byte{
		"active-kid":     []byte("k2\n"),
		"k1.key.pem":     fixture.PrivateKeyPEM(k1),
		"k2.key.pem":     fixture.PrivateKeyPEM(k2),
		"k0.pub.pem":     fixture.PublicKeyPEM(old.Public()),
		"k0-old.pub.pem": fixture.PublicKeyPEM(fixture.ES256Key().Public()),
	}
	got, err := compileFixture(t, nil, secrets)
	if err != nil {
		t.Fatal(err)
	}
	keys := got.JWT().Keys()
	if keys.Active().ID() != "k2" {
		t.Errorf("active = %s, want k2 (active-kid, trimmed)", keys.Active().ID())
	}
	var ids []string
	for v := range keys.Verifiers() {
		ids = append(ids, v.ID())
	}
	if want := []string{"k2", "k1", "k0", "k0-old"}; !slices.Equal(ids, want) {
		t.Errorf("verifiers = %v, want %v", ids, want)
	}
	v, ok := keys.Verifier("k0")
	if !ok || !reflect.DeepEqual(v.Public(), old.Public()) {
		t.Errorf("retired key k0 does not verify with its public key")
	}
	if _, ok := keys.Verifier("k9"); ok {
		t.Error("an unknown kid verified")
	}
}

func TestCompileHS256(t *testing.T) {
	secrets := maps.Clone(fixture.Secrets())
	secret := strings.Repeat("s", 32)
	secrets["shop-jwt-keys"] = map[string][]byte{"h1.secret": []byte(secret)}
	got, err := compileFixture(t, func(p *authgatev1.AuthPolicy) { p.Spec.JWT.Algorithm = authgatev1.AlgorithmHS256 }, secrets)
	if err != nil {
		t.Fatal(err)
	}
	k := got.JWT().Keys().Active()
	if k.ID() != "h1" || string(k.Secret()) != secret || k.Signer() != nil {
		t.Errorf("HS256 key = %+v", k)
	}
	k.Secret()[0] = 'x'
	if string(got.JWT().Keys().Active().Secret()) != secret {
		t.Error("a caller changed the compiled secret")
	}
}

func TestCompileAppliesDefaultsLikeTheSchema(t *testing.T) {
	p := &authgatev1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "minimal", Namespace: "default"},
		Spec: authgatev1.AuthPolicySpec{
			Rules:   []authgatev1.Rule{{Name: "app", Mode: authgatev1.ModeSession}},
			Session: &authgatev1.SessionConfig{},
			Login:   &authgatev1.LoginConfig{UsersSecretRef: &authgatev1.SecretReference{Name: "shop-users"}},
		},
	}
	got, err := policy.Compile(p, fixture.Secrets())
	if err != nil {
		t.Fatal(err)
	}
	s, _ := got.Session()
	want := policy.SessionSettings{CookieName: "authgate_session", CookiePath: "/", SameSite: http.SameSiteLaxMode, Secure: true,
		TTL: 168 * time.Hour, RefreshThreshold: 24 * time.Hour, MaxLifetime: 720 * time.Hour}
	if s != want {
		t.Errorf("defaulted session = %+v\nwant %+v", s, want)
	}
	if got.OnStoreUnavailable() != authgatev1.StoreUnavailableDeny {
		t.Errorf("onStoreUnavailable = %q", got.OnStoreUnavailable())
	}
}

// TestSamplesCompile compiles every sample in config/samples with the Secrets beside it, so that the
// samples later issues run are known to work.
func TestSamplesCompile(t *testing.T) {
	m, err := source.ReadDir(filepath.Join("..", "..", "config", "samples"), "default")
	if err != nil {
		t.Fatal(err)
	}
	modes := map[authgatev1.Mode]bool{}
	var compiled []*policy.Policy
	for _, p := range m.Policies {
		c, err := policy.Compile(p, m.SecretData(p.Namespace))
		if err != nil {
			t.Errorf("sample %s: %v", p.Name, err)
			continue
		}
		compiled = append(compiled, c)
		for r := range c.Rules() {
			modes[r.Mode()] = true
		}
	}
	for _, mode := range []authgatev1.Mode{authgatev1.ModeSession, authgatev1.ModeJWT, authgatev1.ModeEither, authgatev1.ModePublic} {
		if !modes[mode] {
			t.Errorf("no sample uses mode %s", mode)
		}
	}
	algs := map[authgatev1.Algorithm]bool{}
	for _, c := range compiled {
		if c.JWT() != nil && c.JWT().Keys() != nil {
			algs[c.JWT().Keys().Active().Algorithm()] = true
		}
	}
	if len(algs) < 3 {
		t.Errorf("samples sign with %v; want ES256, EdDSA and RS256 covered", algs)
	}
	// Every sample claims hosts of its own, so the set routes without conflicts.
	snap := policy.NewSnapshot(compiled)
	for _, c := range compiled {
		for h := range c.Hosts() {
			host := strings.TrimPrefix(h.String(), "*.")
			if h.IsWildcard() {
				host = "x." + host
			}
			p, _, ok := snap.Route(host, "GET", "/")
			if ok && p != c {
				t.Errorf("host %s routes to %s, want %s", host, p.Ref(), c.Ref())
			}
		}
	}
}

// TestCompileRefusesWhatTheSchemaPatternsRefuse holds the values FuzzSpecFieldAgreesWithSchema
// found: the CRD refuses them, and Compile used to accept them because time.ParseDuration,
// ParseHostPattern and the path matchers are laxer than the schema's patterns and lengths.
func TestCompileRefusesWhatTheSchemaPatternsRefuse(t *testing.T) {
	cases := map[string]struct {
		mutate func(p *authgatev1.AuthPolicy)
		field  string
	}{
		"duration with a sign":             {func(p *authgatev1.AuthPolicy) { p.Spec.JWT.AccessTokenTTL = "+1h" }, "spec.jwt.accessTokenTTL"},
		"duration without a leading digit": {func(p *authgatev1.AuthPolicy) { p.Spec.Session.RefreshThreshold = ".5h" }, "spec.session.refreshThreshold"},
		"duration in µs":                   {func(p *authgatev1.AuthPolicy) { p.Spec.JWT.ClockSkew = "1µs" }, "spec.jwt.clockSkew"},
		"duration without a unit":          {func(p *authgatev1.AuthPolicy) { p.Spec.Session.IdleTimeout = "0" }, "spec.session.idleTimeout"},
		"duration of 33 characters": {func(p *authgatev1.AuthPolicy) {
			p.Spec.JWT.ClockSkew = authgatev1.Duration(strings.Repeat("0", 31) + "1s")
		}, "spec.jwt.clockSkew"},
		"host with an underscore":   {func(p *authgatev1.AuthPolicy) { p.Spec.Hosts[0] = "a_b.example.com" }, "spec.hosts[0]"},
		"host starting with a dash": {func(p *authgatev1.AuthPolicy) { p.Spec.Hosts[0] = "-admin" }, "spec.hosts[0]"},
		"IPv6 host":                 {func(p *authgatev1.AuthPolicy) { p.Spec.Hosts[0] = "::1" }, "spec.hosts[0]"},
		"wildcard of 255 characters": {func(p *authgatev1.AuthPolicy) {
			p.Spec.Hosts[1] = authgatev1.HostPattern("*." + strings.Repeat("abcdefgh.", 28) + "com")
		}, "spec.hosts[1]"},
		"path of 1025 characters": {func(p *authgatev1.AuthPolicy) {
			p.Spec.Rules[2].Match.Path = "/" + strings.Repeat("a/", 512)
		}, "spec.rules[2].match.path"},
		"path prefix of 1025 characters": {func(p *authgatev1.AuthPolicy) {
			p.Spec.Rules[0].Match.PathPrefix = "/" + strings.Repeat("é/", 512)
		}, "spec.rules[0].match.pathPrefix"},
		"cookie domain of 255 characters": {func(p *authgatev1.AuthPolicy) {
			p.Spec.Session.Cookie.Domain = authgatev1.DomainMatch(strings.Repeat("abcdefgh.", 28) + "com")
		}, "spec.session.cookie.domain"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := compileFixture(t, tc.mutate, nil)
			var ce *policy.CompileError
			if !errors.As(err, &ce) || len(ce.Invalid) == 0 {
				t.Fatalf("Compile: %v; want a spec problem at %s", err, tc.field)
			}
			if !strings.Contains(ce.Invalid.ToAggregate().Error(), tc.field) {
				t.Errorf("error does not name %s:\n%v", tc.field, err)
			}
		})
	}
	// A path of 1024 characters, some of them two bytes long, is within the schema's limit.
	if _, err := compileFixture(t, func(p *authgatev1.AuthPolicy) { p.Spec.Rules[2].Match.Path = "/" + strings.Repeat("é", 1023) }, nil); err != nil {
		t.Errorf("a path of 1024 characters: %v", err)
	}
}
