package chart

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/operator"
	"github.com/authgate/authgate/internal/store/redistest"
	"github.com/authgate/authgate/internal/testenv"
	"github.com/authgate/authgate/internal/webhook"
)

// TestInstallGuardsARoute installs the chart as far as an API server without nodes allows: its
// ServiceAccounts, RBAC and Secrets are created for real, and the webhook (two replicas) and the
// operator run in this process with the flags of the rendered Deployments, as their
// ServiceAccounts (tokens from the TokenRequest API), on a real Redis. An app team then does what
// docs/app-teams.md says, and the route is guarded: the operator wires the Ingress to the chart's
// webhook URL, a login on one replica is honoured by the other, and logout ends it on both.
func TestInstallGuardsARoute(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := env.Namespace(t, "release")
	redis := redistest.StartServer(t)
	r := mustRender(t, release, fmt.Sprintf(`
redis: {bundled: {enabled: false}, url: "redis://%s"}
ingress: {enabled: true, host: auth.example.com}`, redis.Addr))

	c, _ := strictClient(t)
	for _, o := range r.objects {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Secret":
		default:
			continue
		}
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()), client.FieldOwner("helm"), client.ForceOwnership); err != nil {
			t.Fatalf("applying %s %s: %v", o.GetKind(), o.GetName(), err)
		}
		if o.GetNamespace() == "" {
			t.Cleanup(func() { _ = env.Client.Delete(context.Background(), o) })
		}
	}

	// The operator, as its ServiceAccount, with the Deployment's flags.
	var opDeploy appsv1.Deployment
	r.one(t, "Deployment", "authgate-operator", &opDeploy)
	opPod := opDeploy.Spec.Template.Spec
	opArgs := container(t, opDeploy.Spec.Template, "operator").Args
	o, err := operator.ParseFlags(opArgs, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o.MetricsAddr, o.HealthAddr = freeAddr(t), freeAddr(t)
	o.ShutdownTimeout = 5 * time.Second
	o.RestConfig = serviceAccountConfig(t, release, opPod.ServiceAccountName)
	opDone := make(chan error, 1)
	go func() { opDone <- operator.Run(ctx, o) }()
	defer func() {
		cancel()
		if err := <-opDone; err != nil {
			t.Errorf("operator: %v", err)
		}
	}()

	// Two webhook replicas, as their ServiceAccount, sharing the chart's key Secret and Redis.
	var whDeploy appsv1.Deployment
	r.one(t, "Deployment", "authgate-webhook", &whDeploy)
	var keySecret corev1.Secret
	r.one(t, "Secret", "authgate-webhook-key", &keySecret)
	keyFile := filepath.Join(t.TempDir(), "secret-key")
	if err := os.WriteFile(keyFile, keySecret.Data["secret-key"], 0o600); err != nil {
		t.Fatal(err)
	}
	whArgs := strings.ReplaceAll(strings.Join(container(t, whDeploy.Spec.Template, "webhook").Args, "\x00"),
		"/etc/authgate/secret-key/secret-key", keyFile)
	whConfig := serviceAccountConfig(t, release, whDeploy.Spec.Template.Spec.ServiceAccountName)
	var replicas []string
	for range 2 {
		opts, err := webhook.ParseFlags(strings.Split(whArgs, "\x00"), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		opts.HTTPAddr, opts.GRPCAddr, opts.MetricsAddr = freeAddr(t), "", ""
		opts.ShutdownTimeout = 5 * time.Second
		opts.RestConfig = whConfig
		done := make(chan error, 1)
		go func() { done <- webhook.Run(ctx, opts) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("webhook: %v", err)
			}
		}()
		replicas = append(replicas, "http://"+opts.HTTPAddr)
	}
	for _, base := range replicas {
		testenv.Eventually(t, 60*time.Second, func() string {
			if status, _, body := call(t, "GET", base+"/readyz", nil, ""); status != http.StatusOK {
				return fmt.Sprintf("webhook %s /readyz: %d %s", base, status, body)
			}
			return ""
		})
	}

	// The app team: users, a policy and an annotated Ingress in their own namespace.
	app := env.Namespace(t, "app")
	users := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shop-users", Namespace: app}, Data: fixture.Secrets()["shop-users"]}
	policy := &authgatev1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: app},
		Spec: authgatev1.AuthPolicySpec{
			Hosts: []authgatev1.HostPattern{authgatev1.HostPattern("shop." + app + ".example.com")},
			Rules: []authgatev1.Rule{
				{Name: "api", Match: authgatev1.RouteMatch{PathPrefix: "/api/"}, Mode: authgatev1.ModeJWT},
				{Name: "app", Mode: authgatev1.ModeSession},
			},
			Session:         &authgatev1.SessionConfig{},
			JWT:             &authgatev1.JWTConfig{Issuer: "https://auth.example.com", SigningKeySecretRef: &authgatev1.SecretReference{Name: "shop-jwt-keys"}},
			Login:           &authgatev1.LoginConfig{UsersSecretRef: &authgatev1.SecretReference{Name: "shop-users"}},
			IdentityHeaders: map[string]authgatev1.ClaimName{"X-User-Email": "email"},
		},
	}
	ingress := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: app, Annotations: map[string]string{authgatev1.PolicyAnnotation: "shop"}},
		Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: "shop", Port: networkingv1.ServiceBackendPort{Number: 80}},
		}},
	}
	for _, obj := range []client.Object{users, policy, ingress} {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 60*time.Second, func() string {
		got := &authgatev1.AuthPolicy{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(policy), got); err != nil {
			return err.Error()
		}
		if !meta.IsStatusConditionTrue(got.Status.Conditions, authgatev1.ConditionReady) || got.Status.AttachedIngresses != 1 {
			return fmt.Sprintf("the policy is not Ready with its Ingress: %+v", got.Status)
		}
		return ""
	})
	webhookURL, _ := flagValue(opArgs, "webhook-url")
	testenv.Eventually(t, 60*time.Second, func() string {
		wired := &networkingv1.Ingress{}
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: app, Name: "shop"}, wired); err != nil {
			return err.Error()
		}
		a := wired.Annotations
		if a["nginx.ingress.kubernetes.io/auth-url"] != webhookURL+"/check/nginx?policy="+app+"/shop" ||
			!strings.HasPrefix(a["nginx.ingress.kubernetes.io/auth-signin"], "https://auth.example.com/auth/login?") {
			return fmt.Sprintf("the Ingress is not wired to the chart's URLs: %v", a)
		}
		return ""
	})

	// The route is guarded, and a login on one replica holds on the other.
	check := func(base, cookie string) (int, http.Header) {
		status, h, _ := call(t, "GET", base+"/check/nginx?policy="+app+"/shop", map[string]string{
			"X-Original-URL": "https://shop." + app + ".example.com/orders", "X-Original-Method": "GET", "Cookie": cookie}, "")
		return status, h
	}
	testenv.Eventually(t, 30*time.Second, func() string {
		for _, base := range replicas {
			if status, _ := check(base, ""); status != http.StatusUnauthorized {
				return fmt.Sprintf("an anonymous check on %s answered %d, want 401", base, status)
			}
		}
		return ""
	})
	status, h, body := call(t, "POST", replicas[0]+"/auth/login?policy="+app+"/shop", map[string]string{"Content-Type": "application/json"},
		fmt.Sprintf(`{"email":"admin@example.com","password":%q}`, fixture.Password))
	if status != http.StatusOK {
		t.Fatalf("login: %d %s", status, body)
	}
	var cookie string
	for _, sc := range h.Values("Set-Cookie") {
		if v, ok := strings.CutPrefix(sc, "authgate_session="); ok {
			id, _, _ := strings.Cut(v, ";")
			cookie = "authgate_session=" + id
		}
	}
	if cookie == "" {
		t.Fatalf("login set no session cookie: %v", h.Values("Set-Cookie"))
	}
	if status, h := check(replicas[1], cookie); status != http.StatusOK || h.Get("X-User-Email") != "admin@example.com" {
		t.Fatalf("the session on the other replica: %d, X-User-Email %q", status, h.Get("X-User-Email"))
	}
	if status, _, body := call(t, "POST", replicas[1]+"/auth/logout?policy="+app+"/shop", map[string]string{
		"Cookie": cookie, "Content-Type": "application/json"}, "{}"); status >= 400 {
		t.Fatalf("logout: %d %s", status, body)
	}
	if status, _ := check(replicas[0], cookie); status != http.StatusUnauthorized {
		t.Fatalf("after logout on one replica, the other answered %d, want 401", status)
	}
}

// TestUpgradeKeepsGeneratedSecrets: the webhook's shared key and the bundled Redis's password are
// made once, at install; `helm upgrade` looks them up and renders the same values, so replicas keep
// agreeing and the webhook keeps the password Redis requires.
func TestUpgradeKeepsGeneratedSecrets(t *testing.T) {
	ns := env.Namespace(t, "upgrade")
	installed := mustRender(t, ns, "")
	c, _ := strictClient(t)
	for _, o := range installed.objects {
		if o.GetKind() == "Secret" {
			if err := c.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(o.DeepCopy()), client.FieldOwner("helm")); err != nil {
				t.Fatal(err)
			}
		}
	}
	upgraded, err := renderWith(t, ns, "", env.Config)
	if err != nil {
		t.Fatalf("rendering the upgrade: %v", err)
	}
	var before, after corev1.Secret
	installed.one(t, "Secret", "authgate-webhook-key", &before)
	upgraded.one(t, "Secret", "authgate-webhook-key", &after)
	if len(before.Data["secret-key"]) < 32 || string(before.Data["secret-key"]) != string(after.Data["secret-key"]) {
		t.Error("the upgrade renders another shared key")
	}
	installed.one(t, "Secret", "authgate-redis", &before)
	upgraded.one(t, "Secret", "authgate-redis", &after)
	if before.StringData["password"] == "" || before.StringData["password"] != after.StringData["password"] ||
		before.StringData["redis.conf"] != after.StringData["redis.conf"] {
		t.Error("the upgrade renders another Redis password")
	}
	// A fresh install elsewhere gets keys of its own.
	other := mustRender(t, env.Namespace(t, "upgrade"), "")
	other.one(t, "Secret", "authgate-redis", &after)
	if after.StringData["password"] == before.StringData["password"] {
		t.Error("two installs share a generated password")
	}
}

// serviceAccountConfig reaches the API server as a ServiceAccount, with a token from the
// TokenRequest API, the way a pod's projected token does.
func serviceAccountConfig(t *testing.T, namespace, name string) *rest.Config {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	seconds := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(context.Background(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a token for ServiceAccount %s/%s: %v", namespace, name, err)
	}
	cfg := rest.AnonymousClientConfig(env.Config)
	cfg.BearerToken = tr.Status.Token
	cfg.QPS, cfg.Burst = env.Config.QPS, env.Config.Burst
	// Every request the component makes must be allowed: a 403 means the chart's RBAC is short of
	// what it needs, even where the component would only log the refusal and go on.
	// The refusals are reported once the test is over (the components have stopped by then).
	var mu sync.Mutex
	var refused []string
	cfg.Wrap(func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := next.RoundTrip(req)
			if err == nil && resp.StatusCode == http.StatusForbidden {
				mu.Lock()
				refused = append(refused, req.Method+" "+req.URL.Path)
				mu.Unlock()
			}
			return resp, err
		})
	})
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range refused {
			t.Errorf("ServiceAccount %s/%s was forbidden to %s", namespace, name, r)
		}
	})
	return cfg
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// call sends one request and returns the status, headers and body.
func call(t *testing.T, method, url string, header map[string]string, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestDocsNameTheChartsServices: every address of authgate in docs/ and docs/examples/ (a name
// under .authgate.svc.cluster.local) is a Service the chart renders with its default values as
// release authgate in namespace authgate, so that copied snippets reach the webhook.
func TestDocsNameTheChartsServices(t *testing.T) {
	r := mustRender(t, "authgate", "")
	services := map[string]bool{}
	for name := range r.find("Service") {
		services[name+".authgate.svc.cluster.local"] = true
	}
	address := regexp.MustCompile(`[a-z0-9-]+\.authgate\.svc\.cluster\.local`)
	docs := filepath.Join(chartDir(), "..", "..", "docs")
	seen := 0
	err := filepath.WalkDir(docs, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".md") || strings.HasSuffix(path, ".yaml")) {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, a := range address.FindAllString(string(raw), -1) {
			seen++
			if !services[a] {
				t.Errorf("%s names %s, which the chart does not create", path, a)
			}
		}
		if strings.Contains(string(raw), "authgate-system") {
			t.Errorf("%s names the namespace authgate-system; the docs install into authgate", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 10 {
		t.Errorf("found %d addresses in docs/; the search is broken", seen)
	}
}
