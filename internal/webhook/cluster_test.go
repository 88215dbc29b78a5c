package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/testenv"
	"github.com/authgate/authgate/internal/webhook"
)

// env is the API server of the cluster-mode tests; the folder-mode tests ignore it.
var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &env))
}

// clusterOptions are the flags of a webhook in cluster mode, reaching the API server with cfg.
func clusterOptions(t testing.TB, cfg *rest.Config) webhook.Options {
	t.Helper()
	opts, err := webhook.ParseFlags([]string{
		"--http-addr", freeAddr(t), "--metrics-addr", "", "--grpc-addr", "", "--shutdown-timeout", "5s",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	opts.RestConfig = cfg
	return opts
}

// clusterReady waits until the webhook on addr is ready: its first snapshot is loaded.
func clusterReady(t testing.TB, r *run, addr string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() string {
		select {
		case <-r.done:
			t.Fatalf("Run returned before it was ready: %v", r.err)
		default:
		}
		resp, _, err := get(t, "http://"+addr+"/readyz", nil)
		if err != nil {
			return fmt.Sprintf("/readyz: %v", err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Sprintf("/readyz: %d", resp.StatusCode)
		}
		return ""
	})
}

// nginxCheck asks the webhook on addr, as ingress-nginx would, whether policy lets an anonymous
// GET of url through, and returns the status and body.
func nginxCheck(t testing.TB, addr, policy, url string) (int, string) {
	t.Helper()
	resp, body, err := get(t, "http://"+addr+"/check/nginx?policy="+policy, map[string]string{
		"X-Original-URL": url, "X-Original-Method": "GET",
	})
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, body
}

// TestClusterReplicasEnforceEdits runs two webhooks on one API server: a policy created, edited
// and deleted there is enforced by both, an edit within a second.
func TestClusterReplicasEnforceEdits(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "replicas")
	host := "app." + ns + ".example.com"
	url := "https://" + host + "/orders"
	ref := ns + "/app"

	createUsers(t, ns)

	// The replicas hold exactly the webhook's generated RBAC (config/rbac/webhook).
	asWebhook := env.UserWithRoles(t, "authgate-webhook-"+ns, ns, testenv.RoleFile("webhook/role.yaml"))
	var replicas []string
	for range 2 {
		opts := clusterOptions(t, asWebhook)
		r := startRun(t, opts)
		clusterReady(t, r, opts.HTTPAddr)
		replicas = append(replicas, opts.HTTPAddr)
	}
	every := func(want int, body string) func() string {
		return func() string {
			for i, addr := range replicas {
				if status, got := nginxCheck(t, addr, ref, url); status != want || !strings.Contains(got, body) {
					return fmt.Sprintf("replica %d answered %d %q, want %d with %q", i, status, got, want, body)
				}
			}
			return ""
		}
	}

	p := &authgatev1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: authgatev1.AuthPolicySpec{
			Hosts: []authgatev1.HostPattern{authgatev1.HostPattern(host)},
			Rules: []authgatev1.Rule{{Name: "app", Match: authgatev1.RouteMatch{PathPrefix: "/"}, Mode: authgatev1.ModePublic}},
		},
	}
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, every(http.StatusOK, ""))

	// The rule now asks for a session: an anonymous check is a 401 on every replica.
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "app"}, p); err != nil {
		t.Fatal(err)
	}
	p.Spec.Rules[0].Mode = authgatev1.ModeSession
	p.Spec.Session = &authgatev1.SessionConfig{}
	p.Spec.Login = &authgatev1.LoginConfig{UsersSecretRef: &authgatev1.SecretReference{Name: "users"}}
	if err := env.Client.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	updated := time.Now()
	latency := make([]time.Duration, len(replicas))
	var wg sync.WaitGroup
	for i, addr := range replicas {
		wg.Go(func() {
			deadline := updated.Add(30 * time.Second)
			for time.Now().Before(deadline) {
				if status, _ := nginxCheck(t, addr, ref, url); status == http.StatusUnauthorized {
					latency[i] = time.Since(updated)
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
			latency[i] = -1
		})
	}
	wg.Wait()
	for i, l := range latency {
		switch {
		case l < 0:
			t.Errorf("replica %d did not enforce the edit within 30s", i)
		case l > time.Second:
			t.Errorf("replica %d enforced the edit %v after the update, more than 1s", i, l)
		default:
			t.Logf("replica %d enforced the edit %v after the update", i, l)
		}
	}

	// Deleted, the policy is unknown: checks naming it are refused.
	if err := env.Client.Delete(ctx, p); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, every(http.StatusBadRequest, "unknown_policy"))
}

// gatedTransport holds every request to the API server until open is closed.
type gatedTransport struct {
	next http.RoundTripper
	open chan struct{}
}

func (g *gatedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	select {
	case <-g.open:
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	return g.next.RoundTrip(r)
}

// TestClusterServesHealthBeforePolicies: while the API server has not answered, the webhook is
// alive but not ready, and denies checks; once it answers, the webhook gets ready.
func TestClusterServesHealthBeforePolicies(t *testing.T) {
	gate := &gatedTransport{open: make(chan struct{})}
	var once sync.Once
	release := func() { once.Do(func() { close(gate.open) }) }
	t.Cleanup(release)
	cfg := rest.CopyConfig(env.Config)
	cfg.WrapTransport = func(next http.RoundTripper) http.RoundTripper {
		gate.next = next
		return gate
	}
	opts := clusterOptions(t, cfg)
	r := startRun(t, opts)
	base := "http://" + opts.HTTPAddr

	testenv.Eventually(t, 30*time.Second, func() string {
		resp, _, err := get(t, base+"/healthz", nil)
		if err != nil {
			return fmt.Sprintf("/healthz: %v", err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Sprintf("/healthz: %d", resp.StatusCode)
		}
		return ""
	})
	if resp, _, err := get(t, base+"/readyz", nil); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz before the first policies: %v %v, want 503", resp, err)
	}
	if status, body := nginxCheck(t, opts.HTTPAddr, "default/app", "https://app.example.com/"); status == http.StatusOK {
		t.Errorf("a check before the first policies: %d %q, want a denial", status, body)
	}

	release()
	clusterReady(t, r, opts.HTTPAddr)
}

// TestClusterRunFailsWithoutAPIServer: a webhook that cannot reach its API server stops, saying
// so, rather than waiting forever unready.
func TestClusterRunFailsWithoutAPIServer(t *testing.T) {
	cfg := rest.CopyConfig(env.Config)
	cfg.Host = "https://127.0.0.1:1"
	opts := clusterOptions(t, cfg)
	err := startRun(t, opts).wait(t, 30*time.Second)
	if err == nil {
		t.Fatal("Run without an API server returned no error")
	}
	t.Log(err)
	for _, want := range []string{"loading policies from the cluster", "listing AuthPolicies at https://127.0.0.1:1", "connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if resp, _, err := get(t, "http://"+opts.HTTPAddr+"/healthz", nil); err == nil {
		t.Errorf("Run returned but left its HTTP server answering (%d)", resp.StatusCode)
	}
}

// createUsers creates the users Secret "users" in ns that Session rules need (the fixture's users;
// no test here logs in).
func createUsers(t testing.TB, ns string) {
	t.Helper()
	if err := env.Client.Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "users"},
		Data:       fixture.Secrets()["shop-users"],
	}); err != nil {
		t.Fatal(err)
	}
}
