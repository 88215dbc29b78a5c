package operator_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/operator"
	"github.com/authgate/authgate/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &env))
}

func TestParseFlags(t *testing.T) {
	tests := map[string]struct {
		args    []string
		wantErr string
	}{
		"defaults":          {args: []string{"--webhook-url", "http://authgate-webhook.authgate.svc:8080"}},
		"no webhook URL":    {args: nil, wantErr: "--webhook-url is required"},
		"relative URL":      {args: []string{"--webhook-url", "authgate-webhook:8080"}, wantErr: "--webhook-url"},
		"login URL no host": {args: []string{"--webhook-url", "http://w:8080", "--login-url", "/auth/login"}, wantErr: "--login-url"},
		"zero workers":      {args: []string{"--webhook-url", "http://w:8080", "--workers", "0"}, wantErr: "--workers 0"},
		"stray argument":    {args: []string{"--webhook-url", "http://w:8080", "serve"}, wantErr: "unexpected arguments"},
		// Found by FuzzParseFlags: NaN <= 0 is false, so a NaN rate passed the check.
		"NaN rate":      {args: []string{"--webhook-url", "http://w:8080", "--kube-api-qps", "NaN"}, wantErr: "--kube-api-qps NaN"},
		"infinite rate": {args: []string{"--webhook-url", "http://w:8080", "--kube-api-qps", "1e300"}, wantErr: "--kube-api-qps +Inf"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o, err := operator.ParseFlags(tc.args, io.Discard)
			if tc.wantErr == "" {
				if err != nil || !o.LeaderElect || o.Workers != 4 || o.MetricsAddr != ":9090" {
					t.Errorf("options %+v, error %v", o, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	var out bytes.Buffer
	if code := operator.Main([]string{"--no-such-flag"}, &out); code != 2 || !strings.Contains(out.String(), "no-such-flag") {
		t.Errorf("exit %d, output %q", code, out.String())
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRun runs the operator as the command does, against a real API server, as a user holding only
// the generated RBAC (config/rbac/operator): it takes the Lease, becomes ready, creates a signing
// key, reconciles a policy, wires an Ingress and serves metrics.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ns := env.Namespace(t, "operator")
	metrics, health := freeAddr(t), freeAddr(t)
	o, err := operator.ParseFlags([]string{
		"--webhook-url", "http://authgate-webhook.authgate.svc:8080",
		"--metrics-addr", metrics, "--health-addr", health,
		"--leader-election-namespace", ns, "--shutdown-timeout", "5s",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o.RestConfig = env.UserWithRoles(t, "authgate-operator", ns, testenv.RoleFile("operator/role.yaml"))
	done := make(chan error, 1)
	go func() { done <- operator.Run(ctx, o) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	testenv.Eventually(t, 60*time.Second, func() string {
		if code, body := get("http://" + health + "/readyz"); code != http.StatusOK {
			return fmt.Sprintf("/readyz answered %d %s", code, body)
		}
		return ""
	})
	if code, _ := get("http://" + health + "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz answered %d", code)
	}
	testenv.Eventually(t, 60*time.Second, func() string {
		lease := &coordinationv1.Lease{}
		err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "authgate-operator.authgate.dev"}, lease)
		if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
			return fmt.Sprintf("the leader election Lease is not held (%v)", err)
		}
		return ""
	})

	users := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "users", Namespace: ns}, Data: fixture.Secrets()["shop-users"]}
	p := &authgatev1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns},
		Spec: authgatev1.AuthPolicySpec{
			Hosts: []authgatev1.HostPattern{"operator.example.com"},
			Rules: []authgatev1.Rule{
				{Name: "api", Match: authgatev1.RouteMatch{PathPrefix: "/api/"}, Mode: authgatev1.ModeJWT},
				{Name: "app", Mode: authgatev1.ModeSession},
			},
			Session:         &authgatev1.SessionConfig{},
			JWT:             &authgatev1.JWTConfig{Issuer: "https://auth.example.com", SigningKeySecretRef: &authgatev1.SecretReference{Name: "keys"}},
			Login:           &authgatev1.LoginConfig{UsersSecretRef: &authgatev1.SecretReference{Name: "users"}},
			IdentityHeaders: map[string]authgatev1.ClaimName{"X-User-Id": "sub"},
		},
	}
	if err := env.Client.Create(ctx, users); err != nil {
		t.Fatal(err)
	}
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns, Annotations: map[string]string{authgatev1.PolicyAnnotation: "shop"}},
		Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: "shop", Port: networkingv1.ServiceBackendPort{Number: 80}},
		}},
	}
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, ing); err != nil {
		t.Fatal(err)
	}
	got := &authgatev1.AuthPolicy{}
	testenv.Eventually(t, 60*time.Second, func() string {
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, got); err != nil {
			return err.Error()
		}
		if !meta.IsStatusConditionTrue(got.Status.Conditions, authgatev1.ConditionReady) || got.Status.AttachedIngresses != 1 {
			return fmt.Sprintf("the policy is not Ready with its Ingress attached: %+v", got.Status)
		}
		return ""
	})
	keys := &corev1.Secret{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "keys"}, keys); err != nil || string(keys.Data[authgatev1.SigningKeyActiveKey]) != got.Status.ActiveKeyID {
		t.Errorf("signing-key Secret %v (%v), status.activeKeyID %q", keys.Data[authgatev1.SigningKeyActiveKey], err, got.Status.ActiveKeyID)
	}
	testenv.Eventually(t, 60*time.Second, func() string {
		wired := &networkingv1.Ingress{}
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shop"}, wired); err != nil {
			return err.Error()
		}
		if got := wired.Annotations["nginx.ingress.kubernetes.io/auth-url"]; got != "http://authgate-webhook.authgate.svc:8080/check/nginx?policy="+ns+"/shop" {
			return "the Ingress is not wired: auth-url " + got
		}
		return ""
	})
	code, body := get("http://" + metrics + "/metrics")
	want := fmt.Sprintf("controller_runtime_reconcile_total{controller=%q,result=%q}", "authpolicy", "success")
	if code != http.StatusOK || !strings.Contains(body, want) {
		t.Errorf("/metrics answered %d without %s", code, want)
	}
}
