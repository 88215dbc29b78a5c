package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/testenv"
)

// editsPerRound is how many policy edits a round of BenchmarkPolicyEditEnforced makes.
const editsPerRound = 30

// BenchmarkPolicyEditEnforced measures how long an edit of an AuthPolicy takes to be enforced by
// a webhook in cluster mode: from the API server accepting the Update to the first check that
// answers by the new rule. Each edit flips the one rule between Public (an anonymous check is a
// 200) and Session (a 401), so every edit changes the answer and none can pass for the one before.
// The webhook runs with the generated webhook RBAC, as TestClusterReplicasEnforceEdits runs it.
// Target: p99 within a second.
//
// Checks are polled every 2 ms, so each figure may be late by up to that plus one check. Each
// b.Loop iteration is a round of editsPerRound edits, and the percentiles are over every edit of
// every round: -benchtime 1x gives them over one round. Metrics: p50-ms, p99-ms and max-ms.
func BenchmarkPolicyEditEnforced(b *testing.B) {
	ctx := context.Background()
	ns := env.Namespace(b, "edits")
	host := "app." + ns + ".example.com"
	url := "https://" + host + "/orders"
	ref := ns + "/app"

	// Session mode needs a login directory, even though no one logs in here.
	createUsers(b, ns)

	opts := clusterOptions(b, env.UserWithRoles(b, "authgate-webhook-"+ns, ns, testenv.RoleFile("webhook/role.yaml")))
	clusterReady(b, startRun(b, opts), opts.HTTPAddr)

	// The session and login settings stay while the rule flips, so that each edit changes the
	// rule's mode and nothing else.
	p := &authgatev1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: authgatev1.AuthPolicySpec{
			Hosts:   []authgatev1.HostPattern{authgatev1.HostPattern(host)},
			Rules:   []authgatev1.Rule{{Name: "app", Match: authgatev1.RouteMatch{PathPrefix: "/"}, Mode: authgatev1.ModePublic}},
			Session: &authgatev1.SessionConfig{},
			Login:   &authgatev1.LoginConfig{UsersSecretRef: &authgatev1.SecretReference{Name: "users"}},
		},
	}
	if err := env.Client.Create(ctx, p); err != nil {
		b.Fatal(err)
	}
	testenv.Eventually(b, 30*time.Second, func() string {
		if status, body := nginxCheck(b, opts.HTTPAddr, ref, url); status != http.StatusOK {
			return fmt.Sprintf("before the first edit: %d %q, want 200", status, body)
		}
		return ""
	})

	var lat []time.Duration
	for b.Loop() {
		for range editsPerRound {
			// Nothing else writes the policy: Update leaves p at the stored resourceVersion, so
			// the next edit needs no Get.
			want := http.StatusOK
			if p.Spec.Rules[0].Mode == authgatev1.ModePublic {
				p.Spec.Rules[0].Mode, want = authgatev1.ModeSession, http.StatusUnauthorized
			} else {
				p.Spec.Rules[0].Mode = authgatev1.ModePublic
			}
			if err := env.Client.Update(ctx, p); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, untilAnswered(b, opts.HTTPAddr, ref, url, want))
		}
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
}

// untilAnswered polls the webhook on addr every 2 ms until an anonymous check of url under policy
// answers want, and returns how long that took from the call. It fails after 30 s.
func untilAnswered(b *testing.B, addr, policy, url string, want int) time.Duration {
	b.Helper()
	start := time.Now()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		status, body := nginxCheck(b, addr, policy, url)
		if status == want {
			return time.Since(start)
		}
		select {
		case <-tick.C:
		case <-deadline:
			b.Fatalf("the edit was not enforced within 30s: the check answers %d %q, want %d", status, body, want)
		}
	}
}
