package controller_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/controller"
	"github.com/authgate/authgate/internal/operator"
)

// BenchmarkThousandPoliciesReady creates 1000 AuthPolicies, with the reconciler running as the
// operator runs it by default (its workers and client rate limit), and reports how long it takes until every one is Ready, and the spread of the time from
// each policy's creation until its status said Ready. `make test` runs it once; `make bench` too.
func BenchmarkThousandPoliciesReady(b *testing.B) {
	const n = 1000
	for b.Loop() {
		ns := env.Namespace(b, "scale")
		cfg := rest.CopyConfig(env.Config)
		cfg.QPS, cfg.Burst = operator.DefaultKubeAPIQPS, operator.DefaultKubeAPIBurst
		startManagerWithConfig(b, cfg, []string{ns}, func(mgr ctrl.Manager) error {
			return (&controller.AuthPolicyReconciler{
				Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("authgate-operator"), MaxConcurrentReconciles: operator.DefaultWorkers,
				Wiring: controller.Wiring{WebhookURL: "http://authgate-webhook.authgate.svc:8080"},
			}).SetupWithManager(mgr)
		})
		ctx := context.Background()
		if err := env.Client.Create(ctx, usersSecret(ns)); err != nil {
			b.Fatal(err)
		}

		var mu sync.Mutex
		created := make(map[string]time.Time, n)
		start := time.Now()
		// Eight writers, as a GitOps tool applying a folder would.
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < n; i += 8 {
					name := fmt.Sprintf("app-%04d", i)
					p := sessionPolicy(ns, name, name+".example.com", "/")
					if err := env.Client.Create(ctx, p); err != nil {
						errs <- err
						return
					}
					mu.Lock()
					created[name] = time.Now()
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}

		readyAt := make(map[string]time.Time, n)
		deadline := start.Add(5 * time.Minute)
		for len(readyAt) < n {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d policies Ready after 5 minutes", len(readyAt), n)
			}
			list := &authgatev1.AuthPolicyList{}
			if err := env.Client.List(ctx, list, client.InNamespace(ns)); err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			for _, p := range list.Items {
				if _, seen := readyAt[p.Name]; !seen && meta.IsStatusConditionTrue(p.Status.Conditions, authgatev1.ConditionReady) {
					readyAt[p.Name] = now
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		total := time.Since(start)
		latencies := make([]time.Duration, 0, n)
		for name, at := range readyAt {
			latencies = append(latencies, at.Sub(created[name]))
		}
		slices.Sort(latencies)
		b.ReportMetric(total.Seconds(), "s-all-ready")
		b.ReportMetric(latencies[n/2].Seconds(), "s-p50-to-ready")
		b.ReportMetric(latencies[n*99/100].Seconds(), "s-p99-to-ready")
		b.Logf("%d AuthPolicies all Ready %s after the first was created; creation to Ready p50 %s, p99 %s, max %s",
			n, total.Round(time.Millisecond), latencies[n/2].Round(time.Millisecond), latencies[n*99/100].Round(time.Millisecond), latencies[n-1].Round(time.Millisecond))
	}
}
