package controller

import (
	"context"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authgatev1 "github.com/authgate/authgate/api/v1"
)

// Field indexes the reconcilers look objects up by. The cache keeps them per namespace, so a
// lookup names a namespace with client.InNamespace as well as client.MatchingFields.
const (
	// IndexIngressPolicy indexes Ingresses by the policy their authgate.dev/policy annotation names.
	IndexIngressPolicy = "authgate.dev/ingress-policy"
	// IndexPolicySecret indexes AuthPolicies by the names of the Secrets they reference.
	IndexPolicySecret = "authgate.dev/policy-secret"
	// IndexPolicyHost indexes AuthPolicies by their spec.hosts entries.
	IndexPolicyHost = "authgate.dev/policy-host"
)

// Indexer is the part of a manager's cache that registers field indexes.
type Indexer interface {
	IndexField(ctx context.Context, obj client.Object, field string, extract client.IndexerFunc) error
}

// SetupIndexes registers the field indexes every reconciler of this package uses. Call it once per
// manager, before the reconcilers are set up.
func SetupIndexes(ctx context.Context, idx Indexer) error {
	indexes := []struct {
		obj     client.Object
		field   string
		extract client.IndexerFunc
	}{
		{&networkingv1.Ingress{}, IndexIngressPolicy, func(o client.Object) []string {
			if name := o.GetAnnotations()[authgatev1.PolicyAnnotation]; name != "" {
				return []string{name}
			}
			return nil
		}},
		{&authgatev1.AuthPolicy{}, IndexPolicySecret, func(o client.Object) []string {
			return o.(*authgatev1.AuthPolicy).Spec.SecretNames()
		}},
		{&authgatev1.AuthPolicy{}, IndexPolicyHost, func(o client.Object) []string {
			hosts := o.(*authgatev1.AuthPolicy).Spec.Hosts
			out := make([]string, len(hosts))
			for i, h := range hosts {
				out[i] = string(h)
			}
			return out
		}},
	}
	for _, i := range indexes {
		if err := idx.IndexField(ctx, i.obj, i.field, i.extract); err != nil {
			return fmt.Errorf("indexing %T by %s: %w", i.obj, i.field, err)
		}
	}
	return nil
}
