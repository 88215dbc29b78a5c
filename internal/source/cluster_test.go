package source

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/testenv"
)

// env is the API server every test of the package shares (the folder tests ignore it). The
// cluster source watches every namespace, so each test works in namespaces of its own and names
// hosts after them: policies of different tests never claim the same route.
var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &env))
}

// namespace makes a namespace for one test and deletes its policies when the test ends, so that
// later tests (and later runs of -count) do not see them.
func namespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := env.Namespace(t, prefix)
	t.Cleanup(func() {
		if err := env.Client.DeleteAllOf(context.Background(), &authgatev1.AuthPolicy{}, client.InNamespace(ns)); err != nil {
			t.Errorf("deleting the policies of %s: %v", ns, err)
		}
	})
	return ns
}

// published records what a cluster source publishes.
type published struct {
	mu    sync.Mutex
	snap  *policy.Snapshot
	count int
}

func (p *published) publish(s *policy.Snapshot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.snap, p.count = s, p.count+1
}

func (p *published) last() (*policy.Snapshot, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.snap, p.count
}

// watchCluster starts the cluster source on cfg until the test ends.
func watchCluster(t *testing.T, cfg *rest.Config) (*clusterWatcher, *published) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	pub := &published{}
	w, err := startCluster(ctx, cfg, ClusterOptions{}, pub.publish, testr.NewWithOptions(t, testr.Options{Verbosity: 1}))
	if err != nil {
		t.Fatalf("starting the cluster source: %v", err)
	}
	if snap, n := pub.last(); snap == nil || n != 1 {
		t.Fatalf("startCluster returned after %d snapshots, want the first one published", n)
	}
	return w, pub
}

// waitSnapshot polls the last snapshot until cond returns "", failing with its last message after
// 30 seconds.
func waitSnapshot(t *testing.T, pub *published, cond func(*policy.Snapshot) string) *policy.Snapshot {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		snap, _ := pub.last()
		msg := cond(snap)
		if msg == "" {
			return snap
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %s", msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func has(ns, name string) func(*policy.Snapshot) string {
	return func(s *policy.Snapshot) string {
		if _, ok := s.Get(policy.Ref{Namespace: ns, Name: name}); !ok {
			return fmt.Sprintf("%s/%s is not in the snapshot", ns, name)
		}
		return ""
	}
}

func lacks(ns, name string) func(*policy.Snapshot) string {
	return func(s *policy.Snapshot) string {
		if _, ok := s.Get(policy.Ref{Namespace: ns, Name: name}); ok {
			return fmt.Sprintf("%s/%s is still in the snapshot", ns, name)
		}
		return ""
	}
}

func users(ns, name string, want int) func(*policy.Snapshot) string {
	return func(s *policy.Snapshot) string {
		p, ok := s.Get(policy.Ref{Namespace: ns, Name: name})
		if !ok {
			return fmt.Sprintf("%s/%s is not in the snapshot", ns, name)
		}
		if p.Login() == nil || p.Login().Users() != want {
			return fmt.Sprintf("%s/%s has %v users, want %d", ns, name, p.Login(), want)
		}
		return ""
	}
}

// publicPolicy lets anyone through on /prefix of host.
func publicPolicy(ns, name, host, prefix string) *authgatev1.AuthPolicy {
	return &authgatev1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: authgatev1.AuthPolicySpec{
			Hosts: []authgatev1.HostPattern{authgatev1.HostPattern(host)},
			Rules: []authgatev1.Rule{{Name: "app", Match: authgatev1.RouteMatch{PathPrefix: prefix}, Mode: authgatev1.ModePublic}},
		},
	}
}

// sessionPolicy asks for a session on every path of host, with the users of Secret usersSecret.
func sessionPolicy(ns, name, host, usersSecret string) *authgatev1.AuthPolicy {
	return &authgatev1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: authgatev1.AuthPolicySpec{
			Hosts:   []authgatev1.HostPattern{authgatev1.HostPattern(host)},
			Rules:   []authgatev1.Rule{{Name: "app", Match: authgatev1.RouteMatch{PathPrefix: "/"}, Mode: authgatev1.ModeSession}},
			Session: &authgatev1.SessionConfig{},
			Login:   &authgatev1.LoginConfig{UsersSecretRef: &authgatev1.SecretReference{Name: usersSecret}},
		},
	}
}

// passwordHash is a bcrypt hash at the lowest cost policies accept, made once.
var passwordHash = sync.OnceValues(func() ([]byte, error) {
	return bcrypt.GenerateFromPassword([]byte("a-test-password"), 10)
})

// usersSecret holds a users.yaml with n users.
func usersSecret(t *testing.T, ns, name string, n int) *corev1.Secret {
	t.Helper()
	hash, err := passwordHash()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "- email: user%d@example.com\n  passwordHash: %q\n  roles: [viewer]\n", i, hash)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Data:       map[string][]byte{"users.yaml": []byte(b.String())},
	}
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s/%s: %v", obj, obj.GetNamespace(), obj.GetName(), err)
	}
}

func update(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Update(context.Background(), obj); err != nil {
		t.Fatalf("updating %T %s/%s: %v", obj, obj.GetNamespace(), obj.GetName(), err)
	}
}

func remove(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Delete(context.Background(), obj); err != nil {
		t.Fatalf("deleting %T %s/%s: %v", obj, obj.GetNamespace(), obj.GetName(), err)
	}
}

// referencing waits until the source's last build counted nn among the referenced Secrets: by
// then it has seen the policy that references it.
func referencing(t *testing.T, w *clusterWatcher, nn types.NamespacedName) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() string {
		w.mu.Lock()
		defer w.mu.Unlock()
		if _, ok := w.referenced[nn]; !ok {
			return fmt.Sprintf("no build referenced Secret %s", nn)
		}
		return ""
	})
}

// TestWatchClusterFollowsPolicies walks one source through the life of a few policies.
func TestWatchClusterFollowsPolicies(t *testing.T) {
	ns := namespace(t, "follow")
	host := func(name string) string { return name + "." + ns + ".example.com" }
	w, pub := watchCluster(t, env.Config)

	status := publicPolicy(ns, "status", host("status"), "/")
	create(t, status)
	compiledStatus, _ := waitSnapshot(t, pub, has(ns, "status")).Get(policy.Ref{Namespace: ns, Name: "status"})

	// A policy whose users Secret does not exist yet is left out...
	create(t, sessionPolicy(ns, "shop", host("shop"), "users"))
	referencing(t, w, types.NamespacedName{Namespace: ns, Name: "users"})
	if snap, _ := pub.last(); lacks(ns, "shop")(snap) != "" {
		t.Fatal("shop is in the snapshot without its users Secret")
	}
	// ...and comes in, compiled, when the Secret is created: the Secret is referenced although
	// it did not exist.
	secret := usersSecret(t, ns, "users", 1)
	create(t, secret)
	waitSnapshot(t, pub, users(ns, "shop", 1))
	// A change of the Secret is a new compile.
	secret.Data = usersSecret(t, ns, "users", 2).Data
	update(t, secret)
	waitSnapshot(t, pub, users(ns, "shop", 2))

	// A newer policy claiming a route the older one claims is left out, the older stays. The
	// marker, created after it, shows when the source has seen it: one informer delivers the
	// policies in order.
	create(t, publicPolicy(ns, "status-copy", host("status"), "/"))
	create(t, publicPolicy(ns, "marker1", host("marker1"), "/"))
	snap := waitSnapshot(t, pub, has(ns, "marker1"))
	for _, want := range []func(*policy.Snapshot) string{lacks(ns, "status-copy"), has(ns, "status"), has(ns, "shop")} {
		if msg := want(snap); msg != "" {
			t.Error(msg)
		}
	}
	// Other policies changing did not compile status again.
	if p, _ := snap.Get(policy.Ref{Namespace: ns, Name: "status"}); p != compiledStatus {
		t.Error("status was compiled again although neither it nor a Secret of its changed")
	}

	// A policy that does not compile (its users do not parse) is left out; the others load.
	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "broken-users"},
		Data:       map[string][]byte{"users.yaml": []byte("users: not a list")},
	})
	broken := sessionPolicy(ns, "broken", host("broken"), "broken-users")
	create(t, broken)
	create(t, publicPolicy(ns, "marker2", host("marker2"), "/"))
	snap = waitSnapshot(t, pub, has(ns, "marker2"))
	for _, want := range []func(*policy.Snapshot) string{lacks(ns, "broken"), has(ns, "status"), users(ns, "shop", 2), has(ns, "marker1")} {
		if msg := want(snap); msg != "" {
			t.Error(msg)
		}
	}

	// The reader holds the data of the referenced Secrets that exist, and of no other. The
	// metadata cache holds no more than names and versions: kubectl apply's annotation would
	// carry the data of a Secret no policy names.
	unrelated := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unrelated", Labels: map[string]string{"app": "other"},
			Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"stringData":{"k":"a-secret-value"}}`}},
		StringData: map[string]string{"k": "a-secret-value"},
	}
	create(t, unrelated)
	testenv.Eventually(t, 30*time.Second, func() string {
		m := secretMeta()
		if err := w.cache.Get(context.Background(), client.ObjectKeyFromObject(unrelated), m); err != nil {
			return fmt.Sprintf("the Secret is not in the metadata cache: %v", err)
		}
		if len(m.Annotations) > 0 || len(m.Labels) > 0 || m.ResourceVersion == "" {
			t.Fatalf("the metadata cache holds %+v, want only the identity and resourceVersion", m.ObjectMeta)
		}
		return ""
	})
	if n := w.secrets.Cached(); n != 2 {
		t.Errorf("the reader holds %d Secrets, want 2 (users and broken-users)", n)
	}
	remove(t, broken)
	testenv.Eventually(t, 30*time.Second, func() string {
		if n := w.secrets.Cached(); n != 1 {
			return fmt.Sprintf("after the broken policy was deleted, the reader holds %d Secrets, want 1", n)
		}
		return ""
	})

	// Deleted policies leave; the newer copy of status, no longer in conflict, comes in.
	remove(t, status)
	waitSnapshot(t, pub, lacks(ns, "status"))
	waitSnapshot(t, pub, has(ns, "status-copy"))
	remove(t, &authgatev1.AuthPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"}})
	waitSnapshot(t, pub, lacks(ns, "shop"))
	testenv.Eventually(t, 30*time.Second, func() string {
		if n := w.secrets.Cached(); n != 0 {
			return fmt.Sprintf("with no policy referencing a Secret, the reader holds %d", n)
		}
		return ""
	})
}

// TestWatchClusterIgnoresUnreferencedSecrets: Secrets no policy names cause no rebuild, whatever
// happens to them; a referenced one does.
func TestWatchClusterIgnoresUnreferencedSecrets(t *testing.T) {
	ns := namespace(t, "quiet")
	other := namespace(t, "quiet-other")
	secret := usersSecret(t, ns, "users", 1)
	create(t, secret)
	create(t, sessionPolicy(ns, "shop", "shop."+ns+".example.com", "users"))
	_, pub := watchCluster(t, env.Config)
	waitSnapshot(t, pub, users(ns, "shop", 1))
	_, before := pub.last()

	// Another Secret of the namespace, and a Secret of the same name in another namespace.
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unrelated"}, StringData: map[string]string{"k": "v"}},
		usersSecret(t, other, "users", 1),
	} {
		create(t, s)
		s.StringData = map[string]string{"k": "changed"}
		update(t, s)
		remove(t, s)
	}
	// Rebuilds wait at most MaxDelay after a change: a few times that without one shows there is
	// none coming.
	quiet := time.Now().Add(5 * defaultMaxDelay)
	for time.Now().Before(quiet) {
		if _, n := pub.last(); n != before {
			t.Fatalf("changes of unreferenced Secrets published %d snapshots", n-before)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The referenced Secret changing is one rebuild. Its event comes after the others (one
	// informer, in order), so the count also shows that they were seen and ignored.
	secret.Data = usersSecret(t, ns, "users", 3).Data
	update(t, secret)
	waitSnapshot(t, pub, users(ns, "shop", 3))
	if _, n := pub.last(); n != before+1 {
		t.Errorf("one change of a referenced Secret published %d snapshots, want 1", n-before)
	}
}

// flakyTransport fails the GETs of single Secrets while failing is set, as an API server that
// cannot be reached would.
type flakyTransport struct {
	next     http.RoundTripper
	failing  atomic.Bool
	refusals atomic.Int32
}

func (f *flakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.failing.Load() && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/secrets/") {
		f.refusals.Add(1)
		return nil, errors.New("test: the API server is unreachable")
	}
	return f.next.RoundTrip(r)
}

// TestWatchClusterKeepsPoliciesWhileSecretsCannotBeRead: a rebuild that cannot read a changed
// Secret publishes nothing (the last snapshot stays) and is tried again until it can.
func TestWatchClusterKeepsPoliciesWhileSecretsCannotBeRead(t *testing.T) {
	ns := namespace(t, "flaky")
	secret := usersSecret(t, ns, "users", 1)
	create(t, secret)
	create(t, sessionPolicy(ns, "shop", "shop."+ns+".example.com", "users"))
	flaky := &flakyTransport{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WrapTransport = func(next http.RoundTripper) http.RoundTripper {
		flaky.next = next
		return flaky
	}
	_, pub := watchCluster(t, cfg)
	waitSnapshot(t, pub, users(ns, "shop", 1))
	_, before := pub.last()

	flaky.failing.Store(true)
	secret.Data = usersSecret(t, ns, "users", 2).Data
	update(t, secret)
	testenv.Eventually(t, 30*time.Second, func() string {
		if n := flaky.refusals.Load(); n < 2 {
			return fmt.Sprintf("%d reads of the changed Secret tried, want a first one and a retry", n)
		}
		return ""
	})
	snap, n := pub.last()
	if n != before {
		t.Errorf("%d snapshots published while the Secret could not be read", n-before)
	}
	if msg := users(ns, "shop", 1)(snap); msg != "" {
		t.Errorf("while the Secret could not be read: %s", msg)
	}

	flaky.failing.Store(false)
	waitSnapshot(t, pub, users(ns, "shop", 2))
}

// TestWatchClusterExplainsFailures: when the API server cannot be used, WatchCluster says why
// instead of waiting forever.
func TestWatchClusterExplainsFailures(t *testing.T) {
	unreachable := rest.CopyConfig(env.Config)
	unreachable.Host = "https://127.0.0.1:1"
	forbidden := rest.CopyConfig(env.Config)
	forbidden.Impersonate = rest.ImpersonationConfig{UserName: "nobody"}
	cases := map[string]struct {
		cfg  *rest.Config
		want []string
	}{
		"unreachable": {unreachable, []string{"listing AuthPolicies at https://127.0.0.1:1", "connection refused"}},
		"forbidden":   {forbidden, []string{"listing AuthPolicies", "may not list authpolicies.authgate.dev", "forbidden"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := WatchCluster(ctx, tc.cfg, ClusterOptions{}, func(*policy.Snapshot) { t.Error("published") }, testr.New(t))
			if err == nil {
				t.Fatal("no error")
			}
			if ctx.Err() != nil {
				t.Fatalf("returned only when the context ended: %v", err)
			}
			t.Log(err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// failingReader fails every List with err.
type failingReader struct {
	client.Reader
	err error
}

func (f failingReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return f.err
}

// TestPreflightExplains the usual mistakes, including one the shared API server cannot show: the
// CRD not installed.
func TestPreflightExplains(t *testing.T) {
	cases := map[string]struct {
		err  error
		want string
	}{
		"no CRD": {&meta.NoKindMatchError{GroupKind: authgatev1.GroupVersion.WithKind("AuthPolicy").GroupKind()},
			"listing AuthPolicies at https://k8s: the AuthPolicy CRD (authpolicies.authgate.dev) is not installed: no matches for kind"},
		"forbidden": {apierrors.NewForbidden(authgatev1.GroupVersion.WithResource("authpolicies").GroupResource(), "", errors.New("RBAC")),
			"may not list authpolicies.authgate.dev (see its ClusterRole)"},
		"unauthorized": {apierrors.NewUnauthorized("token expired"), "does not accept the webhook's credentials: token expired"},
		"other":        {errors.New("boom"), "listing AuthPolicies at https://k8s: boom"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := preflight(context.Background(), failingReader{err: tc.err}, "https://k8s")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("preflight: %v, want an error with %q", err, tc.want)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("preflight: %v does not wrap %v", err, tc.err)
			}
		})
	}
}

// TestWatchClusterNeedsOnlyItsRBAC runs the source as a user holding exactly the webhook's
// generated ClusterRole (config/rbac/webhook, from the RBAC markers of cluster.go).
func TestWatchClusterNeedsOnlyItsRBAC(t *testing.T) {
	ns := namespace(t, "rbac")
	create(t, usersSecret(t, ns, "users", 1))
	create(t, sessionPolicy(ns, "shop", "shop."+ns+".example.com", "users"))
	cfg := env.UserWithRoles(t, "authgate-webhook-"+ns, ns, testenv.RoleFile("webhook/role.yaml"))
	_, pub := watchCluster(t, cfg)
	waitSnapshot(t, pub, users(ns, "shop", 1))
}
