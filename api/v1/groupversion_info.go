// Package v1 contains the AuthPolicy API of authgate, group authgate.dev, version v1.
//
// An AuthPolicy says, for a set of hosts and ordered path rules, how a request proves who it is
// (a server-side session, a signed JWT, either, or nothing) and which roles it needs. The types
// carry the schema's validation as kubebuilder markers and CEL rules, so that the API server
// refuses a policy that could never work, with a message that names the field. Checks that need
// other objects (Secrets, other policies) are made by the operator and reported in conditions.
//
// +kubebuilder:object:generate=true
// +groupName=authgate.dev
package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every type in this package.
	GroupVersion = schema.GroupVersion{Group: "authgate.dev", Version: "v1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers the types with the scheme. The package depends only on apimachinery, so
// that clients can import the API without controller-runtime.
func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &AuthPolicy{}, &AuthPolicyList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
