package source

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/kube"
	"github.com/authgate/authgate/internal/policy"
)

// The webhook only reads: the policies, and the Secrets they reference. controller-gen makes the
// webhook's ClusterRole from these markers.
// +kubebuilder:rbac:groups=authgate.dev,resources=authpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch

// ClusterOptions tune how WatchCluster follows changes.
type ClusterOptions struct {
	// Settle is how long a burst of changes must be quiet before a rebuild (default 50ms);
	// MaxDelay bounds how long a rebuild waits under continuous changes (default 300ms).
	Settle, MaxDelay time.Duration
}

const (
	defaultSettle   = 50 * time.Millisecond
	defaultMaxDelay = 300 * time.Millisecond
	// A rebuild that failed (the API server unreachable while reading a Secret) is tried again
	// after firstRetry, doubling up to maxRetry: soon enough to recover quickly, rarely enough not
	// to hammer an API server that is struggling.
	firstRetry = 200 * time.Millisecond
	maxRetry   = 30 * time.Second
)

// WatchCluster follows the AuthPolicies of every namespace and the Secrets they reference, and
// publishes a snapshot of the policies that work: those whose spec is valid, that conflict with no
// older policy, and that compile with their Secrets. The others are left out; the operator reports
// why in their status, and checks that name them are denied.
//
// WatchCluster blocks until the first snapshot is published, then returns nil and keeps following
// the cluster in the background until ctx ends. It returns an error when the API server cannot be
// used at all (unreachable, the CRD missing, access forbidden) or ctx ends first: the caller is
// expected to stop, so that the failure is visible rather than a webhook that never gets ready.
//
// Secret data is read only for referenced Secrets (see SecretReader): the webhook watches the
// metadata of Secrets, never their contents.
func WatchCluster(ctx context.Context, cfg *rest.Config, opts ClusterOptions, publish func(*policy.Snapshot), log logr.Logger) error {
	_, err := startCluster(ctx, cfg, opts, publish, log)
	return err
}

// clusterWatcher is the state behind WatchCluster.
type clusterWatcher struct {
	cache   cache.Cache
	secrets *SecretReader
	publish func(*policy.Snapshot)
	log     logr.Logger
	opts    ClusterOptions

	// dirty holds at most one pending wake-up, so that event handlers never block and any number
	// of changes before the loop looks costs one rebuild.
	dirty chan struct{}

	// referenced are the Secrets the last build needed; the Secret handler reads it to ignore
	// events of every other Secret. It names Secrets that do not exist yet too, so that creating
	// one a policy waits for triggers a rebuild.
	mu         sync.Mutex
	referenced map[types.NamespacedName]struct{}

	// Owned by the goroutine that builds.
	compiled   map[types.UID]*compiledPolicy
	conflicted map[policy.Ref]bool
}

// compiledPolicy remembers what was made of one generation of a policy, so that a rebuild does
// not redo it for every policy when one changed.
type compiledPolicy struct {
	generation int64
	// claims are the policy's routes, or claimsErr when its spec is invalid.
	claims    *policy.Claims
	claimsErr error
	// policy, or err, is the result of compiling with the referenced Secrets at the
	// resourceVersions secrets describes (see secretVersions); compiled is false until then.
	compiled bool
	secrets  string
	policy   *policy.Policy
	err      error
}

// startCluster does WatchCluster's work and returns its state, for tests.
func startCluster(ctx context.Context, cfg *rest.Config, opts ClusterOptions, publish func(*policy.Snapshot), log logr.Logger) (*clusterWatcher, error) {
	if opts.Settle <= 0 {
		opts.Settle = defaultSettle
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = defaultMaxDelay
	}
	if opts.MaxDelay < opts.Settle {
		opts.MaxDelay = opts.Settle
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = "authgate-webhook"
	}
	if cfg.QPS == 0 {
		// client-go's default of 5 requests per second would make a burst of Secret changes (a
		// GitOps sync) wait seconds for their GETs.
		cfg.QPS, cfg.Burst = 50, 100
	}
	scheme := kube.Scheme()
	api, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating a client of the API server at %s: %w", cfg.Host, err)
	}
	// The informers would retry a failing list forever, and the webhook would just never get
	// ready. One list of each first turns the usual mistakes (wrong server, CRD not installed,
	// RBAC missing) into an error that says what is wrong.
	if err := preflight(ctx, api, cfg.Host); err != nil {
		return nil, err
	}

	w := &clusterWatcher{
		publish:    publish,
		log:        log,
		opts:       opts,
		dirty:      make(chan struct{}, 1),
		referenced: map[types.NamespacedName]struct{}{},
		compiled:   map[types.UID]*compiledPolicy{},
		conflicted: map[policy.Ref]bool{},
	}
	w.cache, err = cache.New(cfg, cache.Options{
		Scheme: scheme,
		// Reading a type without an informer would quietly start one: for a full Secret, that
		// would hold the data of every Secret in the cluster. Fail instead.
		ReaderFailOnMissingInformer: true,
		DefaultTransform:            trimForCache,
		DefaultWatchErrorHandler:    w.watchError,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the policy cache: %w", err)
	}
	w.secrets = NewSecretReader(w.cache, api)

	policies, err := w.cache.GetInformer(ctx, &authgatev1.AuthPolicy{}, cache.BlockUntilSynced(false))
	if err != nil {
		return nil, fmt.Errorf("watching AuthPolicies: %w", err)
	}
	policyEvents, err := policies.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.mark() },
		UpdateFunc: w.policyUpdated,
		DeleteFunc: func(any) { w.mark() },
	})
	if err != nil {
		return nil, fmt.Errorf("watching AuthPolicies: %w", err)
	}
	secrets, err := w.cache.GetInformer(ctx, secretMeta(), cache.BlockUntilSynced(false))
	if err != nil {
		return nil, fmt.Errorf("watching Secret metadata: %w", err)
	}
	secretEvents, err := secrets.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    w.secretChanged,
		UpdateFunc: w.secretUpdated,
		DeleteFunc: w.secretChanged,
	})
	if err != nil {
		return nil, fmt.Errorf("watching Secret metadata: %w", err)
	}

	// The cache lives as long as ctx, or until the first build fails.
	cacheCtx, stop := context.WithCancel(ctx)
	started := make(chan error, 1)
	go func() {
		err := w.cache.Start(cacheCtx)
		if err != nil {
			log.Error(err, "Policy cache stopped")
		}
		started <- err
	}()
	fail := func(err error) (*clusterWatcher, error) {
		stop()
		return nil, err
	}

	// Wait for the informers' first lists and for their handlers to have seen them, so that the
	// wake-ups of the initial objects can be dropped: the first build reads all of them anyway.
	synced := make(chan bool, 1)
	go func() {
		synced <- toolscache.WaitFor(cacheCtx, "", policyEvents.HasSyncedChecker(), secretEvents.HasSyncedChecker())
	}()
	select {
	case ok := <-synced:
		if !ok {
			return fail(fmt.Errorf("waiting for the AuthPolicy and Secret caches to fill: %w", context.Cause(cacheCtx)))
		}
	case err := <-started:
		if err == nil {
			err = errors.New("stopped before it filled")
		}
		return fail(fmt.Errorf("starting the AuthPolicy and Secret caches: %w", err))
	}
	select {
	case <-w.dirty:
	default:
	}

	for retry := time.Duration(0); ; {
		err := w.build(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fail(fmt.Errorf("waiting for the first policies: %w", context.Cause(ctx)))
		}
		// Access denied does not fix itself: stop, so that the reason is seen.
		if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
			return fail(fmt.Errorf("building the first policies: %w", err))
		}
		retry = nextRetry(retry)
		log.Error(err, "Building the first policies; trying again", "retryIn", retry)
		if !sleep(ctx, retry) {
			return fail(fmt.Errorf("waiting for the first policies: %w", context.Cause(ctx)))
		}
	}
	go w.loop(cacheCtx)
	return w, nil
}

// preflight lists one AuthPolicy and one Secret's metadata, as the informers will, and explains
// a failure.
func preflight(ctx context.Context, api client.Reader, host string) error {
	if err := api.List(ctx, &authgatev1.AuthPolicyList{}, client.Limit(1)); err != nil {
		return fmt.Errorf("listing AuthPolicies at %s: %s%w", host, explain(err, "authpolicies.authgate.dev"), err)
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(secretMeta().GroupVersionKind().GroupVersion().WithKind("SecretList"))
	if err := api.List(ctx, list, client.Limit(1)); err != nil {
		return fmt.Errorf("listing Secrets at %s: %s%w", host, explain(err, "secrets"), err)
	}
	return nil
}

// explain says what usually causes err, when it is one of the usual mistakes.
func explain(err error, resource string) string {
	switch {
	case meta.IsNoMatchError(err) || apierrors.IsNotFound(err):
		return "the AuthPolicy CRD (authpolicies.authgate.dev) is not installed: "
	case apierrors.IsForbidden(err):
		return "the webhook's service account may not list " + resource + " (see its ClusterRole): "
	case apierrors.IsUnauthorized(err):
		return "the API server does not accept the webhook's credentials: "
	}
	return ""
}

// trimForCache drops what the webhook never reads before an object enters the cache. A Secret's
// metadata keeps only its identity and resourceVersion: its annotations may hold its data
// (kubectl apply's last-applied-configuration does), which the webhook must not keep for Secrets
// no policy references.
func trimForCache(in any) (any, error) {
	if m, ok := in.(*metav1.PartialObjectMetadata); ok {
		m.ObjectMeta = metav1.ObjectMeta{
			Name:            m.Name,
			Namespace:       m.Namespace,
			UID:             m.UID,
			ResourceVersion: m.ResourceVersion,
		}
		return m, nil
	}
	if obj, err := meta.Accessor(in); err == nil && obj.GetManagedFields() != nil {
		obj.SetManagedFields(nil)
	}
	return in, nil
}

// watchError logs why an informer could not list or watch; the informer retries by itself.
func (w *clusterWatcher) watchError(_ context.Context, r *toolscache.Reflector, err error) {
	if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) || errors.Is(err, context.Canceled) {
		// Routine: the informer lists again.
		w.log.V(1).Info("Watch restarted", "type", r.TypeDescription(), "reason", err.Error())
		return
	}
	w.log.Error(err, "Watching the cluster; retrying", "type", r.TypeDescription())
}

// mark asks for a rebuild.
func (w *clusterWatcher) mark() {
	select {
	case w.dirty <- struct{}{}:
	default:
	}
}

// policyUpdated asks for a rebuild when the spec changed: the generation moves with the spec
// alone, so the operator's status updates (and resyncs) cost nothing here.
func (w *clusterWatcher) policyUpdated(old, cur any) {
	o, ok1 := old.(*authgatev1.AuthPolicy)
	c, ok2 := cur.(*authgatev1.AuthPolicy)
	if ok1 && ok2 && o.UID == c.UID && o.Generation == c.Generation {
		return
	}
	w.mark()
}

func (w *clusterWatcher) secretUpdated(old, cur any) {
	o, ok1 := old.(*metav1.PartialObjectMetadata)
	c, ok2 := cur.(*metav1.PartialObjectMetadata)
	if ok1 && ok2 && o.ResourceVersion == c.ResourceVersion {
		return // a resync
	}
	w.secretChanged(cur)
}

// secretChanged asks for a rebuild when a policy references the Secret.
func (w *clusterWatcher) secretChanged(obj any) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	nn := types.NamespacedName{Namespace: m.GetNamespace(), Name: m.GetName()}
	w.mu.Lock()
	_, ok := w.referenced[nn]
	w.mu.Unlock()
	if ok {
		w.mark()
	}
}

// loop rebuilds after each burst of changes until ctx ends.
func (w *clusterWatcher) loop(ctx context.Context) {
	var retry time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.dirty:
		}
		if !w.settle(ctx) {
			return
		}
		if err := w.build(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			retry = nextRetry(retry)
			w.log.Error(err, "Rebuilding policies; keeping the previous ones and trying again", "retryIn", retry)
			if !sleep(ctx, retry) {
				return
			}
			w.mark()
			continue
		}
		retry = 0
	}
}

// settle waits until no change came for Settle, or MaxDelay after the first. It returns false when
// ctx ended.
func (w *clusterWatcher) settle(ctx context.Context) bool {
	quiet := time.NewTimer(w.opts.Settle)
	defer quiet.Stop()
	limit := time.NewTimer(w.opts.MaxDelay)
	defer limit.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-w.dirty:
			quiet.Reset(w.opts.Settle)
		case <-quiet.C:
			return true
		case <-limit.C:
			return true
		}
	}
}

// build makes a snapshot of every policy in the cache and publishes it. It fails, publishing
// nothing, only when a Secret could not be read.
func (w *clusterWatcher) build(ctx context.Context) error {
	start := time.Now()
	var list authgatev1.AuthPolicyList
	// Nothing below modifies a policy (Compile and ClaimsOf copy what they keep), so the cache's
	// objects are read in place rather than copied, one thousand at a time.
	if err := w.cache.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing AuthPolicies from the cache: %w", err)
	}
	entries := make(map[types.UID]*compiledPolicy, len(list.Items))
	claims := make([]*policy.Claims, 0, len(list.Items))
	for i := range list.Items {
		e := w.entry(&list.Items[i])
		entries[list.Items[i].UID] = e
		if e.claimsErr == nil {
			claims = append(claims, e.claims)
		}
	}
	conflicts := policy.Conflicts(claims)

	// Publish which Secrets matter before reading any: an event of a Secret that changes from
	// here on is not ignored, and one the handler ignored before is already in the cache read
	// below (informers update their store before they call handlers).
	referenced := map[types.NamespacedName]struct{}{}
	for i := range list.Items {
		p := &list.Items[i]
		if entries[p.UID].claimsErr != nil {
			continue
		}
		if _, ok := conflicts[policy.Ref{Namespace: p.Namespace, Name: p.Name}]; ok {
			continue
		}
		for _, name := range p.Spec.SecretNames() {
			referenced[types.NamespacedName{Namespace: p.Namespace, Name: name}] = struct{}{}
		}
	}
	w.mu.Lock()
	w.referenced = referenced
	w.mu.Unlock()

	compiled := make([]*policy.Policy, 0, len(list.Items))
	conflicted := map[policy.Ref]bool{}
	leftOut := 0
	for i := range list.Items {
		p := &list.Items[i]
		ref := policy.Ref{Namespace: p.Namespace, Name: p.Name}
		e := entries[p.UID]
		if e.claimsErr != nil {
			leftOut++
			continue
		}
		if c, ok := conflicts[ref]; ok {
			conflicted[ref] = true
			if !w.conflicted[ref] {
				w.log.V(1).Info("AuthPolicy left out: it conflicts with an older one", "policy", ref.String(), "conflict", c.String())
			}
			leftOut++
			continue
		}
		versions, err := w.secretVersions(ctx, p)
		if err != nil {
			return err
		}
		if !e.compiled || e.secrets != versions {
			secrets, err := w.secrets.Read(ctx, p)
			if err != nil {
				return fmt.Errorf("reading the Secrets of AuthPolicy %s: %w", ref, err)
			}
			e.policy, e.err = policy.Compile(p, secrets)
			e.compiled, e.secrets = true, versions
			if e.err != nil {
				w.log.V(1).Info("AuthPolicy left out: it does not compile", "policy", ref.String(), "error", e.err.Error())
			}
		}
		if e.policy == nil {
			leftOut++
			continue
		}
		compiled = append(compiled, e.policy)
	}

	snap := policy.NewSnapshot(compiled)
	w.publish(snap)
	w.compiled = entries
	w.conflicted = conflicted
	w.secrets.Retain(func(nn types.NamespacedName) bool {
		_, ok := referenced[nn]
		return ok
	})
	w.log.Info("Policies rebuilt", "policies", snap.Len(), "leftOut", leftOut, "took", time.Since(start))
	return nil
}

// entry returns what is known of the policy's current generation, reading its claims when the
// generation is new.
func (w *clusterWatcher) entry(p *authgatev1.AuthPolicy) *compiledPolicy {
	if e, ok := w.compiled[p.UID]; ok && e.generation == p.Generation {
		return e
	}
	e := &compiledPolicy{generation: p.Generation}
	e.claims, e.claimsErr = policy.ClaimsOf(p)
	if e.claimsErr != nil {
		w.log.V(1).Info("AuthPolicy left out: its spec is invalid", "policy", p.Namespace+"/"+p.Name, "error", e.claimsErr.Error())
	}
	return e
}

// secretVersions describes the resourceVersions of the Secrets p references, as the cache holds
// them; a missing Secret has none. A policy compiled with the same description needs no new
// compile.
func (w *clusterWatcher) secretVersions(ctx context.Context, p *authgatev1.AuthPolicy) (string, error) {
	names := p.Spec.SecretNames()
	if len(names) == 0 {
		return "", nil
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		m := secretMeta()
		err := w.cache.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: name}, m)
		switch {
		case apierrors.IsNotFound(err):
			m.ResourceVersion = "-"
		case err != nil:
			return "", fmt.Errorf("reading Secret %s/%s from the cache: %w", p.Namespace, name, err)
		}
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(m.ResourceVersion)
		b.WriteByte(';')
	}
	return b.String(), nil
}

func nextRetry(d time.Duration) time.Duration {
	if d <= 0 {
		return firstRetry
	}
	return min(2*d, maxRetry)
}

// sleep waits for d and reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
