// Package kube holds what the operator and the webhook both need to talk to Kubernetes: the scheme
// of the types they read and the loading of the API server's address and credentials. It does not
// talk to the API server itself.
package kube

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	authgatev1 "github.com/authgate/authgate/api/v1"
)

// Scheme returns a scheme with client-go's types and authgate's.
func Scheme() *k8sruntime.Scheme {
	s := k8sruntime.NewScheme()
	// Registering known, static types fails only on a programming error.
	if err := errors.Join(clientgoscheme.AddToScheme(s), authgatev1.AddToScheme(s)); err != nil {
		panic(fmt.Sprintf("building the scheme: %v", err))
	}
	return s
}

// Config finds the API server: the kubeconfig file named (a --kubeconfig flag), else $KUBECONFIG,
// else the service account of the pod the process runs in. Errors say which source failed.
func Config(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("loading --kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	if env := os.Getenv("KUBECONFIG"); env != "" {
		rules := &clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(env)}
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("loading $KUBECONFIG (%s): %w", env, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("finding the API server: no --kubeconfig or $KUBECONFIG, and not in a pod: %w", err)
	}
	return cfg, nil
}
