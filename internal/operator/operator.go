// Package operator wires authgate's control plane: flags, the controller-runtime manager (leader
// election, metrics, health probes) and the reconcilers of internal/controller. cmd/operator only
// calls Main. The operator writes AuthPolicy status, the signing-key Secrets it owns and the auth
// annotations of Ingresses; it never answers checks (that is the webhook).
package operator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/authgate/authgate/internal/controller"
	"github.com/authgate/authgate/internal/kube"
)

// Defaults of the flags that decide how fast the operator works through a burst of policies: at
// these, 1000 new policies are all Ready within seconds (BenchmarkThousandPoliciesReady in
// internal/controller). Every status is one PATCH, so the request rate is what bounds a burst.
const (
	DefaultKubeAPIQPS   = 200
	DefaultKubeAPIBurst = 400
	DefaultWorkers      = 4
)

// Options are the operator's flags.
type Options struct {
	// Kubeconfig is a kubeconfig file; empty: KUBECONFIG, then the in-cluster configuration.
	Kubeconfig string
	// RestConfig, when set, is used instead of Kubeconfig (tests).
	RestConfig *rest.Config
	// KubeAPIQPS and KubeAPIBurst bound the operator's requests to the API server.
	KubeAPIQPS   float32
	KubeAPIBurst int
	MetricsAddr  string
	HealthAddr   string
	// LeaderElect runs the reconcilers in one replica at a time.
	LeaderElect bool
	// LeaderElectionNamespace holds the Lease; empty: the namespace the operator runs in.
	LeaderElectionNamespace string
	LeaderElectionID        string
	// Wiring is where Ingresses are pointed (--webhook-url, --login-url).
	Wiring controller.Wiring
	// Workers bounds the policies reconciled at once.
	Workers         int
	ShutdownTimeout time.Duration
	LogDevelopment  bool
}

// Main runs the operator command with args (without the program name) and returns the exit code.
func Main(args []string, stderr io.Writer) int {
	opts, err := ParseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	return kube.Run(stderr, opts.LogDevelopment, "Operator", func(ctx context.Context) error { return Run(ctx, opts) })
}

// ParseFlags reads the operator's flags.
func ParseFlags(args []string, output io.Writer) (Options, error) {
	fs := flag.NewFlagSet("operator", flag.ContinueOnError)
	fs.SetOutput(output)
	var o Options
	var qps float64
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then the in-cluster service account)")
	fs.Float64Var(&qps, "kube-api-qps", DefaultKubeAPIQPS, "requests per second to the API server")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", DefaultKubeAPIBurst, "burst of requests to the API server")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", ":9090", "address for /metrics (\"0\": off)")
	fs.StringVar(&o.HealthAddr, "health-addr", ":8081", "address for /healthz and /readyz (\"0\": off)")
	fs.BoolVar(&o.LeaderElect, "leader-elect", true, "elect one active replica through a Lease")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the Lease (default: the operator's own)")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", "authgate-operator.authgate.dev", "name of the Lease")
	fs.StringVar(&o.Wiring.WebhookURL, "webhook-url", "", "base URL of the webhook Service that Ingresses send checks to, e.g. http://authgate-webhook.authgate.svc:8080 (required)")
	fs.StringVar(&o.Wiring.LoginURL, "login-url", "", "login page for policies that name none in spec.login.url, e.g. https://auth.example.com/auth/login")
	fs.IntVar(&o.Workers, "workers", DefaultWorkers, "policies reconciled at once")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long reconciles in progress may take after SIGTERM")
	fs.BoolVar(&o.LogDevelopment, "log-development", false, "human-readable logs")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.KubeAPIQPS = float32(qps)
	return o, o.validate()
}

func (o Options) validate() error {
	if o.Wiring.WebhookURL == "" {
		return errors.New("--webhook-url is required: it is where wired Ingresses send their checks")
	}
	if err := o.Wiring.Validate(); err != nil {
		return err
	}
	// NaN and infinity parse as floats too; neither is a rate (NaN <= 0 is false).
	if !(o.KubeAPIQPS > 0) || math.IsInf(float64(o.KubeAPIQPS), 1) || o.KubeAPIBurst < 1 {
		return fmt.Errorf("--kube-api-qps %v and --kube-api-burst %d must be positive, the rate finite", o.KubeAPIQPS, o.KubeAPIBurst)
	}
	if o.Workers < 1 || o.Workers > 64 {
		return fmt.Errorf("--workers %d: want 1 to 64", o.Workers)
	}
	return nil
}

// Leader election holds a Lease and records its changes as core Events, both in the Lease's
// namespace only.
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update,namespace=system
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch,namespace=system

// Run runs the operator until ctx ends.
func Run(ctx context.Context, o Options) error {
	if err := o.validate(); err != nil {
		return err
	}
	log := logr.FromContextOrDiscard(ctx)
	cfg := o.RestConfig
	if cfg == nil {
		var err error
		if cfg, err = kube.Config(o.Kubeconfig); err != nil {
			return err
		}
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = o.KubeAPIQPS, o.KubeAPIBurst
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: kube.Scheme(),
		Logger: log,
		// Secret data is read per Secret, when its resourceVersion changes, and never cached
		// whole: a Get of a full Secret goes to the API server.
		Client:                        client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:        o.HealthAddr,
		LeaderElection:                o.LeaderElect,
		LeaderElectionID:              o.LeaderElectionID,
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       ptr.To(o.ShutdownTimeout),
		Controller:                    config.Controller{RecoverPanic: ptr.To(true)},
	})
	if err != nil {
		return fmt.Errorf("creating the controller manager: %w", err)
	}
	if err := controller.SetupIndexes(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	// The manager serves controller-runtime's registry on --metrics-addr: the operator's own
	// metrics join it there.
	metrics, err := controller.NewMetrics(ctrlmetrics.Registry)
	if err != nil {
		return fmt.Errorf("registering the operator's metrics: %w", err)
	}
	recorder := mgr.GetEventRecorder("authgate-operator")
	policies := &controller.AuthPolicyReconciler{
		Client: mgr.GetClient(), Recorder: recorder, Wiring: o.Wiring, MaxConcurrentReconciles: o.Workers,
		Metrics: metrics,
	}
	if err := policies.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the AuthPolicy reconciler: %w", err)
	}
	ingresses := &controller.IngressReconciler{Client: mgr.GetClient(), Recorder: recorder, Wiring: o.Wiring}
	if err := ingresses.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the Ingress reconciler: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	// Ready once the caches have synced: before that, a reconcile would report what it cannot see.
	if err := mgr.AddReadyzCheck("caches", func(req *http.Request) error {
		wait, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(wait) {
			return errors.New("caches not synced")
		}
		return nil
	}); err != nil {
		return err
	}
	log.Info("Starting the operator", "webhookURL", o.Wiring.WebhookURL, "loginURL", o.Wiring.LoginURL, "leaderElection", o.LeaderElect)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running the controller manager: %w", err)
	}
	return nil
}
