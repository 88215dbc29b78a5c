package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/controller"
	"github.com/authgate/authgate/internal/testenv"
)

// ingressWait bounds every wait for the reconciler: tests run with -race on loaded machines.
const ingressWait = 30 * time.Second

// ingressLoginURL is the operator's login page in these tests.
const ingressLoginURL = "https://login.example.com/auth/login"

// startIngressController runs the Ingress reconciler for namespace ns.
func startIngressController(t *testing.T, ns string) {
	t.Helper()
	startManager(t, ns, func(mgr ctrl.Manager) error {
		r := &controller.IngressReconciler{
			Client:   mgr.GetClient(),
			Recorder: mgr.GetEventRecorder("authgate-operator"),
			Wiring:   controller.Wiring{WebhookURL: wiringWebhookURL, LoginURL: ingressLoginURL},
		}
		return r.SetupWithManager(mgr)
	})
}

// nginxIngress is an Ingress of class nginx for shop.example.com with annotations.
func nginxIngress(ns, name string, annotations map[string]string) *networkingv1.Ingress {
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To("nginx"),
			Rules: []networkingv1.IngressRule{{
				Host: "shop.example.com",
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{
						Path:     "/",
						PathType: ptr.To(networkingv1.PathTypePrefix),
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
							Name: "shop", Port: networkingv1.ServiceBackendPort{Number: 8080},
						}},
					}},
				}},
			}},
		},
	}
}

// wiredIn is the complete annotation set of an Ingress in ns wired to wiringPolicy(ns) by the
// reconciler of startIngressController, changed by extra as wiredAnnotations does.
func wiredIn(ns string, extra map[string]string) map[string]string {
	ref := ns + "/shop"
	a := wiredAnnotations(ingressLoginURL+"?policy="+ref, extra)
	if _, ok := extra[keyAuthURL]; !ok {
		a[keyAuthURL] = wiringWebhookURL + "/check/nginx?policy=" + ref
	}
	return a
}

// createObjects creates objs with the test client.
// patchObject applies a merge patch to o (fetched fresh) made by mutate.
func patchObject(t *testing.T, o client.Object, mutate func()) {
	t.Helper()
	ctx := context.Background()
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
		t.Fatalf("getting %T %s: %v", o, o.GetName(), err)
	}
	orig := o.DeepCopyObject().(client.Object)
	mutate()
	if err := env.Client.Patch(ctx, o, client.MergeFrom(orig)); err != nil {
		t.Fatalf("patching %T %s: %v", o, o.GetName(), err)
	}
}

// waitAnnotations waits until the Ingress ns/name has exactly the annotations want.
func waitAnnotations(t *testing.T, ns, name string, want map[string]string) {
	t.Helper()
	testenv.Eventually(t, ingressWait, func() string {
		ing := &networkingv1.Ingress{}
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, ing); err != nil {
			return err.Error()
		}
		if d := annotationsDiff(ing.Annotations, want); d != "" {
			return "annotations of Ingress " + name + ": " + d
		}
		return ""
	})
}

// waitIngressEvent waits for an Event about Ingress name of type and reason whose note holds each
// of notes, and returns it.
func waitIngressEvent(t *testing.T, ns, name, eventType, reason string, notes ...string) eventsv1.Event {
	t.Helper()
	var found eventsv1.Event
	testenv.Eventually(t, ingressWait, func() string {
		list := &eventsv1.EventList{}
		if err := env.Client.List(context.Background(), list, client.InNamespace(ns)); err != nil {
			return err.Error()
		}
		var seen []string
	events:
		for _, e := range list.Items {
			seen = append(seen, fmt.Sprintf("%s %s/%s %q", e.Regarding.Name, e.Type, e.Reason, e.Note))
			if e.Regarding.Kind != "Ingress" || e.Regarding.Name != name || e.Type != eventType || e.Reason != reason {
				continue
			}
			for _, n := range notes {
				if !strings.Contains(e.Note, n) {
					continue events
				}
			}
			found = e
			return ""
		}
		return fmt.Sprintf("no %s event %s about Ingress %s with %q; events: %q", eventType, reason, name, notes, seen)
	})
	return found
}

func TestIngressWired(t *testing.T) {
	ns := env.Namespace(t, "ingress-wired")
	startIngressController(t, ns)
	create(t, wiringPolicy(ns),
		nginxIngress(ns, "web", map[string]string{keyPolicy: "shop", keyRewrite: "/"}),
		nginxIngress(ns, "other", map[string]string{keyRewrite: "/"}))

	waitAnnotations(t, ns, "web", wiredIn(ns, map[string]string{keyRewrite: "/"}))
	e := waitIngressEvent(t, ns, "web", corev1.EventTypeNormal, "Wired", keyAuthURL)
	if e.Related == nil || e.Related.Kind != "AuthPolicy" || e.Related.Name != "shop" {
		t.Errorf("Wired event relates to %+v, want AuthPolicy shop", e.Related)
	}
	if e.Action != "Wire" || e.ReportingController != "authgate-operator" {
		t.Errorf("Wired event: action %q, controller %q", e.Action, e.ReportingController)
	}
	// The Ingress that names no policy is none of authgate's business: the predicate keeps it out of
	// the queue, so it keeps its annotations as they are.
	waitAnnotations(t, ns, "other", map[string]string{keyRewrite: "/"})
}

func TestIngressWiredWhenPolicyCreatedLater(t *testing.T) {
	ns := env.Namespace(t, "ingress-later")
	startIngressController(t, ns)
	create(t, nginxIngress(ns, "web", map[string]string{keyPolicy: "shop"}))

	waitIngressEvent(t, ns, "web", corev1.EventTypeWarning, "PolicyNotFound", ns+"/shop", "not guarded by authgate")
	waitAnnotations(t, ns, "web", map[string]string{keyPolicy: "shop"})

	create(t, wiringPolicy(ns))
	waitAnnotations(t, ns, "web", wiredIn(ns, nil))
}

func TestIngressUpdatedWhenPolicyChanges(t *testing.T) {
	ns := env.Namespace(t, "ingress-update")
	startIngressController(t, ns)
	p := wiringPolicy(ns)
	create(t, p, nginxIngress(ns, "web", map[string]string{keyPolicy: "shop"}))
	waitAnnotations(t, ns, "web", wiredIn(ns, nil))

	patchObject(t, p, func() {
		p.Spec.IdentityHeaders = map[string]authgatev1.ClaimName{"x-user-id": "sub", "X-User-Email": "email"}
		p.Spec.Login.URL = "https://auth.example.com/auth/login"
	})
	waitAnnotations(t, ns, "web", wiredIn(ns, map[string]string{
		keyHeaders: "X-User-Email,X-User-Id",
		keySignin:  "https://auth.example.com/auth/login?policy=" + ns + "/shop",
	}))

	// Without browser rules there is no login to send anyone to.
	patchObject(t, p, func() {
		p.Spec.Rules = []authgatev1.Rule{{Name: "app", Match: authgatev1.RouteMatch{PathPrefix: "/"}, Mode: authgatev1.ModePublic}}
		p.Spec.IdentityHeaders = nil
	})
	waitAnnotations(t, ns, "web", wiredIn(ns, map[string]string{keyHeaders: "", keySignin: ""}))
	waitIngressEvent(t, ns, "web", corev1.EventTypeNormal, "Wired", "removed", keySignin, keyHeaders)
}

func TestIngressUnwiredWhenAnnotationRemoved(t *testing.T) {
	ns := env.Namespace(t, "ingress-unannotated")
	startIngressController(t, ns)
	ing := nginxIngress(ns, "web", map[string]string{keyPolicy: "shop", keyRewrite: "/"})
	create(t, wiringPolicy(ns), ing)
	waitAnnotations(t, ns, "web", wiredIn(ns, map[string]string{keyRewrite: "/"}))

	patchObject(t, ing, func() { delete(ing.Annotations, keyPolicy) })
	waitAnnotations(t, ns, "web", map[string]string{keyRewrite: "/"})
	waitIngressEvent(t, ns, "web", corev1.EventTypeNormal, "Unwired", keyAuthURL, keyCookie, keyHeaders, keySignin)
}

func TestIngressUnwiredWhenPolicyDeleted(t *testing.T) {
	ns := env.Namespace(t, "ingress-deleted")
	startIngressController(t, ns)
	p := wiringPolicy(ns)
	create(t, p, nginxIngress(ns, "web", map[string]string{keyPolicy: "shop", keyRewrite: "/"}))
	waitAnnotations(t, ns, "web", wiredIn(ns, map[string]string{keyRewrite: "/"}))

	if err := env.Client.Delete(context.Background(), p); err != nil {
		t.Fatalf("deleting the policy: %v", err)
	}
	waitAnnotations(t, ns, "web", map[string]string{keyPolicy: "shop", keyRewrite: "/"})
	// The note is not checked: a PolicyNotFound event from before the policy reached the cache may
	// be the one the recorder keeps, counting this one as a repeat.
	waitIngressEvent(t, ns, "web", corev1.EventTypeWarning, "PolicyNotFound")

	// The policy coming back wires the Ingress again.
	create(t, wiringPolicy(ns))
	waitAnnotations(t, ns, "web", wiredIn(ns, map[string]string{keyRewrite: "/"}))
}

func TestIngressConflict(t *testing.T) {
	ns := env.Namespace(t, "ingress-conflict")
	startIngressController(t, ns)
	const mine = "http://my-auth.example.com/check"
	ing := nginxIngress(ns, "web", map[string]string{keyPolicy: "shop", keyAuthURL: mine})
	create(t, wiringPolicy(ns), ing)

	want := wiredIn(ns, map[string]string{keyAuthURL: mine, keyManaged: keyCookie + "," + keyHeaders + "," + keySignin})
	waitAnnotations(t, ns, "web", want)
	waitIngressEvent(t, ns, "web", corev1.EventTypeWarning, authgatev1.ReasonAnnotationConflict, keyAuthURL, "remove them")

	// The person's auth-url survives the policy going away; authgate's keys do not.
	patchObject(t, ing, func() { delete(ing.Annotations, keyPolicy) })
	waitAnnotations(t, ns, "web", map[string]string{keyAuthURL: mine})

	// Once the person removes theirs and names the policy again, authgate manages every key.
	patchObject(t, ing, func() {
		delete(ing.Annotations, keyAuthURL)
		ing.Annotations[keyPolicy] = "shop"
	})
	waitAnnotations(t, ns, "web", wiredIn(ns, nil))
}

func TestIngressInvalidPolicyName(t *testing.T) {
	ns := env.Namespace(t, "ingress-invalid")
	startIngressController(t, ns)
	ing := nginxIngress(ns, "web", map[string]string{keyPolicy: "shop"})
	create(t, wiringPolicy(ns), ing)
	waitAnnotations(t, ns, "web", wiredIn(ns, nil))

	patchObject(t, ing, func() { ing.Annotations[keyPolicy] = "Shop/Policy" })
	waitAnnotations(t, ns, "web", map[string]string{keyPolicy: "Shop/Policy"})
	waitIngressEvent(t, ns, "web", corev1.EventTypeWarning, "InvalidPolicyName", `"Shop/Policy"`)
}
