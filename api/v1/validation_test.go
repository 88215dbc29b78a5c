package v1_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	authgatev1 "github.com/authgate/authgate/api/v1"
)

// k8s is a client of the real API server that TestMain starts with the AuthPolicy CRD installed.
var k8s client.Client

func TestMain(m *testing.M) {
	os.Exit(runWithAPIServer(m))
}

func runWithAPIServer(m *testing.M) int {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run the tests with `make test`, or export KUBEBUILDER_ASSETS=$(make -s envtest)")
		return 1
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "Starting kube-apiserver and etcd from %s: %v\n", assets, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "Stopping the API server: %v\n", err)
		}
	}()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := authgatev1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintf(os.Stderr, "Creating a client: %v\n", err)
		return 1
	}
	return m.Run()
}

// namespace creates a namespace of its own for one test.
func namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "crd-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	return ns.Name
}

// validPolicy returns a policy that uses every section, so that each invalid case below differs
// from an accepted object by the one mistake it names.
func validPolicy() *authgatev1.AuthPolicy {
	return &authgatev1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "shop"},
		Spec: authgatev1.AuthPolicySpec{
			Hosts: []authgatev1.HostPattern{"shop.example.com", "*.shop.example.com"},
			Rules: []authgatev1.Rule{
				{Name: "assets", Match: authgatev1.RouteMatch{PathPrefix: "/static/"}, Mode: authgatev1.ModePublic},
				{Name: "api", Match: authgatev1.RouteMatch{PathPrefix: "/api/", Methods: []authgatev1.HTTPMethod{"GET", "POST"}},
					Mode: authgatev1.ModeJWT, RequireRoles: []authgatev1.Role{"admin", "editor"}},
				{Name: "health", Match: authgatev1.RouteMatch{Path: "/healthz"}, Mode: authgatev1.ModePublic},
				{Name: "app", Match: authgatev1.RouteMatch{PathPrefix: "/"}, Mode: authgatev1.ModeSession},
			},
			Session: &authgatev1.SessionConfig{
				Cookie: authgatev1.CookieConfig{Name: "shop_session", Domain: ".example.com", SameSite: authgatev1.SameSiteLax},
				TTL:    "168h", RefreshThreshold: "24h", MaxLifetime: "720h", IdleTimeout: "2h",
			},
			JWT: &authgatev1.JWTConfig{
				Issuer:              "https://auth.example.com",
				Audiences:           []string{"shop"},
				Algorithm:           authgatev1.AlgorithmES256,
				SigningKeySecretRef: &authgatev1.SecretReference{Name: "shop-jwt-keys"},
				AccessTokenTTL:      "15m",
				RefreshTokenTTL:     "168h",
				TrustedIssuers: []authgatev1.TrustedIssuer{{
					Issuer: "https://idp.example.com", JWKSURL: "https://idp.example.com/.well-known/jwks.json",
				}},
			},
			Login: &authgatev1.LoginConfig{
				UsersSecretRef:         &authgatev1.SecretReference{Name: "shop-users"},
				URL:                    "https://auth.example.com/auth/login",
				AllowedRedirectDomains: []authgatev1.DomainMatch{".example.com", "shop.example.org"},
			},
			IdentityHeaders: map[string]authgatev1.ClaimName{"X-User-Id": "sub", "X-User-Email": "email", "X-User-Role": "roles"},
		},
	}
}

func TestValidPolicyIsAcceptedWithDefaults(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	p := validPolicy()
	p.Namespace = ns
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatalf("the API server refused a valid policy: %v", err)
	}

	minimal := &authgatev1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "minimal", Namespace: ns},
		Spec: authgatev1.AuthPolicySpec{
			Rules:   []authgatev1.Rule{{Name: "app", Mode: authgatev1.ModeEither}},
			Session: &authgatev1.SessionConfig{},
			JWT:     &authgatev1.JWTConfig{Issuer: "http://localhost:8080", SigningKeySecretRef: &authgatev1.SecretReference{Name: "keys"}},
			Login:   &authgatev1.LoginConfig{UsersSecretRef: &authgatev1.SecretReference{Name: "users"}},
		},
	}
	if err := k8s.Create(ctx, minimal); err != nil {
		t.Fatalf("the API server refused a minimal policy: %v", err)
	}
	got := &authgatev1.AuthPolicy{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(minimal), got); err != nil {
		t.Fatal(err)
	}
	s, j := got.Spec.Session, got.Spec.JWT
	checks := map[string][2]any{
		"session.cookie.name":      {s.Cookie.Name, "authgate_session"},
		"session.cookie.path":      {s.Cookie.Path, "/"},
		"session.cookie.sameSite":  {s.Cookie.SameSite, authgatev1.SameSiteLax},
		"session.cookie.secure":    {s.Cookie.Secure, ptr.To(true)},
		"session.ttl":              {s.TTL, authgatev1.Duration("168h")},
		"session.refreshThreshold": {s.RefreshThreshold, authgatev1.Duration("24h")},
		"session.maxLifetime":      {s.MaxLifetime, authgatev1.Duration("720h")},
		"jwt.algorithm":            {j.Algorithm, authgatev1.AlgorithmES256},
		"jwt.accessTokenTTL":       {j.AccessTokenTTL, authgatev1.Duration("15m")},
		"jwt.refreshTokenTTL":      {j.RefreshTokenTTL, authgatev1.Duration("168h")},
		"jwt.refreshTokenRotation": {j.RefreshTokenRotation, ptr.To(true)},
		"jwt.keyRotationPeriod":    {j.KeyRotationPeriod, authgatev1.Duration("720h")},
		"jwt.clockSkew":            {j.ClockSkew, authgatev1.Duration("30s")},
		"onStoreUnavailable":       {got.Spec.OnStoreUnavailable, authgatev1.StoreUnavailableDeny},
	}
	for field, c := range checks {
		if fmt.Sprint(deref(c[0])) != fmt.Sprint(deref(c[1])) {
			t.Errorf("default of spec.%s = %v, want %v", field, deref(c[0]), deref(c[1]))
		}
	}
}

func deref(v any) any {
	if b, ok := v.(*bool); ok && b != nil {
		return *b
	}
	return v
}

// TestInvalidPoliciesAreRefused holds one case per schema rule that matters: each starts from
// validPolicy, makes one mistake, and expects the API server to refuse it with a message that names
// the field.
func TestInvalidPoliciesAreRefused(t *testing.T) {
	cases := map[string]struct {
		mutate func(p *authgatev1.AuthPolicy)
		want   []string // substrings of the API server's message
	}{
		"no rules": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Rules = nil },
			want:   []string{"spec.rules"},
		},
		"unknown mode": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Rules[0].Mode = "Cookie" },
			want:   []string{"spec.rules[0].mode", `supported values: "Session", "JWT", "Either", "Public"`},
		},
		"duplicate rule names": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Rules[1].Name = "assets" },
			want:   []string{"spec.rules", "rule names must be unique within a policy"},
		},
		"rule name not a DNS label": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Rules[0].Name = "Static Assets" },
			want:   []string{"spec.rules[0].name", "should match"},
		},
		"path prefix without leading slash": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Rules[0].Match.PathPrefix = "static/" },
			want:   []string{"spec.rules[0].match.pathPrefix", "should match '^/"},
		},
		"path prefix percent-encoded": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Rules[0].Match.PathPrefix = "/st%61tic/" },
			want:   []string{"spec.rules[0].match.pathPrefix"},
		},
		"path prefix with dot-segment": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Rules[0].Match.PathPrefix = "/static/../admin" },
			want:   []string{"spec.rules[0].match.pathPrefix", "must not contain . or .. segments"},
		},
		"exact path with query": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Rules[2].Match.Path = "/healthz?full=1" },
			want:   []string{"spec.rules[2].match.path"},
		},
		"path and pathPrefix together": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Rules[0].Match.Path = "/static/logo.png" },
			want:   []string{"spec.rules[0].match", "set either path (exact) or pathPrefix, not both"},
		},
		"unknown method": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Rules[1].Match.Methods = []authgatev1.HTTPMethod{"FETCH"} },
			want:   []string{"spec.rules[1].match.methods[0]", "supported values"},
		},
		"public rule with roles": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Rules[0].RequireRoles = []authgatev1.Role{"admin"} },
			want:   []string{"spec.rules[0]", "a Public rule cannot require roles"},
		},
		"JWT rule without jwt section": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.JWT = nil },
			want:   []string{"spec.jwt is required when a rule uses mode JWT or Either"},
		},
		"Session rule without session section": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Session = nil },
			want:   []string{"spec.session is required when a rule uses mode Session or Either"},
		},
		"Session rule without users": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Login.UsersSecretRef = nil; p.Spec.JWT.Issuer = "" },
			want:   []string{"spec.login.usersSecretRef is required when a rule uses mode Session or Either"},
		},
		"issuing JWTs without users": {
			mutate: func(p *authgatev1.AuthPolicy) {
				p.Spec.Login.UsersSecretRef = nil
				p.Spec.Rules = p.Spec.Rules[:3]
				p.Spec.Session = nil
			},
			want: []string{"spec.login.usersSecretRef is required when spec.jwt.issuer is set"},
		},
		"issuing JWTs without a signing key": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.JWT.SigningKeySecretRef = nil },
			want:   []string{"spec.jwt", "jwt.signingKeySecretRef is required when jwt.issuer is set"},
		},
		"HS256 without a key Secret": {
			mutate: func(p *authgatev1.AuthPolicy) {
				p.Spec.JWT.Issuer = ""
				p.Spec.JWT.Algorithm = authgatev1.AlgorithmHS256
				p.Spec.JWT.SigningKeySecretRef = nil
			},
			want: []string{"jwt.algorithm HS256 requires jwt.signingKeySecretRef"},
		},
		"jwt that accepts no token": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.JWT.Issuer = ""; p.Spec.JWT.TrustedIssuers = nil },
			want:   []string{"spec.jwt", "jwt needs an issuer"},
		},
		"unknown algorithm": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.JWT.Algorithm = "none" },
			want:   []string{"spec.jwt.algorithm", `supported values: "ES256", "RS256", "EdDSA", "HS256"`},
		},
		"duration that does not parse": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Session.TTL = "7 days" },
			want:   []string{"spec.session.ttl", "must be a duration such as 90s, 15m or 24h"},
		},
		"zero ttl": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Session.TTL = "0s" },
			want:   []string{"spec.session.ttl", "ttl must be greater than zero"},
		},
		"refreshThreshold not below ttl": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Session.RefreshThreshold = "168h" },
			want:   []string{"spec.session", "session.refreshThreshold must be less than session.ttl"},
		},
		"ttl above maxLifetime": {
			mutate: func(p *authgatev1.AuthPolicy) {
				p.Spec.Session.MaxLifetime = "24h"
				p.Spec.Session.RefreshThreshold = "1h"
			},
			want: []string{"spec.session", "session.ttl must not exceed session.maxLifetime"},
		},
		"idleTimeout above ttl": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Session.IdleTimeout = "200h" },
			want:   []string{"spec.session", "session.idleTimeout must not exceed session.ttl"},
		},
		"access token outliving refresh token": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.JWT.AccessTokenTTL = "2h"; p.Spec.JWT.RefreshTokenTTL = "1h" },
			want:   []string{"spec.jwt", "jwt.accessTokenTTL must be less than jwt.refreshTokenTTL"},
		},
		"access token too long": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.JWT.AccessTokenTTL = "48h" },
			want:   []string{"spec.jwt.accessTokenTTL", "accessTokenTTL must be at most 24h"},
		},
		"key rotation shorter than a token": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.JWT.AccessTokenTTL = "3h"; p.Spec.JWT.KeyRotationPeriod = "2h" },
			want:   []string{"spec.jwt", "jwt.keyRotationPeriod must be longer than jwt.accessTokenTTL"},
		},
		"clock skew too large": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.JWT.ClockSkew = "1h" },
			want:   []string{"spec.jwt.clockSkew", "clockSkew must be at most 5m"},
		},
		"issuer not a URL": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.JWT.Issuer = "auth.example.com" },
			want:   []string{"spec.jwt.issuer", "must be an absolute http:// or https:// URL"},
		},
		"JWKS URL with another scheme": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.JWT.TrustedIssuers[0].JWKSURL = "file:///etc/keys.json" },
			want:   []string{"spec.jwt.trustedIssuers[0].jwksURL", "must be an absolute http:// or https:// URL"},
		},
		"trusted issuer repeated": {
			mutate: func(p *authgatev1.AuthPolicy) {
				p.Spec.JWT.TrustedIssuers = append(p.Spec.JWT.TrustedIssuers, p.Spec.JWT.TrustedIssuers[0])
			},
			want: []string{"spec.jwt.trustedIssuers", "trustedIssuers must not repeat an issuer"},
		},
		"identity header that is not a token": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.IdentityHeaders["X User"] = "sub" },
			want:   []string{"spec.identityHeaders", "identity header names must be HTTP header names"},
		},
		"hop-by-hop identity header": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.IdentityHeaders["Transfer-Encoding"] = "sub" },
			want:   []string{"spec.identityHeaders", "identity headers cannot be hop-by-hop"},
		},
		"credential identity header": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.IdentityHeaders["authorization"] = "sub" },
			want:   []string{"spec.identityHeaders", "identity headers cannot be hop-by-hop, framing or credential headers"},
		},
		"identity header twice in other case": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.IdentityHeaders["x-user-id"] = "email" },
			want:   []string{"spec.identityHeaders", "identity header names must be unique regardless of case"},
		},
		"redirect domain with a scheme": {
			mutate: func(p *authgatev1.AuthPolicy) {
				p.Spec.Login.AllowedRedirectDomains = []authgatev1.DomainMatch{"https://example.com"}
			},
			want: []string{"spec.login.allowedRedirectDomains[0]", "should match"},
		},
		"redirect domain with a wildcard": {
			mutate: func(p *authgatev1.AuthPolicy) {
				p.Spec.Login.AllowedRedirectDomains = []authgatev1.DomainMatch{"*.example.com"}
			},
			want: []string{"spec.login.allowedRedirectDomains[0]", "should match"},
		},
		"host in upper case": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Hosts = []authgatev1.HostPattern{"Shop.Example.com"} },
			want:   []string{"spec.hosts[0]", "should match"},
		},
		"host with a port": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Hosts = []authgatev1.HostPattern{"shop.example.com:443"} },
			want:   []string{"spec.hosts[0]", "should match"},
		},
		"wildcard in the middle of a host": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Hosts = []authgatev1.HostPattern{"shop.*.com"} },
			want:   []string{"spec.hosts[0]", "should match"},
		},
		"SameSite None without Secure": {
			mutate: func(p *authgatev1.AuthPolicy) {
				p.Spec.Session.Cookie.SameSite = authgatev1.SameSiteNone
				p.Spec.Session.Cookie.Secure = ptr.To(false)
			},
			want: []string{"spec.session.cookie", "sameSite None requires secure: true"},
		},
		"__Host- cookie with a domain": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Session.Cookie.Name = "__Host-session" },
			want:   []string{"spec.session.cookie", "a cookie named __Host-* requires secure: true, path / and no domain"},
		},
		"cookie name with a separator": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Session.Cookie.Name = "shop;session" },
			want:   []string{"spec.session.cookie.name", "should match"},
		},
		"access-token cookie named like the session cookie": {
			mutate: func(p *authgatev1.AuthPolicy) {
				p.Spec.JWT.AccessTokenCookie = &authgatev1.TokenCookieConfig{Name: "shop_session"}
			},
			want: []string{"spec.jwt.accessTokenCookie.name must differ from spec.session.cookie.name"},
		},
		"unknown store policy": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.OnStoreUnavailable = "Allow" },
			want:   []string{"spec.onStoreUnavailable", `supported values: "Deny", "AllowCached"`},
		},
		"too many rules": {
			mutate: func(p *authgatev1.AuthPolicy) {
				for i := len(p.Spec.Rules); i <= 64; i++ {
					p.Spec.Rules = append(p.Spec.Rules, authgatev1.Rule{Name: fmt.Sprintf("r%d", i), Mode: authgatev1.ModePublic})
				}
			},
			want: []string{"spec.rules", "must have at most 64 items"},
		},
		"role with spaces": {
			mutate: func(p *authgatev1.AuthPolicy) { p.Spec.Rules[1].RequireRoles = []authgatev1.Role{"shop admin"} },
			want:   []string{"spec.rules[1].requireRoles[0]", "should match"},
		},
	}
	ctx := context.Background()
	ns := namespace(t)
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := validPolicy()
			p.Namespace = ns
			p.Name = "p-" + strings.NewReplacer(" ", "-", "_", "-").Replace(strings.ToLower(name))
			p.Name = strings.Trim(strings.Map(func(r rune) rune {
				if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
					return r
				}
				return -1
			}, p.Name), "-")
			tc.mutate(p)
			err := k8s.Create(ctx, p)
			if err == nil {
				t.Fatalf("the API server accepted the policy; want a refusal mentioning %q", tc.want)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid error, got %v", err)
			}
			if testing.Verbose() {
				t.Log(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the refusal does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestStatusIsASubresource checks that spec writes cannot change status, so only the operator,
// through the status subresource, writes it.
func TestStatusIsASubresource(t *testing.T) {
	ctx := context.Background()
	p := validPolicy()
	p.Namespace = namespace(t)
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.Status.ActiveKeyID = "from-a-spec-write"
	if err := k8s.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	got := &authgatev1.AuthPolicy{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(p), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.ActiveKeyID != "" {
		t.Fatalf("a spec update wrote status: activeKeyID = %q", got.Status.ActiveKeyID)
	}
	got.Status.ObservedGeneration = got.Generation
	got.Status.ActiveKeyID = "2026-11-29-a"
	got.Status.Conditions = []metav1.Condition{{
		Type: authgatev1.ConditionReady, Status: metav1.ConditionTrue, Reason: authgatev1.ReasonReady,
		Message: "ready", LastTransitionTime: metav1.NewTime(time.Now()), ObservedGeneration: got.Generation,
	}}
	if err := k8s.Status().Update(ctx, got); err != nil {
		t.Fatalf("writing status through the subresource: %v", err)
	}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(p), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.ActiveKeyID != "2026-11-29-a" || len(got.Status.Conditions) != 1 {
		t.Fatalf("status after a subresource write = %+v", got.Status)
	}
	var invalid *apierrors.StatusError
	got.Status.Conditions[0].Reason = "not a reason"
	if err := k8s.Status().Update(ctx, got); !errors.As(err, &invalid) || !apierrors.IsInvalid(err) {
		t.Fatalf("a condition with an invalid reason was not refused: %v", err)
	}
}
