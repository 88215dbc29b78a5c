package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/source"
)

// AuthPolicyReconciler keeps each AuthPolicy's status true to what the webhook does with it: it
// compiles the policy with the Secrets it references, exactly as the webhook does, and reports the
// outcome in conditions. It also creates and rotates the signing-key Secrets of policies whose
// Secret does not exist, and reports how Ingresses that name the policy are wired.
type AuthPolicyReconciler struct {
	Client client.Client
	// APIReader reads from the API server without a cache: only a managed signing-key Secret that
	// is about to be rotated is read through it.
	APIReader client.Reader
	// Secrets reads referenced Secrets; SetupWithManager makes one when it is nil.
	Secrets  *source.SecretReader
	Recorder events.EventRecorder
	// Wiring is the same as the Ingress reconciler's, so that status and annotations agree.
	Wiring Wiring
	// Clock drives key rotation; nil is the real clock.
	Clock clock.PassiveClock
	// MaxConcurrentReconciles bounds the policies reconciled at once (default 4).
	MaxConcurrentReconciles int
	// Metrics counts key rotations; nil counts nothing.
	Metrics *Metrics
}

// +kubebuilder:rbac:groups=authgate.dev,resources=authpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=authgate.dev,resources=authpolicies/status,verbs=get;patch
// +kubebuilder:rbac:groups=authgate.dev,resources=authpolicies/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one policy's status, and its managed signing-key Secret, up to date. Every
// outcome lands in one status patch, made on the way out and skipped when nothing changed.
func (r *AuthPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, err error) {
	p := &authgatev1.AuthPolicy{}
	if err := r.Client.Get(ctx, req.NamespacedName, p); err != nil {
		// A deleted policy leaves nothing to do here: its managed Secret is garbage-collected with
		// it, and the Ingress reconciler unwires the Ingresses that named it.
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	orig := p.DeepCopy()
	defer func() {
		if patchErr := r.patchStatus(ctx, orig, p); patchErr != nil {
			err = errors.Join(err, patchErr)
		}
	}()
	o := r.observe(ctx, p)
	r.setConditions(p, o)
	p.Status.Modes = p.Spec.ModeSummary()
	p.Status.AttachedIngresses = o.attached
	p.Status.ActiveKeyID = o.activeKeyID
	if o.err != nil {
		// Transient: the status says what is known, observedGeneration stays where it was, and
		// the policy is tried again with backoff.
		return ctrl.Result{}, o.err
	}
	p.Status.ObservedGeneration = p.Generation
	if o.invalid != nil {
		// Only an edit can fix the spec, and an edit triggers a reconcile of its own.
		return ctrl.Result{}, reconcile.TerminalError(o.invalid)
	}
	if !o.rotateAt.IsZero() {
		return ctrl.Result{RequeueAfter: max(o.rotateAt.Sub(r.clock().Now()), time.Second)}, nil
	}
	return ctrl.Result{}, nil
}

func (r *AuthPolicyReconciler) clock() clock.PassiveClock {
	if r.Clock == nil {
		return clock.RealClock{}
	}
	return r.Clock
}

// observation is what a reconcile found out about a policy.
type observation struct {
	invalid         error // the spec does not compile
	conflict        *policy.Conflict
	accepted        bool            // the spec compiles and claims no route an older policy claims
	unresolved      field.ErrorList // referenced Secrets missing or wrong
	missing         bool            // every unresolved Secret is missing (rather than wrong)
	keyPending      error           // the signing-key Secret could not be created yet
	activeKeyID     string
	rotateAt        time.Time // when the managed signing key next needs attention
	attached        int32
	wiringConflicts []string
	err             error // a transient failure: try again
}

func (r *AuthPolicyReconciler) observe(ctx context.Context, p *authgatev1.AuthPolicy) observation {
	var o observation
	claims, err := policy.ClaimsOf(p)
	if err != nil {
		o.invalid = err
	} else if conflict, ok, err := r.findConflict(ctx, claims); err != nil {
		o.err = err
		return o
	} else if ok {
		o.conflict = &conflict
	} else {
		o.accepted = true
	}
	secrets, err := r.Secrets.Read(ctx, p)
	if err != nil {
		o.err = err
		return o
	}
	if o.invalid == nil {
		if err := r.manageKeys(ctx, p, secrets, &o); err != nil {
			o.err = err
			return o
		}
	}
	compiled, err := policy.Compile(p, secrets)
	var ce *policy.CompileError
	switch {
	case err == nil:
		if j := compiled.JWT(); j != nil && j.Keys() != nil {
			o.activeKeyID = j.Keys().Active().ID()
		}
	case errors.As(err, &ce):
		o.unresolved = ce.Unresolved
		o.missing = ce.MissingSecrets()
	default:
		o.err = err
		return o
	}
	o.attached, o.wiringConflicts, o.err = r.wiring(ctx, p)
	return o
}

// findConflict looks for an older policy, in any namespace, that claims one of the routes of c.
func (r *AuthPolicyReconciler) findConflict(ctx context.Context, c *policy.Claims) (policy.Conflict, bool, error) {
	var others []*policy.Claims
	seen := map[types.UID]bool{}
	for _, host := range c.Hosts() {
		list := &authgatev1.AuthPolicyList{}
		if err := r.Client.List(ctx, list, client.MatchingFields{IndexPolicyHost: host}); err != nil {
			return policy.Conflict{}, false, fmt.Errorf("listing policies for host %s: %w", host, err)
		}
		for i := range list.Items {
			o := &list.Items[i]
			if seen[o.UID] {
				continue
			}
			seen[o.UID] = true
			if oc, err := policy.ClaimsOf(o); err == nil {
				others = append(others, oc)
			}
		}
	}
	conflict, ok := policy.FindConflict(c, others)
	return conflict, ok, nil
}

// manageKeys creates the signing-key Secret of a policy that names one that does not exist, and
// rotates and prunes the keys of a Secret it created. A Secret someone else made is only read.
// secrets is updated with what was written, so the policy compiles against it at once.
func (r *AuthPolicyReconciler) manageKeys(ctx context.Context, p *authgatev1.AuthPolicy, secrets policy.Secrets, o *observation) error {
	j := p.Spec.JWT
	if j == nil || j.SigningKeySecretRef == nil {
		return nil
	}
	spec := p.Spec.DeepCopy()
	spec.Default()
	alg := spec.JWT.Algorithm
	period, err1 := spec.JWT.KeyRotationPeriod.Parse()
	ttl, err2 := spec.JWT.AccessTokenTTL.Parse()
	skew, err3 := spec.JWT.ClockSkew.Parse()
	if err := errors.Join(err1, err2, err3); err != nil {
		// ClaimsOf has refused such a spec already.
		return nil
	}
	keep := ttl + skew
	name := j.SigningKeySecretRef.Name
	now := r.clock().Now()
	nn := types.NamespacedName{Namespace: p.Namespace, Name: name}

	m, err := r.Secrets.Metadata(ctx, nn)
	if apierrors.IsNotFound(err) {
		ring, err := newKeyRing(alg, now)
		if err != nil {
			o.keyPending = err
			return nil
		}
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: p.Namespace,
				Labels:      map[string]string{authgatev1.ManagedByLabel: authgatev1.ManagedByValue},
				Annotations: ring.annotations(),
			},
			Type: corev1.SecretTypeOpaque,
			Data: ring.data,
		}
		if err := controllerutil.SetControllerReference(p, s, r.Client.Scheme()); err != nil {
			return fmt.Errorf("owning Secret %s: %w", nn, err)
		}
		if err := r.Client.Create(ctx, s); err != nil {
			// AlreadyExists means the cache is behind: the next try sees the Secret.
			o.keyPending = fmt.Errorf("creating Secret %s: %w", nn, err)
			return o.keyPending
		}
		log.FromContext(ctx).Info("Created signing-key Secret", "secret", name, "kid", ring.active)
		r.event(p, corev1.EventTypeNormal, "KeyCreated", "CreateKey", "Created Secret %s with signing key %s", name, ring.active)
		secrets[name] = ring.data
		o.rotateAt = ring.nextEvent(period, keep)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading Secret %s: %w", nn, err)
	}
	if m.Labels[authgatev1.ManagedByLabel] != authgatev1.ManagedByValue || !metav1.IsControlledBy(m, p) {
		return nil // a user's Secret: never modified
	}
	data, ok := secrets[name]
	if !ok {
		return fmt.Errorf("signing-key Secret %s disappeared while it was read", nn)
	}
	ring, err := parseKeyRing(alg, m.Annotations, data)
	if err != nil {
		// Left as it is; Compile reports what it finds in the data.
		log.FromContext(ctx).Info("Managed signing-key Secret was edited by hand; not rotating it", "secret", name, "problem", err.Error())
		return nil
	}
	pruned := ring.prune(now, keep)
	rotated := !now.Before(ring.rotationDue(period))
	if rotated {
		if err := ring.rotate(now); err != nil {
			return err
		}
	}
	if len(pruned) > 0 || rotated {
		s := &corev1.Secret{}
		if err := r.APIReader.Get(ctx, nn, s); err != nil {
			return fmt.Errorf("reading Secret %s: %w", nn, err)
		}
		if s.ResourceVersion != m.ResourceVersion {
			return fmt.Errorf("signing-key Secret %s changed while it was read; trying again", nn)
		}
		for k, v := range ring.annotations() {
			metav1.SetMetaDataAnnotation(&s.ObjectMeta, k, v)
		}
		s.Data = ring.data
		// Update carries the resourceVersion read: a concurrent change fails it instead of being lost.
		if err := r.Client.Update(ctx, s); err != nil {
			return fmt.Errorf("updating Secret %s: %w", nn, err)
		}
		secrets[name] = ring.data
		if rotated {
			log.FromContext(ctx).Info("Rotated signing key", "secret", name, "kid", ring.active)
			r.Metrics.keyRotated(p.Namespace + "/" + p.Name)
			r.event(p, corev1.EventTypeNormal, "KeyRotated", "RotateKey", "Key %s of Secret %s signs from now on", ring.active, name)
		}
		if len(pruned) > 0 {
			log.FromContext(ctx).Info("Pruned retired signing keys", "secret", name, "kids", pruned)
		}
	}
	o.rotateAt = ring.nextEvent(period, keep)
	return nil
}

// wiring counts the Ingresses fully wired to p and describes those with conflicts.
func (r *AuthPolicyReconciler) wiring(ctx context.Context, p *authgatev1.AuthPolicy) (int32, []string, error) {
	list := &networkingv1.IngressList{}
	if err := r.Client.List(ctx, list, client.InNamespace(p.Namespace), client.MatchingFields{IndexIngressPolicy: p.Name}); err != nil {
		return 0, nil, fmt.Errorf("listing Ingresses: %w", err)
	}
	var attached int32
	var conflicts []string
	for i := range list.Items {
		ing := &list.Items[i]
		plan := r.Wiring.Plan(ing, p)
		if len(plan.Conflicts) > 0 {
			conflicts = append(conflicts, fmt.Sprintf("Ingress %s has %s set by hand", ing.Name, strings.Join(plan.Conflicts, ", ")))
			continue
		}
		attached++
	}
	sort.Strings(conflicts)
	return attached, conflicts, nil
}

// setConditions writes the observation into p's conditions.
func (r *AuthPolicyReconciler) setConditions(p *authgatev1.AuthPolicy, o observation) {
	now := metav1.NewTime(r.clock().Now())
	set := func(t string, ok bool, reason, msg string) {
		status := metav1.ConditionFalse
		if ok {
			status = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{
			Type: t, Status: status, Reason: reason, Message: truncate(msg), ObservedGeneration: p.Generation, LastTransitionTime: now,
		})
	}
	switch {
	case o.invalid != nil:
		set(authgatev1.ConditionAccepted, false, authgatev1.ReasonInvalid, o.invalid.Error())
	case o.conflict != nil:
		set(authgatev1.ConditionAccepted, false, authgatev1.ReasonConflicted, o.conflict.String())
	case o.accepted:
		set(authgatev1.ConditionAccepted, true, authgatev1.ReasonAccepted, "The spec compiles and claims no route an older policy claims")
	case meta.FindStatusCondition(p.Status.Conditions, authgatev1.ConditionAccepted) == nil:
		// The policies claiming its hosts could not be listed: unknown until the retry.
		meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{Type: authgatev1.ConditionAccepted, Status: metav1.ConditionUnknown,
			Reason: "Pending", Message: truncate(o.err.Error()), ObservedGeneration: p.Generation, LastTransitionTime: now})
	}
	switch {
	case o.keyPending != nil:
		set(authgatev1.ConditionResolvedRefs, false, authgatev1.ReasonKeyPending, "The operator is creating the signing-key Secret: "+o.keyPending.Error())
	case o.err != nil:
		// Unknown until the Secrets can be read; a known outcome is left as it was.
	case len(o.unresolved) > 0 && o.missing:
		set(authgatev1.ConditionResolvedRefs, false, authgatev1.ReasonSecretNotFound, errorList(o.unresolved))
	case len(o.unresolved) > 0:
		set(authgatev1.ConditionResolvedRefs, false, authgatev1.ReasonSecretInvalid, errorList(o.unresolved))
	default:
		set(authgatev1.ConditionResolvedRefs, true, authgatev1.ReasonResolvedRefs, "Every referenced Secret exists and parses")
	}
	accepted := meta.IsStatusConditionTrue(p.Status.Conditions, authgatev1.ConditionAccepted)
	resolved := meta.IsStatusConditionTrue(p.Status.Conditions, authgatev1.ConditionResolvedRefs)
	switch {
	case !accepted:
		set(authgatev1.ConditionReady, false, authgatev1.ReasonNotAccepted, "Accepted is not True: the webhook denies every check that names this policy")
	case !resolved:
		set(authgatev1.ConditionReady, false, authgatev1.ReasonRefsNotResolved, "ResolvedRefs is not True: the webhook denies every check that names this policy")
	default:
		set(authgatev1.ConditionReady, true, authgatev1.ReasonReady, "The webhook enforces this policy")
	}
	if o.err == nil {
		if len(o.wiringConflicts) > 0 {
			set(authgatev1.ConditionIngressesWired, false, authgatev1.ReasonAnnotationConflict,
				strings.Join(o.wiringConflicts, "; ")+": remove those annotations to let authgate manage them")
		} else {
			set(authgatev1.ConditionIngressesWired, true, authgatev1.ReasonWired, fmt.Sprintf("%d Ingresses name this policy and are wired", o.attached))
		}
	}
}

// errorList joins field errors into one message.
func errorList(errs field.ErrorList) string {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// truncate keeps a condition message under the API's limit of 32768 bytes.
func truncate(msg string) string {
	const limit = 32 << 10
	if len(msg) <= limit {
		return msg
	}
	return msg[:limit-len(" …")] + " …"
}

// patchStatus writes p's status when it differs from orig's, and records an Event for each
// condition whose status or reason changed.
func (r *AuthPolicyReconciler) patchStatus(ctx context.Context, orig, p *authgatev1.AuthPolicy) error {
	if equality.Semantic.DeepEqual(orig.Status, p.Status) {
		return nil
	}
	if err := r.Client.Status().Patch(ctx, p, client.MergeFrom(orig)); err != nil {
		return client.IgnoreNotFound(err)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == authgatev1.ConditionReady && c.Status == metav1.ConditionTrue {
			if old := meta.FindStatusCondition(orig.Status.Conditions, c.Type); old == nil || old.Status != c.Status {
				r.event(p, corev1.EventTypeNormal, c.Reason, "Reconcile", "%s", c.Message)
			}
			continue
		}
		if c.Status == metav1.ConditionTrue || c.Type == authgatev1.ConditionReady {
			continue // Ready=False repeats the reason of the condition that caused it
		}
		if old := meta.FindStatusCondition(orig.Status.Conditions, c.Type); old == nil || old.Status != c.Status || old.Reason != c.Reason {
			r.event(p, corev1.EventTypeWarning, c.Reason, "Reconcile", "%s", c.Message)
		}
	}
	return nil
}

func (r *AuthPolicyReconciler) event(p *authgatev1.AuthPolicy, eventType, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(p, nil, eventType, reason, action, note, args...)
	}
}

// SetupWithManager registers the reconciler. It watches policies (their own changes and those of
// policies claiming the same hosts, for conflicts), the Secrets policies reference (metadata only,
// looked up by index, so no Secret data is cached) and the Ingresses that name a policy.
func (r *AuthPolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Secrets == nil {
		// Metadata from the cache itself: the client bypasses the cache for Secrets, which the
		// operator never caches whole.
		r.Secrets = source.NewSecretReader(mgr.GetCache(), mgr.GetAPIReader())
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	workers := r.MaxConcurrentReconciles
	if workers <= 0 {
		workers = 4
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("authpolicy").
		For(&authgatev1.AuthPolicy{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&authgatev1.AuthPolicy{}, handler.EnqueueRequestsFromMapFunc(r.policiesSharingHosts),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.policiesReferencing), builder.OnlyMetadata).
		Watches(&networkingv1.Ingress{}, handler.EnqueueRequestsFromMapFunc(policyOfIngress)).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

// policiesSharingHosts maps a policy to the other policies claiming one of its hosts, whose
// conflicts its change may settle or cause.
func (r *AuthPolicyReconciler) policiesSharingHosts(ctx context.Context, o client.Object) []reconcile.Request {
	p, ok := o.(*authgatev1.AuthPolicy)
	if !ok {
		return nil
	}
	seen := map[types.NamespacedName]bool{{Namespace: p.Namespace, Name: p.Name}: true}
	var out []reconcile.Request
	for _, h := range p.Spec.Hosts {
		list := &authgatev1.AuthPolicyList{}
		if err := r.Client.List(ctx, list, client.MatchingFields{IndexPolicyHost: string(h)}); err != nil {
			log.FromContext(ctx).Error(err, "Listing policies that share a host", "host", h)
			continue
		}
		for _, other := range list.Items {
			nn := types.NamespacedName{Namespace: other.Namespace, Name: other.Name}
			if !seen[nn] {
				seen[nn] = true
				out = append(out, reconcile.Request{NamespacedName: nn})
			}
		}
	}
	return out
}

// policiesReferencing maps a Secret to the policies of its namespace that reference it.
func (r *AuthPolicyReconciler) policiesReferencing(ctx context.Context, o client.Object) []reconcile.Request {
	list := &authgatev1.AuthPolicyList{}
	if err := r.Client.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{IndexPolicySecret: o.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "Listing policies that reference a Secret", "secret", o.GetName())
		return nil
	}
	out := make([]reconcile.Request, len(list.Items))
	for i, p := range list.Items {
		out[i] = reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}}
	}
	return out
}

// policyOfIngress maps an Ingress to the policy its annotation names. On an update the map runs
// for the old and the new Ingress, so a policy the Ingress stopped naming is told as well.
func policyOfIngress(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetAnnotations()[authgatev1.PolicyAnnotation]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}
