package policy_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/policy"
)

// public builds a compiled policy of Public rules, enough to test routing.
func public(t *testing.T, name string, age time.Duration, hosts []authgatev1.HostPattern, rules ...authgatev1.Rule) *policy.Policy {
	t.Helper()
	p := &authgatev1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(-age))},
		Spec:       authgatev1.AuthPolicySpec{Hosts: hosts, Rules: rules},
	}
	c, err := policy.Compile(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rule(name, prefix, path string, methods ...authgatev1.HTTPMethod) authgatev1.Rule {
	return authgatev1.Rule{Name: name, Mode: authgatev1.ModePublic, Match: authgatev1.RouteMatch{PathPrefix: prefix, Path: path, Methods: methods}}
}

func TestRoute(t *testing.T) {
	shop := public(t, "shop", time.Hour, []authgatev1.HostPattern{"shop.example.com"},
		rule("login", "", "/login"),
		rule("api-read", "/api/", "", "GET"),
		rule("api-write", "/api/", "", "POST", "DELETE"),
		rule("admin", "/admin", ""),
		rule("static", "/static/", ""),
	)
	newer := public(t, "newer", time.Minute, []authgatev1.HostPattern{"shop.example.com"},
		rule("admin", "/admin/", ""), rule("rest", "/", ""))
	wild := public(t, "wild", 2*time.Hour, []authgatev1.HostPattern{"*.example.com"}, rule("all", "/", ""))
	snap := policy.NewSnapshot([]*policy.Policy{newer, wild, shop})

	cases := map[string]struct {
		host, method, rawPath string
		policy, rule          string // empty policy: no match
	}{
		"exact path":                 {"shop.example.com", "GET", "/login", "shop", "login"},
		"exact path, trailing slash": {"shop.example.com", "GET", "/login/", "newer", "rest"},
		"prefix by method":           {"shop.example.com", "POST", "/api/orders", "shop", "api-write"},
		"GET rule takes HEAD":        {"shop.example.com", "HEAD", "/api/orders", "shop", "api-read"},
		"lower-case method":          {"shop.example.com", "get", "/api", "shop", "api-read"},
		"method in no rule":          {"shop.example.com", "PUT", "/api/orders", "newer", "rest"},
		"older policy first":         {"shop.example.com", "GET", "/admin/users", "shop", "admin"},
		"prefix is element-wise":     {"shop.example.com", "GET", "/administrator", "newer", "rest"},
		"dot-segments":               {"shop.example.com", "GET", "/static/../admin", "shop", "admin"},
		"encoded letters":            {"shop.example.com", "GET", "/%61dmin", "shop", "admin"},
		"double slash":               {"shop.example.com", "GET", "//admin", "shop", "admin"},
		"upper case":                 {"shop.example.com", "GET", "/ADMIN", "shop", "admin"},
		"path parameter":             {"shop.example.com", "GET", "/static/..;/admin", "shop", "admin"},
		"wildcard host":              {"a.example.com", "GET", "/x", "wild", "all"},
		"wildcard is one label":      {"a.b.example.com", "GET", "/x", "", ""},
		"wildcard needs a label":     {"example.com", "GET", "/x", "", ""},
		"exact host hides wildcard":  {"shop.example.com", "GET", "/anything", "newer", "rest"},
		"unknown host":               {"other.test", "GET", "/", "", ""},
		"host normalized by caller":  {"shop.example.com", "GET", "/static/app.css", "shop", "static"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path, err := policy.NormalizePath(tc.rawPath)
			if err != nil {
				t.Fatal(err)
			}
			p, r, ok := snap.Route(tc.host, tc.method, path)
			if tc.policy == "" {
				if ok {
					t.Fatalf("routed to %s rule %s, want no match", p.Ref(), r.Name())
				}
				return
			}
			if !ok || p.Ref().Name != tc.policy || r.Name() != tc.rule {
				got := "nothing"
				if ok {
					got = p.Ref().Name + "/" + r.Name()
				}
				t.Fatalf("routed to %s, want %s/%s", got, tc.policy, tc.rule)
			}
		})
	}
	if got, ok := snap.Get(policy.Ref{Namespace: "ns", Name: "wild"}); !ok || got != wild {
		t.Error("Get by ref failed")
	}
	if snap.Len() != 3 {
		t.Errorf("Len = %d, want 3", snap.Len())
	}
}

func TestRoleCheck(t *testing.T) {
	r := authgatev1.Rule{Name: "r", Mode: authgatev1.ModeSession, RequireRoles: []authgatev1.Role{"admin", "editor"}}
	p := &authgatev1.AuthPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: authgatev1.AuthPolicySpec{
		Rules: []authgatev1.Rule{r, {Name: "open", Mode: authgatev1.ModeSession}}, Session: &authgatev1.SessionConfig{},
		Login: &authgatev1.LoginConfig{UsersSecretRef: &authgatev1.SecretReference{Name: "u"}},
	}}
	c, err := policy.Compile(p, map[string]map[string][]byte{"u": {"users.yaml": []byte("[]")}})
	if err != nil {
		t.Fatal(err)
	}
	rules := []*policy.Rule{}
	for x := range c.Rules() {
		rules = append(rules, x)
	}
	cases := []struct {
		roles []string
		want  bool
	}{{nil, false}, {[]string{"viewer"}, false}, {[]string{"viewer", "editor"}, true}, {[]string{"Admin"}, false}, {[]string{"admin"}, true}}
	for _, tc := range cases {
		if got := rules[0].Allows(tc.roles); got != tc.want {
			t.Errorf("Allows(%v) = %v, want %v", tc.roles, got, tc.want)
		}
	}
	if !rules[1].Allows(nil) || rules[1].RequiresRoles() {
		t.Error("a rule without roles must let every identity through")
	}
}

func TestParseRef(t *testing.T) {
	for in, ok := range map[string]bool{"shop/shop": true, "a/b.c": true, "shop": false, "/shop": false, "shop/": false, "Shop/x": false, "a/b/c": false} {
		if _, err := policy.ParseRef(in); (err == nil) != ok {
			t.Errorf("ParseRef(%q) error = %v, want ok=%v", in, err, ok)
		}
	}
}
