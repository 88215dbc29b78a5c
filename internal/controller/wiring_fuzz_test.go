package controller_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/controller"
)

// FuzzWiringPlan validates arbitrary --webhook-url and --login-url values and plans the
// annotations of an Ingress that carries an arbitrary managed-annotations record and one arbitrary
// annotation of a person's: a plan never touches an annotation authgate cannot manage, never
// overwrites one a person set, records exactly the keys it set, and planning its result again
// changes nothing.
func FuzzWiringPlan(f *testing.F) {
	f.Add(wiringWebhookURL, "https://auth.example.com/auth/login", "", "", "", "https://login.example.com/?a=b#frag", true)
	f.Add(wiringWebhookURL+"/", "", keyAuthURL+","+keySignin, keySignin, "https://mine.example.com", "", true)
	f.Add("http://user:pw@w:8080", "https://a/#x", "x, "+keyAuthURL+" ,,", keyPolicy, "other", "", true)
	f.Add("w:8080", "/auth/login", "", "", "", "", false)
	f.Add("http://w:8080/path?q", "http://%zz", strings.Join([]string{keyAuthURL, keySignin, keyHeaders, keyCookie}, ","), "custom/annotation", "v", "", false)
	f.Add("https://[::1]:8443", "https://auth.example.com/auth/login?policy=evil/x&rd=y", keyAuthURL, keyAuthURL, "http://evil/", "", true)
	f.Fuzz(func(t *testing.T, webhookURL, loginURL, record, key, value, policyLogin string, named bool) {
		w := controller.Wiring{WebhookURL: webhookURL, LoginURL: loginURL}
		if err := w.Validate(); err != nil {
			if !strings.HasPrefix(err.Error(), "--webhook-url") && !strings.HasPrefix(err.Error(), "--login-url") {
				t.Fatalf("Validate: error %q names no flag", err)
			}
			return
		}
		current := map[string]string{keyPolicy: "shop", authgatev1.ManagedAnnotationsAnnotation: record}
		if key != "" {
			current[key] = value
		}
		var p *authgatev1.AuthPolicy
		if named {
			p = wiringPolicyWith(func(p *authgatev1.AuthPolicy) { p.Spec.Login.URL = authgatev1.URL(policyLogin) })
		}
		plan := w.Plan(wiringIngress(maps.Clone(current)), p)
		desired := w.Desired(p)
		manageable := []string{keyAuthURL, keySignin, keyHeaders, keyCookie}
		var applied []string
		for k, v := range current {
			got, kept := plan.Annotations[k]
			switch {
			case k == authgatev1.ManagedAnnotationsAnnotation:
			case !slices.Contains(manageable, k) || slices.Contains(plan.Conflicts, k):
				if !kept || got != v {
					t.Fatalf("annotation %q = %q became %q (kept %v)", k, v, got, kept)
				}
			}
		}
		for k, v := range plan.Annotations {
			if _, was := current[k]; !was && k != authgatev1.ManagedAnnotationsAnnotation && desired[k] != v {
				t.Fatalf("the plan adds %q = %q, which authgate does not want", k, v)
			}
			if slices.Contains(manageable, k) && !slices.Contains(plan.Conflicts, k) && desired[k] == v {
				applied = append(applied, k)
			}
		}
		slices.Sort(applied)
		if got := plan.Annotations[authgatev1.ManagedAnnotationsAnnotation]; got != strings.Join(applied, ",") {
			t.Fatalf("the record is %q, but authgate set %q", got, applied)
		}
		if again := w.Plan(wiringIngress(plan.Annotations), p); again.Changed || !maps.Equal(again.Annotations, plan.Annotations) {
			t.Fatalf("planning the plan's annotations changes them again:\n%v\n%v", plan.Annotations, again.Annotations)
		}
		if u := desired[keyAuthURL]; named && u != strings.TrimSuffix(webhookURL, "/")+"/check/nginx?policy=shop/shop" {
			t.Fatalf("auth-url %q for webhook %q", u, webhookURL)
		}
	})
}
