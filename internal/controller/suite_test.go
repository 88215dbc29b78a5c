package controller_test

import (
	"context"
	"os"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/authgate/authgate/internal/controller"
	"github.com/authgate/authgate/internal/source"
	"github.com/authgate/authgate/internal/testenv"
)

// env is the real API server every test of the package shares; each test works in a namespace of
// its own, with a manager of its own that watches only that namespace.
var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &env))
}

// startManager starts a manager whose cache sees only namespace ns, with the package's indexes and
// whatever setup adds, and stops it when the test ends.
func startManager(t testing.TB, ns string, setup func(ctrl.Manager) error) ctrl.Manager {
	t.Helper()
	return startManagerFor(t, []string{ns}, setup)
}

// startManagerFor is startManager for several namespaces.
func startManagerFor(t testing.TB, namespaces []string, setup func(ctrl.Manager) error) ctrl.Manager {
	t.Helper()
	return startManagerWithConfig(t, env.Config, namespaces, setup)
}

// startManagerWithConfig is startManagerFor with a client configuration of its own.
func startManagerWithConfig(t testing.TB, cfg *rest.Config, namespaces []string, setup func(ctrl.Manager) error) ctrl.Manager {
	t.Helper()
	defaults := map[string]cache.Config{}
	for _, ns := range namespaces {
		defaults[ns] = cache.Config{}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 env.Scheme,
		Cache:                  cache.Options{DefaultNamespaces: defaults},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Each test starts the same controllers again in one process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatalf("creating a manager: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := controller.SetupIndexes(ctx, mgr.GetFieldIndexer()); err != nil {
		t.Fatal(err)
	}
	if err := setup(mgr); err != nil {
		t.Fatalf("setting up the reconcilers: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager stopped: %v", err)
		}
	})
	syncCtx, syncCancel := context.WithTimeout(ctx, 30*time.Second)
	defer syncCancel()
	if !mgr.GetCache().WaitForCacheSync(syncCtx) {
		t.Fatal("the manager's cache did not sync")
	}
	return mgr
}

// newSecretReader reads Secrets as the operator does: metadata from the manager's cache, data from
// the API server.
func newSecretReader(mgr ctrl.Manager) *source.SecretReader {
	return source.NewSecretReader(mgr.GetCache(), mgr.GetAPIReader())
}
