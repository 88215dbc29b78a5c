package controller_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/controller"
)

const (
	wiringWebhookURL = "http://authgate-webhook.authgate.svc.cluster.local:8080"
	keyAuthURL       = controller.AnnotationAuthURL
	keySignin        = controller.AnnotationAuthSignin
	keyHeaders       = controller.AnnotationAuthResponseHeaders
	keyCookie        = controller.AnnotationAuthAlwaysSetCookie
	keyManaged       = authgatev1.ManagedAnnotationsAnnotation
	keyPolicy        = authgatev1.PolicyAnnotation
	keyRewrite       = "nginx.ingress.kubernetes.io/rewrite-target"
)

// wiringPolicy is a valid policy in ns whose only rule needs a session, so browsers log in.
func wiringPolicy(ns string) *authgatev1.AuthPolicy {
	return &authgatev1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns},
		Spec: authgatev1.AuthPolicySpec{
			Hosts:           []authgatev1.HostPattern{"shop.example.com"},
			Rules:           []authgatev1.Rule{{Name: "app", Match: authgatev1.RouteMatch{PathPrefix: "/"}, Mode: authgatev1.ModeSession}},
			Session:         &authgatev1.SessionConfig{},
			Login:           &authgatev1.LoginConfig{UsersSecretRef: &authgatev1.SecretReference{Name: "shop-users"}},
			IdentityHeaders: map[string]authgatev1.ClaimName{"X-User-Id": "sub"},
		},
	}
}

// wiringPolicyWith returns wiringPolicy("shop") changed by mutate.
func wiringPolicyWith(mutate func(p *authgatev1.AuthPolicy)) *authgatev1.AuthPolicy {
	p := wiringPolicy("shop")
	mutate(p)
	return p
}

// wiringIngress is an Ingress in namespace shop with annotations.
func wiringIngress(annotations map[string]string) *networkingv1.Ingress {
	return &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Annotations: annotations}}
}

// wiredAnnotations is the complete annotation set of an Ingress wired to wiringPolicy("shop"), with
// loginURL as its auth-signin, changed by extra (a value "" deletes a key); the managed-annotations
// record lists the auth keys left unless extra sets it.
func wiredAnnotations(loginURL string, extra map[string]string) map[string]string {
	a := map[string]string{
		keyPolicy:  "shop",
		keyAuthURL: wiringWebhookURL + "/check/nginx?policy=shop/shop",
		keyHeaders: "X-User-Id",
		keyCookie:  "true",
	}
	if loginURL != "" {
		a[keySignin] = loginURL
	}
	for k, v := range extra {
		if v == "" {
			delete(a, k)
		} else {
			a[k] = v
		}
	}
	if _, ok := extra[keyManaged]; !ok {
		a[keyManaged] = managedRecord(a)
	}
	return a
}

// managedRecord is the managed-annotations record for the auth keys present in a.
func managedRecord(a map[string]string) string {
	var keys []string
	for _, k := range []string{keyAuthURL, keySignin, keyHeaders, keyCookie} {
		if _, ok := a[k]; ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return strings.Join(keys, ",")
}

// annotationsDiff describes how got differs from want, or "".
func annotationsDiff(got, want map[string]string) string {
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s missing (want %q)", k, want[k]))
		} else if g != want[k] {
			diffs = append(diffs, fmt.Sprintf("%s = %q, want %q", k, g, want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s = %q unexpected", k, got[k]))
		}
	}
	return strings.Join(diffs, "; ")
}

func TestPlan(t *testing.T) {
	const shopLogin = "https://auth.example.com/auth/login?policy=shop/shop"
	base := controller.Wiring{WebhookURL: wiringWebhookURL}
	withLogin := controller.Wiring{WebhookURL: wiringWebhookURL, LoginURL: "https://login.example.com/auth/login"}
	person := map[string]string{keyPolicy: "shop", keyRewrite: "/"}

	tests := map[string]struct {
		wiring      controller.Wiring
		annotations map[string]string
		policy      *authgatev1.AuthPolicy
		want        map[string]string
		changed     bool
		conflicts   []string
		removed     []string
	}{
		"fresh Ingress gets every key and the record": {
			wiring:      withLogin,
			annotations: person,
			policy:      wiringPolicy("shop"),
			want:        wiredAnnotations("https://login.example.com/auth/login?policy=shop/shop", map[string]string{keyRewrite: "/"}),
			changed:     true,
		},
		"webhook URL with a trailing slash": {
			wiring:      controller.Wiring{WebhookURL: wiringWebhookURL + "/"},
			annotations: map[string]string{keyPolicy: "shop"},
			policy:      wiringPolicy("shop"),
			want:        wiredAnnotations("", nil),
			changed:     true,
		},
		"no browser rules: no auth-signin even with a login URL": {
			wiring:      withLogin,
			annotations: map[string]string{keyPolicy: "shop"},
			policy: wiringPolicyWith(func(p *authgatev1.AuthPolicy) {
				p.Spec.Rules[0].Mode = authgatev1.ModeJWT
				p.Spec.Login.URL = "https://auth.example.com/auth/login"
			}),
			want:    wiredAnnotations("", nil),
			changed: true,
		},
		"Either is a browser rule": {
			wiring:      withLogin,
			annotations: map[string]string{keyPolicy: "shop"},
			policy: wiringPolicyWith(func(p *authgatev1.AuthPolicy) {
				p.Spec.Rules = append([]authgatev1.Rule{{Name: "api", Mode: authgatev1.ModeJWT}}, authgatev1.Rule{Name: "app", Mode: authgatev1.ModeEither})
			}),
			want:    wiredAnnotations("https://login.example.com/auth/login?policy=shop/shop", nil),
			changed: true,
		},
		"the policy's login URL beats the operator's": {
			wiring:      withLogin,
			annotations: map[string]string{keyPolicy: "shop"},
			policy:      wiringPolicyWith(func(p *authgatev1.AuthPolicy) { p.Spec.Login.URL = "https://auth.example.com/auth/login" }),
			want:        wiredAnnotations(shopLogin, nil),
			changed:     true,
		},
		"login URL query kept, its policy replaced, fragment dropped": {
			wiring:      base,
			annotations: map[string]string{keyPolicy: "shop"},
			policy: wiringPolicyWith(func(p *authgatev1.AuthPolicy) {
				p.Spec.Login.URL = "https://auth.example.com/auth/login?theme=dark&policy=other/x#top"
			}),
			want:    wiredAnnotations("https://auth.example.com/auth/login?theme=dark&policy=shop/shop", nil),
			changed: true,
		},
		"no login URL anywhere: no auth-signin": {
			wiring:      base,
			annotations: map[string]string{keyPolicy: "shop"},
			policy:      wiringPolicy("shop"),
			want:        wiredAnnotations("", nil),
			changed:     true,
		},
		"no identity headers: no auth-response-headers": {
			wiring:      base,
			annotations: map[string]string{keyPolicy: "shop"},
			policy:      wiringPolicyWith(func(p *authgatev1.AuthPolicy) { p.Spec.IdentityHeaders = nil }),
			want:        wiredAnnotations("", map[string]string{keyHeaders: ""}),
			changed:     true,
		},
		"identity headers canonical and sorted": {
			wiring:      base,
			annotations: map[string]string{keyPolicy: "shop"},
			policy: wiringPolicyWith(func(p *authgatev1.AuthPolicy) {
				p.Spec.IdentityHeaders = map[string]authgatev1.ClaimName{"x-user-role": "roles", "X-USER-EMAIL": "email", "x-user-id": "sub"}
			}),
			want:    wiredAnnotations("", map[string]string{keyHeaders: "X-User-Email,X-User-Id,X-User-Role"}),
			changed: true,
		},
		"identity headers changed: updated": {
			wiring:      base,
			annotations: wiredAnnotations("", map[string]string{keyRewrite: "/"}),
			policy: wiringPolicyWith(func(p *authgatev1.AuthPolicy) {
				p.Spec.IdentityHeaders["X-User-Email"] = "email"
			}),
			want:    wiredAnnotations("", map[string]string{keyRewrite: "/", keyHeaders: "X-User-Email,X-User-Id"}),
			changed: true,
		},
		"identity headers gone: managed key removed": {
			wiring:      base,
			annotations: wiredAnnotations("", nil),
			policy:      wiringPolicyWith(func(p *authgatev1.AuthPolicy) { p.Spec.IdentityHeaders = nil }),
			want:        wiredAnnotations("", map[string]string{keyHeaders: ""}),
			changed:     true,
			removed:     []string{keyHeaders},
		},
		"browser rules gone: auth-signin removed": {
			wiring:      base,
			annotations: wiredAnnotations(shopLogin, nil),
			policy: wiringPolicyWith(func(p *authgatev1.AuthPolicy) {
				p.Spec.Rules[0].Mode = authgatev1.ModePublic
				p.Spec.Login.URL = "https://auth.example.com/auth/login"
			}),
			want:    wiredAnnotations("", nil),
			changed: true,
			removed: []string{keySignin},
		},
		"already wiredAnnotations: nothing to do": {
			wiring:      withLogin,
			annotations: wiredAnnotations("https://login.example.com/auth/login?policy=shop/shop", map[string]string{keyRewrite: "/"}),
			policy:      wiringPolicy("shop"),
			want:        wiredAnnotations("https://login.example.com/auth/login?policy=shop/shop", map[string]string{keyRewrite: "/"}),
		},
		"managed key deleted by hand is put back": {
			wiring:      base,
			annotations: wiredAnnotations("", map[string]string{keyCookie: "", keyManaged: keyCookie + "," + keyHeaders + "," + keyAuthURL}),
			policy:      wiringPolicy("shop"),
			want:        wiredAnnotations("", nil),
			changed:     true,
		},
		"auth-url set by a person: conflict, left alone, the rest applied": {
			wiring:      base,
			annotations: map[string]string{keyPolicy: "shop", keyAuthURL: "http://mine.example.com/auth"},
			policy:      wiringPolicy("shop"),
			want: map[string]string{
				keyPolicy:  "shop",
				keyAuthURL: "http://mine.example.com/auth",
				keyHeaders: "X-User-Id",
				keyCookie:  "true",
				keyManaged: keyCookie + "," + keyHeaders,
			},
			changed:   true,
			conflicts: []string{keyAuthURL},
		},
		"a person's value equal to authgate's is still the person's": {
			wiring: base,
			annotations: map[string]string{
				keyPolicy: "shop", keyAuthURL: wiringWebhookURL + "/check/nginx?policy=shop/shop",
				keyHeaders: "X-User-Id", keyCookie: "true",
			},
			policy: wiringPolicy("shop"),
			want: map[string]string{
				keyPolicy: "shop", keyAuthURL: wiringWebhookURL + "/check/nginx?policy=shop/shop",
				keyHeaders: "X-User-Id", keyCookie: "true",
			},
			conflicts: []string{keyCookie, keyHeaders, keyAuthURL},
		},
		"policy gone: exactly the managed keys removed": {
			wiring:      base,
			annotations: wiredAnnotations(shopLogin, map[string]string{keyRewrite: "/"}),
			want:        map[string]string{keyPolicy: "shop", keyRewrite: "/"},
			changed:     true,
			removed:     []string{keyCookie, keyHeaders, keySignin, keyAuthURL},
		},
		"policy annotation removed: a person's auth key stays": {
			wiring: base,
			annotations: map[string]string{
				keyAuthURL: "http://mine.example.com/auth", keyHeaders: "X-User-Id", keyCookie: "true",
				keyManaged: keyCookie + "," + keyHeaders, keyRewrite: "/",
			},
			want:    map[string]string{keyAuthURL: "http://mine.example.com/auth", keyRewrite: "/"},
			changed: true,
			removed: []string{keyCookie, keyHeaders},
		},
		"record naming keys authgate never sets removes none of them": {
			wiring: base,
			annotations: map[string]string{
				keyRewrite: "/", keyCookie: "true",
				keyManaged: keyRewrite + ", " + keyCookie + ",," + keyPolicy,
			},
			want:    map[string]string{keyRewrite: "/"},
			changed: true,
			removed: []string{keyCookie},
		},
		"record listing keys already gone": {
			wiring:      base,
			annotations: map[string]string{keyManaged: keyAuthURL},
			want:        map[string]string{},
			changed:     true,
		},
		"no annotations, no policy": {
			wiring: base,
			want:   map[string]string{},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ing := wiringIngress(tc.annotations)
			before := ing.DeepCopy()
			plan := tc.wiring.Plan(ing, tc.policy)
			if !equality.Semantic.DeepEqual(ing, before) {
				t.Errorf("Plan modified the Ingress")
			}
			if d := annotationsDiff(plan.Annotations, tc.want); d != "" {
				t.Errorf("annotations: %s", d)
			}
			if plan.Changed != tc.changed {
				t.Errorf("Changed = %t, want %t", plan.Changed, tc.changed)
			}
			if !slices.Equal(plan.Conflicts, tc.conflicts) {
				t.Errorf("Conflicts = %q, want %q", plan.Conflicts, tc.conflicts)
			}
			if !slices.Equal(plan.Removed, tc.removed) {
				t.Errorf("Removed = %q, want %q", plan.Removed, tc.removed)
			}

			// Planning the planned Ingress again changes nothing and finds the same conflicts.
			again := tc.wiring.Plan(wiringIngress(plan.Annotations), tc.policy)
			if again.Changed || len(again.Removed) > 0 {
				t.Errorf("second plan: Changed %t, Removed %q; want no change (%s)", again.Changed, again.Removed,
					annotationsDiff(again.Annotations, plan.Annotations))
			}
			if !slices.Equal(again.Conflicts, plan.Conflicts) {
				t.Errorf("second plan: Conflicts = %q, want %q", again.Conflicts, plan.Conflicts)
			}
		})
	}
}

func TestPlanNilIngress(t *testing.T) {
	plan := controller.Wiring{WebhookURL: wiringWebhookURL}.Plan(nil, wiringPolicy("shop"))
	if plan.Changed || len(plan.Annotations) > 0 {
		t.Errorf("Plan(nil) = %+v, want an empty plan", plan)
	}
}

func TestWiringValidate(t *testing.T) {
	tests := map[string]struct {
		wiring controller.Wiring
		err    string // substring; "" means valid
	}{
		"service URL with a port":      {wiring: controller.Wiring{WebhookURL: wiringWebhookURL}},
		"https with a trailing slash":  {wiring: controller.Wiring{WebhookURL: "https://authgate.example.com/"}},
		"with a login URL":             {wiring: controller.Wiring{WebhookURL: wiringWebhookURL, LoginURL: "https://auth.example.com/auth/login"}},
		"login URL with a query":       {wiring: controller.Wiring{WebhookURL: wiringWebhookURL, LoginURL: "https://auth.example.com/auth/login?theme=dark"}},
		"no webhook URL":               {wiring: controller.Wiring{}, err: "--webhook-url is required"},
		"webhook URL without a scheme": {wiring: controller.Wiring{WebhookURL: "authgate:8080"}, err: "--webhook-url"},
		"webhook URL relative":         {wiring: controller.Wiring{WebhookURL: "/check"}, err: "--webhook-url"},
		"webhook URL of another scheme": {
			wiring: controller.Wiring{WebhookURL: "grpc://authgate:9000"}, err: "--webhook-url",
		},
		"webhook URL without a host": {wiring: controller.Wiring{WebhookURL: "http://:8080"}, err: "--webhook-url"},
		"webhook URL with a path":    {wiring: controller.Wiring{WebhookURL: wiringWebhookURL + "/check/nginx"}, err: "--webhook-url"},
		"webhook URL with a query":   {wiring: controller.Wiring{WebhookURL: wiringWebhookURL + "?policy=a/b"}, err: "--webhook-url"},
		"webhook URL with an empty query": {
			wiring: controller.Wiring{WebhookURL: wiringWebhookURL + "?"}, err: "--webhook-url",
		},
		"webhook URL with a fragment": {wiring: controller.Wiring{WebhookURL: wiringWebhookURL + "#x"}, err: "--webhook-url"},
		"webhook URL with credentials": {
			wiring: controller.Wiring{WebhookURL: "http://user:pass@authgate:8080"}, err: "--webhook-url",
		},
		"webhook URL that does not parse": {wiring: controller.Wiring{WebhookURL: "http://[::1"}, err: "--webhook-url"},
		"login URL relative": {
			wiring: controller.Wiring{WebhookURL: wiringWebhookURL, LoginURL: "/auth/login"}, err: "--login-url",
		},
		"login URL of another scheme": {
			wiring: controller.Wiring{WebhookURL: wiringWebhookURL, LoginURL: "javascript:alert(1)"}, err: "--login-url",
		},
		"login URL with a fragment": {
			wiring: controller.Wiring{WebhookURL: wiringWebhookURL, LoginURL: "https://auth.example.com/login#x"}, err: "--login-url",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.wiring.Validate()
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.err != "" && err == nil:
				t.Errorf("Validate() = nil, want an error with %q", tc.err)
			case tc.err != "" && !strings.Contains(err.Error(), tc.err):
				t.Errorf("Validate() = %v, want an error with %q", err, tc.err)
			}
		})
	}
}
