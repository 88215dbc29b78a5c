package policy_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/policy"
)

// claimant builds a policy created at minute age (smaller is older) with one rule per match.
func claimant(t *testing.T, name string, age int, hosts []authgatev1.HostPattern, matches ...authgatev1.RouteMatch) *policy.Claims {
	t.Helper()
	p := &authgatev1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns",
			CreationTimestamp: metav1.NewTime(time.Date(2026, 11, 29, 0, age, 0, 0, time.UTC))},
		Spec: authgatev1.AuthPolicySpec{Hosts: hosts},
	}
	for i, m := range matches {
		p.Spec.Rules = append(p.Spec.Rules, authgatev1.Rule{Name: "r" + string(rune('a'+i)), Match: m, Mode: authgatev1.ModePublic})
	}
	c, err := policy.ClaimsOf(p)
	if err != nil {
		t.Fatalf("ClaimsOf(%s): %v", name, err)
	}
	return c
}

func TestConflicts(t *testing.T) {
	host := []authgatev1.HostPattern{"shop.example.com"}
	prefix := func(p string, methods ...authgatev1.HTTPMethod) authgatev1.RouteMatch {
		return authgatev1.RouteMatch{PathPrefix: p, Methods: methods}
	}
	exact := func(p string) authgatev1.RouteMatch { return authgatev1.RouteMatch{Path: p} }
	tests := map[string]struct {
		newer      *policy.Claims
		older      *policy.Claims
		want       bool
		wantDetail string
	}{
		"same prefix": {
			older: claimant(t, "a", 1, host, prefix("/api/")), newer: claimant(t, "b", 2, host, prefix("/api")),
			want: true, wantDetail: "AuthPolicy ns/a, which is older, already claims host shop.example.com path prefix /api (its rule ra; this policy's rule ra)",
		},
		"case and trailing slash fold": {
			older: claimant(t, "a", 1, host, prefix("/API/")), newer: claimant(t, "b", 2, host, prefix("/api")), want: true,
		},
		"same exact path":            {older: claimant(t, "a", 1, host, exact("/login")), newer: claimant(t, "b", 2, host, exact("/login")), want: true},
		"exact and prefix differ":    {older: claimant(t, "a", 1, host, exact("/api")), newer: claimant(t, "b", 2, host, prefix("/api"))},
		"different prefixes":         {older: claimant(t, "a", 1, host, prefix("/")), newer: claimant(t, "b", 2, host, prefix("/api/"))},
		"both every path":            {older: claimant(t, "a", 1, host, authgatev1.RouteMatch{}), newer: claimant(t, "b", 2, host, authgatev1.RouteMatch{}), want: true},
		"disjoint methods":           {older: claimant(t, "a", 1, host, prefix("/api/", "GET")), newer: claimant(t, "b", 2, host, prefix("/api/", "POST"))},
		"GET overlaps HEAD":          {older: claimant(t, "a", 1, host, prefix("/api/", "GET")), newer: claimant(t, "b", 2, host, prefix("/api/", "HEAD")), want: true},
		"any method overlaps":        {older: claimant(t, "a", 1, host, prefix("/api/", "DELETE")), newer: claimant(t, "b", 2, host, prefix("/api/")), want: true},
		"other host":                 {older: claimant(t, "a", 1, host, prefix("/")), newer: claimant(t, "b", 2, []authgatev1.HostPattern{"api.example.com"}, prefix("/"))},
		"wildcard is its own host":   {older: claimant(t, "a", 1, []authgatev1.HostPattern{"*.example.com"}, prefix("/")), newer: claimant(t, "b", 2, host, prefix("/"))},
		"same wildcard":              {older: claimant(t, "a", 1, []authgatev1.HostPattern{"*.example.com"}, prefix("/")), newer: claimant(t, "b", 2, []authgatev1.HostPattern{"*.example.com"}, prefix("/")), want: true},
		"no hosts claim nothing":     {older: claimant(t, "a", 1, nil, prefix("/")), newer: claimant(t, "b", 2, nil, prefix("/"))},
		"the older never conflicts":  {older: claimant(t, "b", 2, host, prefix("/")), newer: claimant(t, "a", 1, host, prefix("/"))},
		"same age: name breaks ties": {older: claimant(t, "a", 1, host, prefix("/")), newer: claimant(t, "b", 1, host, prefix("/")), want: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := policy.FindConflict(tc.newer, []*policy.Claims{tc.older, tc.newer})
			if ok != tc.want {
				t.Fatalf("conflict %v (%v), want %v", ok, got, tc.want)
			}
			if tc.wantDetail != "" && got.String() != tc.wantDetail {
				t.Errorf("conflict\n got %s\nwant %s", got, tc.wantDetail)
			}
			// The older policy keeps its route whichever way round the question is asked.
			if c, ok := policy.FindConflict(tc.older, []*policy.Claims{tc.newer}); ok && tc.want {
				t.Errorf("the older policy conflicts: %v", c)
			}
			all := policy.Conflicts([]*policy.Claims{tc.newer, tc.older})
			if _, ok := all[tc.newer.Ref()]; ok != tc.want || len(all) > 1 && tc.want {
				t.Errorf("Conflicts = %v", all)
			}
		})
	}
}

// TestConflictsAgainstAnyOlder: a policy conflicts with an older one even when that one is itself
// conflicted, so the outcome for a policy depends only on the policies created before it.
func TestConflictsAgainstAnyOlder(t *testing.T) {
	host := []authgatev1.HostPattern{"shop.example.com"}
	a := claimant(t, "a", 1, host, authgatev1.RouteMatch{PathPrefix: "/x/"})
	b := claimant(t, "b", 2, host, authgatev1.RouteMatch{PathPrefix: "/x/"}, authgatev1.RouteMatch{PathPrefix: "/y/"})
	c := claimant(t, "c", 3, host, authgatev1.RouteMatch{PathPrefix: "/y/"})
	got := policy.Conflicts([]*policy.Claims{c, b, a})
	if len(got) != 2 || got[b.Ref()].With != a.Ref() || got[c.Ref()].With != b.Ref() {
		t.Fatalf("Conflicts = %v", got)
	}
}

func TestClaimsOfIgnoresSecrets(t *testing.T) {
	p := &authgatev1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns"},
		Spec: authgatev1.AuthPolicySpec{
			Hosts:   []authgatev1.HostPattern{"shop.example.com"},
			Rules:   []authgatev1.Rule{{Name: "app", Mode: authgatev1.ModeSession}},
			Session: &authgatev1.SessionConfig{},
			Login:   &authgatev1.LoginConfig{UsersSecretRef: &authgatev1.SecretReference{Name: "missing"}},
		},
	}
	c, err := policy.ClaimsOf(p)
	if err != nil {
		t.Fatalf("a missing Secret kept the claims from being read: %v", err)
	}
	if got := c.Hosts(); len(got) != 1 || got[0] != "shop.example.com" {
		t.Errorf("hosts %v", got)
	}
	p.Spec.Rules[0].Match.PathPrefix = "no-slash"
	if _, err := policy.ClaimsOf(p); err == nil || !strings.Contains(err.Error(), "spec.rules[0].match.pathPrefix") {
		t.Errorf("an invalid spec claimed routes: %v", err)
	}
}
