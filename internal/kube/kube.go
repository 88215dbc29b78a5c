// Package kube holds what the operator and the webhook both need to talk to Kubernetes and to run
// as commands: the scheme of the types they read, the loading of the API server's address and
// credentials, and the logging and signal handling of their main. It does not talk to the API
// server itself.
package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/go-logr/logr"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	ctrlzap "sigs.k8s.io/controller-runtime/pkg/log/zap"

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

// Run runs a command's main work the way both commands do: with controller-runtime's zap logger
// on stderr (human-readable when development is set), which is also the logger of every informer
// and reconciler, and a context that ends on SIGINT or SIGTERM. It returns the exit code, logging
// the error that stopped run as "<what> stopped".
func Run(stderr io.Writer, development bool, what string, run func(context.Context) error) int {
	log := ctrlzap.New(ctrlzap.WriteTo(stderr), ctrlzap.UseDevMode(development))
	ctrllog.SetLogger(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(logr.NewContext(ctx, log)); err != nil {
		log.Error(err, what+" stopped")
		return 1
	}
	return 0
}
