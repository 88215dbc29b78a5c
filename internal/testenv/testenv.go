// Package testenv starts the real kube-apiserver and etcd that `make test` builds (hack/envtest.sh
// exports their folder as KUBEBUILDER_ASSETS), with authgate's CRDs installed, for the tests of
// packages that talk to Kubernetes. It is for tests only; nothing in a binary imports it.
package testenv

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/internal/kube"
)

// Env is a running API server.
type Env struct {
	// Config reaches the API server as an administrator.
	Config *rest.Config
	// Client is a client of it that knows core types and AuthPolicy.
	Client client.Client
	// Scheme holds client-go's types and authgate's.
	Scheme *k8sruntime.Scheme
	env    *envtest.Environment
}

// Start starts kube-apiserver and etcd from KUBEBUILDER_ASSETS with the CRDs of config/crd/bases.
// A missing KUBEBUILDER_ASSETS is an error that says how to run the tests: they never skip.
func Start() (*Env, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, or export KUBEBUILDER_ASSETS=$(make -s envtest)")
	}
	_, file, _, _ := runtime.Caller(0)
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(filepath.Dir(file), "..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	// Tests create objects in bursts; client-side throttling would only measure itself.
	cfg.QPS, cfg.Burst = 1000, 2000
	scheme := kube.Scheme()
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("creating a client: %w", err)
	}
	return &Env{Config: cfg, Client: c, Scheme: scheme, env: env}, nil
}

// Stop stops the API server and etcd.
func (e *Env) Stop() error { return e.env.Stop() }

// Main starts an API server, runs the package's tests and stops it; TestMain calls it as
// os.Exit(testenv.Main(m, &env)). Each of then runs once the server is up, before the tests.
// controller-runtime's log (informers, reconcilers) goes to stderr, errors only unless
// AUTHGATE_TEST_LOG is set.
func Main(m *testing.M, env **Env, then ...func(*Env)) int {
	// A fuzz worker (go test -fuzz) runs nothing but a fuzz target, and none needs the API server.
	flag.Parse()
	if w := flag.Lookup("test.fuzzworker"); w != nil && w.Value.String() == "true" {
		return m.Run()
	}
	level := zapcore.ErrorLevel
	if os.Getenv("AUTHGATE_TEST_LOG") != "" {
		level = zapcore.DebugLevel
	}
	ctrllog.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(level)))
	e, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*env = e
	for _, f := range then {
		f(e)
	}
	defer func() {
		if err := e.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "Stopping the API server: %v\n", err)
		}
	}()
	return m.Run()
}

// Namespace creates a namespace of its own for one test, named after prefix.
func (e *Env) Namespace(t testing.TB, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := e.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	return ns.Name
}

// UserWithRoles returns the configuration of a new user who holds exactly the roles in roleFile (a
// file of ClusterRoles and Roles that `make manifests` generates from RBAC markers; a Role's
// namespace becomes ns). Tests that run a component as this user prove its generated RBAC is
// enough, since the API server authorizes with RBAC.
func (e *Env) UserWithRoles(t testing.TB, user, ns, roleFile string) *rest.Config {
	t.Helper()
	ctx := context.Background()
	raw, err := os.ReadFile(roleFile)
	if err != nil {
		t.Fatalf("reading %s: %v", roleFile, err)
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	var probe *authorizationv1.ResourceAttributes // one thing the roles allow, to wait for
	for i, doc := range strings.Split(string(raw), "\n---\n") {
		if strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(doc), "---")) == "" {
			continue
		}
		var kind struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &kind); err != nil {
			t.Fatalf("%s: document %d: %v", roleFile, i, err)
		}
		switch kind.Kind {
		case "ClusterRole":
			role := &rbacv1.ClusterRole{}
			if err := yaml.UnmarshalStrict([]byte(doc), role); err != nil {
				t.Fatalf("%s: document %d: %v", roleFile, i, err)
			}
			role.Name = user + "-" + role.Name
			probe = firstRule(probe, role.Rules, "")
			binding := &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: role.Name},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
				Subjects:   subject,
			}
			e.create(t, ctx, role, binding)
		case "Role":
			role := &rbacv1.Role{}
			if err := yaml.UnmarshalStrict([]byte(doc), role); err != nil {
				t.Fatalf("%s: document %d: %v", roleFile, i, err)
			}
			role.Namespace = ns
			probe = firstRule(probe, role.Rules, ns)
			binding := &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: role.Name, Namespace: ns},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
				Subjects:   subject,
			}
			e.create(t, ctx, role, binding)
		default:
			t.Fatalf("%s: document %d is a %q, not a ClusterRole or Role", roleFile, i, kind.Kind)
		}
	}
	// The API server's authorizer learns of new bindings from an informer, a moment later.
	if probe != nil {
		deadline := time.Now().Add(30 * time.Second)
		for {
			review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: probe}}
			if err := e.Client.Create(ctx, review); err != nil {
				t.Fatalf("reviewing the access of %s: %v", user, err)
			}
			if review.Status.Allowed {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the roles of %s are not in force after 30s", user)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	u, err := e.env.AddUser(envtest.User{Name: user}, e.Config)
	if err != nil {
		t.Fatalf("adding user %s: %v", user, err)
	}
	cfg := rest.CopyConfig(u.Config())
	cfg.QPS, cfg.Burst = e.Config.QPS, e.Config.Burst
	return cfg
}

func (e *Env) create(t testing.TB, ctx context.Context, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := e.Client.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// firstRule returns have, or else the first resource the rules grant, as an access review asks it.
func firstRule(have *authorizationv1.ResourceAttributes, rules []rbacv1.PolicyRule, ns string) *authorizationv1.ResourceAttributes {
	if have != nil || len(rules) == 0 || len(rules[0].APIGroups) == 0 || len(rules[0].Resources) == 0 || len(rules[0].Verbs) == 0 {
		return have
	}
	r := rules[0]
	return &authorizationv1.ResourceAttributes{Namespace: ns, Group: r.APIGroups[0], Resource: r.Resources[0], Verb: r.Verbs[0]}
}

// RoleFile returns the path of a file under config/rbac, such as "operator/role.yaml".
func RoleFile(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "config", "rbac", name)
}

// Eventually polls cond every 10ms until it returns "", and fails the test with the last message
// cond returned once timeout has passed. Tests wait for states this way, never by sleeping.
func Eventually(t testing.TB, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
