package controller_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/controller"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/testenv"
)

const waitFor = 30 * time.Second

// sessionPolicy is a valid policy with one Session rule on host under prefix, whose users are in
// the Secret "users".
func sessionPolicy(ns, name, host, prefix string) *authgatev1.AuthPolicy {
	return &authgatev1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: authgatev1.AuthPolicySpec{
			Hosts:   []authgatev1.HostPattern{authgatev1.HostPattern(host)},
			Rules:   []authgatev1.Rule{{Name: "app", Match: authgatev1.RouteMatch{PathPrefix: prefix}, Mode: authgatev1.ModeSession}},
			Session: &authgatev1.SessionConfig{},
			Login:   &authgatev1.LoginConfig{UsersSecretRef: &authgatev1.SecretReference{Name: "users"}},
		},
	}
}

// jwtPolicy is a valid policy that issues tokens signed with the keys of Secret keys.
func jwtPolicy(ns, name, keys string) *authgatev1.AuthPolicy {
	return &authgatev1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: authgatev1.AuthPolicySpec{
			Hosts: []authgatev1.HostPattern{authgatev1.HostPattern(name + ".example.com")},
			Rules: []authgatev1.Rule{{Name: "api", Match: authgatev1.RouteMatch{PathPrefix: "/"}, Mode: authgatev1.ModeJWT}},
			JWT: &authgatev1.JWTConfig{
				Issuer:              "https://auth.example.com",
				SigningKeySecretRef: &authgatev1.SecretReference{Name: keys},
			},
			Login: &authgatev1.LoginConfig{UsersSecretRef: &authgatev1.SecretReference{Name: "users"}},
		},
	}
}

// usersSecret is a valid users Secret named "users".
func usersSecret(ns string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "users", Namespace: ns},
		Data:       fixture.Secrets()["shop-users"],
	}
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// startPolicyController runs the AuthPolicy reconciler for namespace ns.
func startPolicyController(t *testing.T, ns ...string) {
	t.Helper()
	startManagerFor(t, ns, func(mgr ctrl.Manager) error {
		r := &controller.AuthPolicyReconciler{
			Client:   mgr.GetClient(),
			Recorder: mgr.GetEventRecorder("authgate-operator"),
			Wiring:   controller.Wiring{WebhookURL: "http://authgate-webhook.authgate.svc:8080"},
		}
		return r.SetupWithManager(mgr)
	})
}

// want is a condition a policy should reach: its status and reason, and text its message holds.
type want struct {
	typ     string
	status  metav1.ConditionStatus
	reason  string
	message string
}

// waitConditions waits until the policy ns/name has every condition in wants, for its current
// generation, and returns it.
func waitConditions(t *testing.T, ns, name string, wants ...want) *authgatev1.AuthPolicy {
	t.Helper()
	p := &authgatev1.AuthPolicy{}
	testenv.Eventually(t, waitFor, func() string {
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, p); err != nil {
			return err.Error()
		}
		if p.Status.ObservedGeneration != p.Generation {
			return fmt.Sprintf("observedGeneration %d, generation %d", p.Status.ObservedGeneration, p.Generation)
		}
		for _, w := range wants {
			c := meta.FindStatusCondition(p.Status.Conditions, w.typ)
			if c == nil {
				return "no condition " + w.typ
			}
			if c.Status != w.status || c.Reason != w.reason || !strings.Contains(c.Message, w.message) || c.ObservedGeneration != p.Generation {
				return fmt.Sprintf("condition %s is %s/%s %q (generation %d), want %s/%s containing %q", w.typ, c.Status, c.Reason, c.Message, c.ObservedGeneration, w.status, w.reason, w.message)
			}
		}
		return ""
	})
	return p
}

// waitEvent waits for an Event about the object named regarding with reason and type.
func waitEvent(t *testing.T, ns, regarding, eventType, reason, note string) {
	t.Helper()
	testenv.Eventually(t, waitFor, func() string {
		list := &eventsv1.EventList{}
		if err := env.Client.List(context.Background(), list, client.InNamespace(ns)); err != nil {
			return err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Name == regarding && e.Type == eventType && e.Reason == reason && strings.Contains(e.Note, note) {
				return ""
			}
			seen = append(seen, e.Regarding.Name+":"+e.Type+"/"+e.Reason)
		}
		return fmt.Sprintf("no %s event %s about %s containing %q; events: %v", eventType, reason, regarding, note, seen)
	})
}

var (
	accepted = want{authgatev1.ConditionAccepted, metav1.ConditionTrue, authgatev1.ReasonAccepted, ""}
	resolved = want{authgatev1.ConditionResolvedRefs, metav1.ConditionTrue, authgatev1.ReasonResolvedRefs, ""}
	ready    = want{authgatev1.ConditionReady, metav1.ConditionTrue, authgatev1.ReasonReady, ""}
)

func TestPolicyReady(t *testing.T) {
	ns := env.Namespace(t, "ready")
	startPolicyController(t, ns)
	create(t, usersSecret(ns), sessionPolicy(ns, "shop", "shop.example.com", "/"))
	p := waitConditions(t, ns, "shop", accepted, resolved, ready,
		want{authgatev1.ConditionIngressesWired, metav1.ConditionTrue, authgatev1.ReasonWired, "0 Ingresses"})
	if p.Status.Modes != "Session" || p.Status.ActiveKeyID != "" {
		t.Errorf("status %+v", p.Status)
	}
	waitEvent(t, ns, "shop", corev1.EventTypeNormal, authgatev1.ReasonReady, "enforces")
}

// TestSecretFixedLater: a policy whose Secret is missing, then wrong, becomes Ready when the Secret
// is fixed, without anyone touching the policy.
func TestSecretFixedLater(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "secret")
	startPolicyController(t, ns)
	create(t, sessionPolicy(ns, "shop", "shop.example.com", "/"))
	waitConditions(t, ns, "shop", accepted,
		want{authgatev1.ConditionResolvedRefs, metav1.ConditionFalse, authgatev1.ReasonSecretNotFound, "Secret " + ns + "/users"},
		want{authgatev1.ConditionReady, metav1.ConditionFalse, authgatev1.ReasonRefsNotResolved, ""})
	waitEvent(t, ns, "shop", corev1.EventTypeWarning, authgatev1.ReasonSecretNotFound, "users")

	bad := usersSecret(ns)
	bad.Data = map[string][]byte{authgatev1.UsersSecretKey: []byte("- email: not-an-address\n  passwordHash: x\n")}
	create(t, bad)
	waitConditions(t, ns, "shop", accepted,
		want{authgatev1.ConditionResolvedRefs, metav1.ConditionFalse, authgatev1.ReasonSecretInvalid, "data[users.yaml][0].email"},
		want{authgatev1.ConditionReady, metav1.ConditionFalse, authgatev1.ReasonRefsNotResolved, ""})
	waitEvent(t, ns, "shop", corev1.EventTypeWarning, authgatev1.ReasonSecretInvalid, "users.yaml")

	bad.Data = usersSecret(ns).Data
	if err := env.Client.Update(ctx, bad); err != nil {
		t.Fatal(err)
	}
	p := waitConditions(t, ns, "shop", accepted, resolved, ready)
	if p.Generation != 1 {
		t.Errorf("the policy was modified: generation %d", p.Generation)
	}

	// And back: deleting the Secret is seen as well.
	if err := env.Client.Delete(ctx, bad); err != nil {
		t.Fatal(err)
	}
	waitConditions(t, ns, "shop", want{authgatev1.ConditionResolvedRefs, metav1.ConditionFalse, authgatev1.ReasonSecretNotFound, "users"})
}

// TestInvalidSpec: a spec the schema lets through but the compiler refuses is reported, and an
// edit that fixes it makes the policy Ready.
func TestInvalidSpec(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "invalid")
	startPolicyController(t, ns)
	p := sessionPolicy(ns, "shop", "shop.example.com", "/")
	// The schema's pattern lets a DNS label of any length through; the compiler knows the limit.
	p.Spec.Hosts = []authgatev1.HostPattern{authgatev1.HostPattern(strings.Repeat("a", 64) + ".example.com")}
	create(t, usersSecret(ns), p)
	waitConditions(t, ns, "shop",
		want{authgatev1.ConditionAccepted, metav1.ConditionFalse, authgatev1.ReasonInvalid, "spec.hosts[0]: Invalid value: \"aaaa"},
		resolved,
		want{authgatev1.ConditionReady, metav1.ConditionFalse, authgatev1.ReasonNotAccepted, ""})
	waitEvent(t, ns, "shop", corev1.EventTypeWarning, authgatev1.ReasonInvalid, "label is longer than 63 characters")

	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
		t.Fatal(err)
	}
	p.Spec.Hosts = []authgatev1.HostPattern{"shop.example.com"}
	if err := env.Client.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitConditions(t, ns, "shop", accepted, resolved, ready)
}

// TestConflict: of two policies claiming one host and path, the older keeps it; when it goes, the
// newer is accepted. The two are in different namespaces: hosts are cluster-wide.
func TestConflict(t *testing.T) {
	ctx := context.Background()
	nsA, nsB := env.Namespace(t, "conflict-a"), env.Namespace(t, "conflict-b")
	startPolicyController(t, nsA, nsB)
	older := sessionPolicy(nsA, "shop", "conflict.example.com", "/")
	create(t, usersSecret(nsA), usersSecret(nsB), older)
	waitConditions(t, nsA, "shop", accepted, ready)
	// Creation times have a resolution of one second: make sure the second policy is younger.
	testenv.Eventually(t, waitFor, func() string {
		if time.Since(older.CreationTimestamp.Time) <= time.Second {
			return "waiting for the next second"
		}
		return ""
	})
	create(t, sessionPolicy(nsB, "shop-too", "conflict.example.com", "/"))
	waitConditions(t, nsB, "shop-too",
		want{authgatev1.ConditionAccepted, metav1.ConditionFalse, authgatev1.ReasonConflicted,
			"AuthPolicy " + nsA + "/shop, which is older, already claims host conflict.example.com path prefix /"},
		resolved,
		want{authgatev1.ConditionReady, metav1.ConditionFalse, authgatev1.ReasonNotAccepted, ""})
	waitEvent(t, nsB, "shop-too", corev1.EventTypeWarning, authgatev1.ReasonConflicted, nsA+"/shop")
	waitConditions(t, nsA, "shop", accepted, ready)

	// The policy is deleted: the route is free and the newer policy takes it.
	if err := env.Client.Delete(ctx, older); err != nil {
		t.Fatal(err)
	}
	waitConditions(t, nsB, "shop-too", accepted, resolved, ready)
}

// TestIngressesWiredCondition: the policy counts the Ingresses wired to it and reports one whose
// auth annotation a person set, until that annotation is removed.
func TestIngressesWiredCondition(t *testing.T) {
	ns := env.Namespace(t, "wired")
	startPolicyController(t, ns)
	create(t, usersSecret(ns), sessionPolicy(ns, "shop", "shop.example.com", "/"),
		nginxIngress(ns, "web", map[string]string{authgatev1.PolicyAnnotation: "shop"}),
		nginxIngress(ns, "admin", map[string]string{authgatev1.PolicyAnnotation: "shop", controller.AnnotationAuthURL: "http://my-auth.example.com/"}),
		nginxIngress(ns, "other", nil))
	p := waitConditions(t, ns, "shop", ready,
		want{authgatev1.ConditionIngressesWired, metav1.ConditionFalse, authgatev1.ReasonAnnotationConflict,
			"Ingress admin has " + controller.AnnotationAuthURL + " set by hand"})
	if p.Status.AttachedIngresses != 1 {
		t.Errorf("attachedIngresses %d, want 1 (web)", p.Status.AttachedIngresses)
	}
	waitEvent(t, ns, "shop", corev1.EventTypeWarning, authgatev1.ReasonAnnotationConflict, "admin")

	ing := &networkingv1.Ingress{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "admin"}, ing); err != nil {
		t.Fatal(err)
	}
	delete(ing.Annotations, controller.AnnotationAuthURL)
	if err := env.Client.Update(context.Background(), ing); err != nil {
		t.Fatal(err)
	}
	waitConditions(t, ns, "shop", ready, want{authgatev1.ConditionIngressesWired, metav1.ConditionTrue, authgatev1.ReasonWired, "2 Ingresses"})
}

// TestKeyPending: an operator that may not create the signing-key Secret says so in ResolvedRefs,
// and keeps trying.
func TestKeyPending(t *testing.T) {
	ns := env.Namespace(t, "pending")
	// The operator's generated role, less the right to create Secrets.
	raw, err := os.ReadFile(testenv.RoleFile("operator/role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	lessened := strings.Replace(string(raw), "  - create\n  - get\n  - list\n  - update\n  - watch\n", "  - get\n  - list\n  - update\n  - watch\n", 1)
	if lessened == string(raw) {
		t.Fatal("the operator's role no longer lists Secret verbs as expected; update this test")
	}
	roleFile := filepath.Join(t.TempDir(), "role.yaml")
	if err := os.WriteFile(roleFile, []byte(lessened), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := env.UserWithRoles(t, "operator-without-create-"+ns, ns, roleFile)
	startManagerWithConfig(t, cfg, []string{ns}, func(mgr ctrl.Manager) error {
		return (&controller.AuthPolicyReconciler{
			Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("authgate-operator"),
			Wiring: controller.Wiring{WebhookURL: "http://authgate-webhook.authgate.svc:8080"},
		}).SetupWithManager(mgr)
	})
	create(t, usersSecret(ns), jwtPolicy(ns, "api", "api-keys"))
	p := &authgatev1.AuthPolicy{}
	testenv.Eventually(t, waitFor, func() string {
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "api"}, p); err != nil {
			return err.Error()
		}
		c := meta.FindStatusCondition(p.Status.Conditions, authgatev1.ConditionResolvedRefs)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != authgatev1.ReasonKeyPending || !strings.Contains(c.Message, "creating Secret "+ns+"/api-keys") || !strings.Contains(c.Message, "forbidden") {
			return fmt.Sprintf("ResolvedRefs %+v", c)
		}
		if r := meta.FindStatusCondition(p.Status.Conditions, authgatev1.ConditionReady); r == nil || r.Reason != authgatev1.ReasonRefsNotResolved {
			return fmt.Sprintf("Ready %+v", r)
		}
		return ""
	})
	if p.Status.ObservedGeneration == p.Generation {
		t.Error("observedGeneration was written by a reconcile that failed")
	}
	waitEvent(t, ns, "api", corev1.EventTypeWarning, authgatev1.ReasonKeyPending, "api-keys")
}
