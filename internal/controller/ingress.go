package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authgatev1 "github.com/authgate/authgate/api/v1"
)

// Event reasons and actions of the Ingress reconciler.
const (
	reasonWired              = "Wired"
	reasonUnwired            = "Unwired"
	reasonAnnotationConflict = authgatev1.ReasonAnnotationConflict
	reasonPolicyNotFound     = "PolicyNotFound"
	reasonInvalidPolicyName  = "InvalidPolicyName"
	actionWire               = "Wire"
	actionUnwire             = "Unwire"
)

// IngressReconciler keeps the ingress-nginx auth annotations of Ingresses that name an AuthPolicy
// (authgate.dev/policy) in line with that policy, and removes them when the Ingress stops naming it
// or the policy goes away. It never touches an annotation a person wrote.
type IngressReconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	Wiring   Wiring
}

// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=authgate.dev,resources=authpolicies,verbs=get;list;watch

// Reconcile applies Wiring.Plan to one Ingress.
func (r *IngressReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx)

	var ing networkingv1.Ingress
	if err := r.Client.Get(ctx, req.NamespacedName, &ing); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("getting Ingress %s: %w", req.NamespacedName, err)
	}
	if !ing.DeletionTimestamp.IsZero() {
		// Its annotations go with it.
		return ctrl.Result{}, nil
	}

	name, named := ing.Annotations[authgatev1.PolicyAnnotation]
	var p *authgatev1.AuthPolicy
	var nameErrs []string
	missing := false
	if named {
		if nameErrs = validation.IsDNS1123Subdomain(name); len(nameErrs) == 0 {
			p = &authgatev1.AuthPolicy{}
			err := r.Client.Get(ctx, types.NamespacedName{Namespace: ing.Namespace, Name: name}, p)
			switch {
			case apierrors.IsNotFound(err):
				p, missing = nil, true
			case err != nil:
				return ctrl.Result{}, fmt.Errorf("getting AuthPolicy %s/%s named by Ingress %s: %w", ing.Namespace, name, ing.Name, err)
			}
			// A policy that is being deleted still guards its Ingresses until it is gone, and an invalid
			// one makes the webhook deny: either way the Ingress stays wired, never open.
		}
	}

	plan := r.Wiring.Plan(&ing, p)
	set := changedKeys(ing.Annotations, plan.Annotations, r.Wiring.Desired(p))
	if plan.Changed {
		orig := ing.DeepCopy()
		ing.Annotations = plan.Annotations
		if err := r.Client.Patch(ctx, &ing, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, fmt.Errorf("patching the auth annotations of Ingress %s/%s: %w", ing.Namespace, ing.Name, err)
		}
		logger.Info("Updated the auth annotations", "policy", name, "set", set, "removed", plan.Removed, "conflicts", plan.Conflicts)
	} else {
		logger.V(1).Info("Auth annotations up to date", "policy", name, "conflicts", plan.Conflicts)
	}

	// related must be a nil interface, not a nil *AuthPolicy, for the recorder to leave it out.
	var related client.Object
	if p != nil {
		related = p
	}
	switch {
	case len(nameErrs) > 0:
		r.Recorder.Eventf(&ing, nil, corev1.EventTypeWarning, reasonInvalidPolicyName, actionUnwire,
			"Annotation %s is %q, which is not a valid AuthPolicy name (%s): the Ingress is not guarded by authgate",
			authgatev1.PolicyAnnotation, name, strings.Join(nameErrs, "; "))
	case missing && len(plan.Removed) > 0:
		r.Recorder.Eventf(&ing, nil, corev1.EventTypeWarning, reasonPolicyNotFound, actionUnwire,
			"AuthPolicy %s/%s not found: removed %s; the Ingress is no longer guarded by authgate",
			ing.Namespace, name, strings.Join(plan.Removed, ", "))
	case missing:
		r.Recorder.Eventf(&ing, nil, corev1.EventTypeWarning, reasonPolicyNotFound, actionUnwire,
			"AuthPolicy %s/%s not found: the Ingress is not guarded by authgate", ing.Namespace, name)
	}
	if !named && len(plan.Removed) > 0 {
		r.Recorder.Eventf(&ing, nil, corev1.EventTypeNormal, reasonUnwired, actionUnwire,
			"Removed %s: the Ingress names no AuthPolicy any more, so it is no longer guarded by authgate", strings.Join(plan.Removed, ", "))
	}
	if p != nil && plan.Changed && (len(set) > 0 || len(plan.Removed) > 0) {
		note := "Wired to AuthPolicy " + p.Name
		if len(set) > 0 {
			note += ": set " + strings.Join(set, ", ")
		}
		if len(plan.Removed) > 0 {
			note += "; removed " + strings.Join(plan.Removed, ", ")
		}
		r.Recorder.Eventf(&ing, related, corev1.EventTypeNormal, reasonWired, actionWire, "%s", note)
	}
	if len(plan.Conflicts) > 0 {
		r.Recorder.Eventf(&ing, related, corev1.EventTypeWarning, reasonAnnotationConflict, actionWire,
			"%s set by hand: authgate leaves them alone, so the Ingress may not be guarded as AuthPolicy %s says; remove them to let authgate manage them",
			strings.Join(plan.Conflicts, ", "), name)
	}
	return ctrl.Result{}, nil
}

// changedKeys are the keys of desired whose value the plan sets anew (added or changed), sorted.
func changedKeys(before, after, desired map[string]string) []string {
	var keys []string
	for _, k := range slices.Sorted(maps.Keys(desired)) {
		if v, ok := after[k]; ok && v == desired[k] {
			if old, had := before[k]; !had || old != v {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// SetupWithManager registers the reconciler as controller "ingress". A nil Client or Recorder is
// taken from mgr; Client must read from mgr's cache, whose IndexIngressPolicy index (SetupIndexes)
// maps a policy to its Ingresses.
func (r *IngressReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := r.Wiring.Validate(); err != nil {
		return fmt.Errorf("setting up the Ingress reconciler: %w", err)
	}
	if r.Client == nil {
		r.Client = mgr.GetClient()
	}
	if r.Recorder == nil {
		r.Recorder = mgr.GetEventRecorder("authgate-operator")
	}
	err := ctrl.NewControllerManagedBy(mgr).
		Named("ingress").
		For(&networkingv1.Ingress{}, builder.WithPredicates(ingressPredicate())).
		Watches(&authgatev1.AuthPolicy{}, handler.EnqueueRequestsFromMapFunc(r.ingressesOf),
			// Status writes (another reconciler's) change nothing authgate sets on an Ingress.
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(r)
	if err != nil {
		return fmt.Errorf("setting up the Ingress reconciler: %w", err)
	}
	return nil
}

// ingressesOf maps a policy to the Ingresses of its namespace that name it.
func (r *IngressReconciler) ingressesOf(ctx context.Context, o client.Object) []reconcile.Request {
	var list networkingv1.IngressList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{IndexIngressPolicy: o.GetName()}); err != nil {
		// The cache lists from memory; this fails only when the index is missing, which no retry
		// would fix.
		log.FromContext(ctx).Error(err, "Listing the Ingresses that name an AuthPolicy", "policy", client.ObjectKeyFromObject(o))
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, ing := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&ing)})
	}
	return reqs
}

// ingressPredicate passes only Ingresses that name a policy or carry annotations authgate set:
// every other Ingress is none of authgate's business. Of updates it passes only those that change
// annotations, the only part of an Ingress wiring reads; status updates by the ingress controller
// and resyncs are skipped. Deletions need no work: the annotations go with the Ingress.
func ingressPredicate() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return concernsAuthgate(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool {
			return (concernsAuthgate(e.ObjectOld) || concernsAuthgate(e.ObjectNew)) &&
				!maps.Equal(e.ObjectOld.GetAnnotations(), e.ObjectNew.GetAnnotations())
		},
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(e event.GenericEvent) bool { return concernsAuthgate(e.Object) },
	}
}

// concernsAuthgate reports whether o names a policy or records annotations authgate manages.
func concernsAuthgate(o client.Object) bool {
	if o == nil {
		return false
	}
	a := o.GetAnnotations()
	_, named := a[authgatev1.PolicyAnnotation]
	_, managed := a[authgatev1.ManagedAnnotationsAnnotation]
	return named || managed
}
