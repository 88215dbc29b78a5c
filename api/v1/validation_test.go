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

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/source"
	"github.com/authgate/authgate/internal/testenv"
)

// env is the real API server that TestMain starts with the AuthPolicy CRD installed; k8s is its
// client.
var (
	env *testenv.Env
	k8s client.Client
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &env, func(e *testenv.Env) { k8s = e.Client }))
}

func namespace(t *testing.T) string { return env.Namespace(t, "crd") }

func TestValidPolicyIsAcceptedWithDefaults(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	p := fixture.AuthPolicy()
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

// TestInvalidPoliciesAreRefused runs fixture.InvalidAuthPolicies: each case starts from a valid
// policy, makes one mistake, and expects the API server to refuse it with a message that names the
// field. internal/policy runs the same table through Compile.
func TestInvalidPoliciesAreRefused(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	for _, tc := range fixture.InvalidAuthPolicies() {
		t.Run(tc.Name, func(t *testing.T) {
			p := fixture.AuthPolicy()
			p.Namespace = ns
			p.Name = "p-" + strings.NewReplacer(" ", "-", "_", "-").Replace(strings.ToLower(tc.Name))
			p.Name = strings.Trim(strings.Map(func(r rune) rune {
				if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
					return r
				}
				return -1
			}, p.Name), "-")
			tc.Mutate(p)
			err := k8s.Create(ctx, p)
			if err == nil {
				t.Fatalf("the API server accepted the policy; want a refusal mentioning %q", tc.APIServer)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid error, got %v", err)
			}
			if testing.Verbose() {
				t.Log(err)
			}
			for _, w := range tc.APIServer {
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
	p := fixture.AuthPolicy()
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

// TestSamplesAreAccepted creates every object in config/samples in a namespace of its own.
func TestSamplesAreAccepted(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	m, err := source.ReadDir(filepath.Join("..", "..", "config", "samples"), ns)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Secrets {
		if err := k8s.Create(ctx, s); err != nil {
			t.Errorf("sample Secret %s: %v", s.Name, err)
		}
	}
	for _, p := range m.Policies {
		if err := k8s.Create(ctx, p); err != nil {
			t.Errorf("sample AuthPolicy %s: %v", p.Name, err)
		}
	}
	list := &authgatev1.AuthPolicyList{}
	if err := k8s.List(ctx, list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != len(m.Policies) || len(list.Items) < 5 {
		t.Fatalf("%d of %d sample policies stored", len(list.Items), len(m.Policies))
	}
}

// TestGoDefaultsMatchTheSchema stores policies with every defaulted field left out, and checks that
// AuthPolicySpec.Default (used where no API server defaults, as in standalone mode) fills the same
// values as the schema.
func TestGoDefaultsMatchTheSchema(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	for _, spec := range []authgatev1.AuthPolicySpec{
		{
			Rules:   []authgatev1.Rule{{Name: "app", Mode: authgatev1.ModeEither}},
			Session: &authgatev1.SessionConfig{},
			JWT:     &authgatev1.JWTConfig{Issuer: "https://auth.example.com", SigningKeySecretRef: &authgatev1.SecretReference{Name: "keys"}},
			Login:   &authgatev1.LoginConfig{UsersSecretRef: &authgatev1.SecretReference{Name: "users"}},
		},
		{
			Rules:   []authgatev1.Rule{{Name: "app", Mode: authgatev1.ModeSession}},
			Session: &authgatev1.SessionConfig{Cookie: authgatev1.CookieConfig{Name: "c"}, TTL: "1h", RefreshThreshold: "10m", MaxLifetime: "2h"},
			Login:   &authgatev1.LoginConfig{UsersSecretRef: &authgatev1.SecretReference{Name: "users"}},
		},
	} {
		stored := &authgatev1.AuthPolicy{ObjectMeta: metav1.ObjectMeta{GenerateName: "defaults-", Namespace: ns}, Spec: *spec.DeepCopy()}
		if err := k8s.Create(ctx, stored); err != nil {
			t.Fatal(err)
		}
		local := spec.DeepCopy()
		local.Default()
		if !equality.Semantic.DeepEqual(&stored.Spec, local) {
			t.Errorf("defaults differ.\nAPI server: %+v\nDefault():  %+v", stored.Spec, *local)
		}
	}
}
