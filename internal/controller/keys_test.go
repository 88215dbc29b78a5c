package controller_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/controller"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/testenv"
)

// TestSigningKeySecretCreated: the running operator creates a missing signing-key Secret, owned by
// the policy, and reports the key that signs.
func TestSigningKeySecretCreated(t *testing.T) {
	ns := env.Namespace(t, "keys")
	startPolicyController(t, ns)
	p := jwtPolicy(ns, "api", "api-keys")
	create(t, usersSecret(ns), p)
	got := waitConditions(t, ns, "api", accepted, resolved, ready)
	s := &corev1.Secret{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "api-keys"}, s); err != nil {
		t.Fatal(err)
	}
	if s.Labels[authgatev1.ManagedByLabel] != authgatev1.ManagedByValue || !metav1.IsControlledBy(s, got) {
		t.Errorf("the Secret is not marked as the policy's: labels %v owners %v", s.Labels, s.OwnerReferences)
	}
	if active := string(s.Data[authgatev1.SigningKeyActiveKey]); active == "" || got.Status.ActiveKeyID != active {
		t.Errorf("status.activeKeyID %q, Secret's active-kid %q", got.Status.ActiveKeyID, active)
	}
	waitEvent(t, ns, "api", corev1.EventTypeNormal, "KeyCreated", "api-keys")
}

// rotationHarness runs the reconciler by hand with a fake clock: the manager only feeds its cache.
type rotationHarness struct {
	t     *testing.T
	ns    string
	clock *clocktesting.FakePassiveClock
	r     *controller.AuthPolicyReconciler
	mgr   ctrl.Manager
	// registry holds the reconciler's metrics.
	registry *prometheus.Registry
}

func newRotationHarness(t *testing.T, prefix string) *rotationHarness {
	h := &rotationHarness{t: t, ns: env.Namespace(t, prefix), clock: clocktesting.NewFakePassiveClock(time.Now()), registry: prometheus.NewRegistry()}
	metrics, err := controller.NewMetrics(h.registry)
	if err != nil {
		t.Fatal(err)
	}
	h.mgr = startManager(t, h.ns, func(mgr ctrl.Manager) error {
		h.r = &controller.AuthPolicyReconciler{
			Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Clock: h.clock,
			Wiring:  controller.Wiring{WebhookURL: "http://authgate-webhook.authgate.svc:8080"},
			Metrics: metrics,
		}
		return nil
	})
	h.r.Secrets = newSecretReader(h.mgr)
	return h
}

// rotations returns authgate_signing_key_rotations_total of the policy.
func (h *rotationHarness) rotations(name string) float64 {
	h.t.Helper()
	mfs, err := h.registry.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "authgate_signing_key_rotations_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "policy" && l.GetValue() == h.ns+"/"+name {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// reconcile runs one reconcile of the policy, once the manager's cache has it, and returns when it
// asks to be called again.
func (h *rotationHarness) reconcile(name string) time.Duration {
	h.t.Helper()
	testenv.Eventually(h.t, waitFor, func() string {
		err := h.mgr.GetClient().Get(context.Background(), types.NamespacedName{Namespace: h.ns, Name: name}, &authgatev1.AuthPolicy{})
		if err != nil {
			return err.Error()
		}
		return ""
	})
	res, err := h.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: h.ns, Name: name}})
	if err != nil {
		h.t.Fatalf("reconcile: %v", err)
	}
	return res.RequeueAfter
}

// secret reads the Secret from the API server once the manager's cache has caught up with it, so
// that the next reconcile sees what this one wrote.
func (h *rotationHarness) secret(name string) *corev1.Secret {
	h.t.Helper()
	s := &corev1.Secret{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: h.ns, Name: name}, s); err != nil {
		h.t.Fatal(err)
	}
	testenv.Eventually(h.t, waitFor, func() string {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		if err := h.mgr.GetClient().Get(context.Background(), client.ObjectKeyFromObject(s), m); err != nil {
			return err.Error()
		}
		if m.ResourceVersion != s.ResourceVersion {
			return "the cache is behind"
		}
		return ""
	})
	return s
}

// keys compiles the policy against the Secret and returns the signing kid and every verifying kid.
func keys(t *testing.T, p *authgatev1.AuthPolicy, s *corev1.Secret) (string, map[string]bool) {
	t.Helper()
	secrets := policy.Secrets{"users": fixture.Secrets()["shop-users"], s.Name: s.Data}
	c, err := policy.Compile(p, secrets)
	if err != nil {
		t.Fatalf("the Secret does not compile: %v", err)
	}
	verify := map[string]bool{}
	for k := range c.JWT().Keys().Verifiers() {
		verify[k.ID()] = true
	}
	return c.JWT().Keys().Active().ID(), verify
}

// TestSigningKeyRotation drives rotation and pruning with a fake clock: the key rotates every
// keyRotationPeriod, the next key is published a period ahead, and a retired key verifies until
// accessTokenTTL plus clockSkew has passed.
func TestSigningKeyRotation(t *testing.T) {
	h := newRotationHarness(t, "rotate")
	p := jwtPolicy(h.ns, "api", "api-keys")
	p.Spec.JWT.KeyRotationPeriod = "24h"
	p.Spec.JWT.AccessTokenTTL = "10m"
	p.Spec.JWT.ClockSkew = "1m"
	create(t, usersSecret(h.ns), p)
	const period, keep = 24 * time.Hour, 11 * time.Minute

	if after := h.reconcile("api"); after != period {
		t.Errorf("requeue after %s, want the rotation period %s", after, period)
	}
	s := h.secret("api-keys")
	first, verify := keys(t, p, s)
	if len(verify) != 2 {
		t.Fatalf("a new Secret verifies %v: want the signing key and the next one", verify)
	}
	var next string
	for kid := range verify {
		if kid != first {
			next = kid
		}
	}
	got := &authgatev1.AuthPolicy{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(p), got); err != nil || got.Status.ActiveKeyID != first {
		t.Fatalf("status.activeKeyID %q (%v), want %s", got.Status.ActiveKeyID, err, first)
	}

	// Not yet due: nothing changes, not even the policy (a status patch that would change nothing
	// is skipped), and the requeue counts down.
	testenv.Eventually(t, waitFor, func() string {
		cached := &authgatev1.AuthPolicy{}
		if err := h.mgr.GetClient().Get(context.Background(), client.ObjectKeyFromObject(p), cached); err != nil || cached.ResourceVersion != got.ResourceVersion {
			return "the cache is behind the policy's status"
		}
		return ""
	})
	h.clock.SetTime(h.clock.Now().Add(period - time.Hour))
	if after := h.reconcile("api"); after != time.Hour {
		t.Errorf("requeue after %s, want 1h", after)
	}
	if again := h.secret("api-keys"); again.ResourceVersion != s.ResourceVersion {
		t.Error("the Secret changed before the rotation was due")
	}
	if n := h.rotations("api"); n != 0 {
		t.Errorf("authgate_signing_key_rotations_total = %v before any rotation", n)
	}
	unchanged := &authgatev1.AuthPolicy{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(p), unchanged); err != nil || unchanged.ResourceVersion != got.ResourceVersion {
		t.Errorf("a reconcile that found nothing new wrote the policy (resourceVersion %s, was %s; %v)", unchanged.ResourceVersion, got.ResourceVersion, err)
	}

	// Due: the next key signs, the old one still verifies, and the requeue is the prune.
	h.clock.SetTime(h.clock.Now().Add(time.Hour))
	if after := h.reconcile("api"); after != keep {
		t.Errorf("requeue after %s, want the prune in %s", after, keep)
	}
	s = h.secret("api-keys")
	active, verify := keys(t, p, s)
	if active != next || !verify[first] || len(verify) != 3 {
		t.Fatalf("after rotation: active %s, verifying %v; want %s active and %s verifying", active, verify, next, first)
	}
	if _, ok := s.Data[first+authgatev1.SigningKeyPrivateSuffix]; ok {
		t.Error("the retired key's private half is still in the Secret")
	}
	if n := h.rotations("api"); n != 1 {
		t.Errorf("authgate_signing_key_rotations_total{policy=%q} = %v after the rotation, want 1", h.ns+"/api", n)
	}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(p), got); err != nil || got.Status.ActiveKeyID != next {
		t.Errorf("status.activeKeyID %q (%v), want %s", got.Status.ActiveKeyID, err, next)
	}

	// Pruned once the last token the old key signed has expired.
	h.clock.SetTime(h.clock.Now().Add(keep))
	if after := h.reconcile("api"); after != period-keep {
		t.Errorf("requeue after %s, want the next rotation in %s", after, period-keep)
	}
	s = h.secret("api-keys")
	if active, verify = keys(t, p, s); active != next || verify[first] || len(verify) != 2 {
		t.Errorf("after pruning: active %s, verifying %v", active, verify)
	}
	if _, ok := s.Data[first+authgatev1.SigningKeyPublicSuffix]; ok {
		t.Error("the retired public key was not pruned")
	}
	if n := h.rotations("api"); n != 1 {
		t.Errorf("authgate_signing_key_rotations_total = %v after pruning, want still 1", n)
	}
}

// TestMetricsRegisterTwice: a second Run in one process registers the operator's metrics on the
// same registry again and counts into the same series.
func TestMetricsRegisterTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := controller.NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := controller.NewMetrics(reg); err != nil {
		t.Fatalf("registering again: %v", err)
	}
}

// TestUserSigningKeySecretLeftAlone: a Secret the operator did not create is never modified, however
// long it goes unrotated.
func TestUserSigningKeySecretLeftAlone(t *testing.T) {
	h := newRotationHarness(t, "userkeys")
	user := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "my-keys", Namespace: h.ns},
		Data:       fixture.Secrets()["shop-jwt-keys"],
	}
	p := jwtPolicy(h.ns, "api", "my-keys")
	p.Spec.JWT.KeyRotationPeriod = "24h"
	create(t, usersSecret(h.ns), user, p)
	before := h.secret("my-keys")
	for range 3 {
		if after := h.reconcile("api"); after != 0 {
			t.Errorf("requeue after %s for a Secret the operator does not rotate", after)
		}
		h.clock.SetTime(h.clock.Now().Add(400 * 24 * time.Hour))
	}
	after := h.secret("my-keys")
	if after.ResourceVersion != before.ResourceVersion {
		t.Errorf("the user's Secret was modified: %v", after)
	}
	got := &authgatev1.AuthPolicy{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(p), got); err != nil || got.Status.ActiveKeyID != "fixture-1" {
		t.Errorf("status.activeKeyID %q (%v), want fixture-1", got.Status.ActiveKeyID, err)
	}
}
