// Package webhook wires the data plane: flags, the policy source, the store, the decision engine,
// the protocol adapters and the login endpoints, served over HTTP. cmd/webhook only calls Main.
package webhook

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"k8s.io/client-go/rest"

	"github.com/authgate/authgate/internal/audit"
	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/kube"
	"github.com/authgate/authgate/internal/login"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/proxy/envoygrpc"
	"github.com/authgate/authgate/internal/proxy/envoyhttp"
	"github.com/authgate/authgate/internal/proxy/nginx"
	"github.com/authgate/authgate/internal/proxy/traefik"
	"github.com/authgate/authgate/internal/session"
	"github.com/authgate/authgate/internal/source"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/token"
)

// Options are the webhook's flags.
type Options struct {
	HTTPAddr string
	// GRPCAddr serves Envoy's ext_authz gRPC Check and gRPC health; empty turns it off.
	GRPCAddr string
	// GRPCCertFile and GRPCKeyFile serve gRPC over TLS (PEM files, such as a mounted
	// kubernetes.io/tls Secret's tls.crt and tls.key); both empty serve plaintext.
	GRPCCertFile, GRPCKeyFile string
	MetricsAddr               string
	// PprofAddr serves Go's profiler (net/http/pprof) for performance work; empty: off. It shows
	// the process's internals: bind it to localhost only.
	PprofAddr string
	// Manifests is a folder of manifests (standalone mode). Empty: cluster mode, where policies
	// and their Secrets come from the API server.
	Manifests        string
	DefaultNamespace string
	// Kubeconfig is the kubeconfig file of cluster mode. Empty: $KUBECONFIG, else the pod's
	// service account.
	Kubeconfig string
	// RestConfig, when set, reaches the API server in cluster mode instead of Kubeconfig. It is
	// not a flag: tests and embedders set it.
	RestConfig *rest.Config
	// Store is "memory" (one replica) or "redis" (shared by every replica, configured by Redis).
	Store string
	Redis store.RedisConfig
	// SecretKeyFile holds at least 32 random bytes shared by every replica: it keys CSRF tokens and
	// refresh-token rotation. Empty: a random key per process (fine for one replica).
	SecretKeyFile  string
	TrustForwarded bool
	RefreshGrace   time.Duration
	// LoginsPerMinuteIP and LoginsPerMinuteAccount limit login attempts (also the bursts allowed).
	LoginsPerMinuteIP      int
	LoginsPerMinuteAccount int
	// CacheSize bounds the sessions and verified tokens kept in memory; 0 turns the caches off.
	CacheSize int
	// MaxStaleness bounds how long a cached session is trusted without reading the store again.
	MaxStaleness time.Duration
	// StoreCheckTimeout bounds the store calls of one session check (session.WithCheckTimeout).
	StoreCheckTimeout time.Duration
	ShutdownTimeout   time.Duration
	LogDevelopment    bool
	// OTLPEndpoint receives trace spans of checks and logins over OTLP/gRPC: host:port (TLS) or a
	// URL (http:// for plaintext). Empty: no tracing.
	OTLPEndpoint string
}

// Main runs the webhook command with args (without the program name) and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "hash-password" {
		if err := hashPassword(stdin, stdout); err != nil {
			fmt.Fprintln(stderr, "hash-password:", err)
			return 1
		}
		return 0
	}
	opts, err := ParseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	return kube.Run(stderr, opts.LogDevelopment, "Webhook", func(ctx context.Context) error { return Run(ctx, opts) })
}

// ParseFlags reads the webhook's flags.
func ParseFlags(args []string, output io.Writer) (Options, error) {
	fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
	fs.SetOutput(output)
	var o Options
	fs.StringVar(&o.HTTPAddr, "http-addr", ":8080", "address for checks, login and health endpoints")
	fs.StringVar(&o.GRPCAddr, "grpc-addr", ":9001", "address for Envoy's ext_authz gRPC Check and gRPC health (empty: off)")
	fs.StringVar(&o.GRPCCertFile, "grpc-tls-cert-file", "", "PEM certificate for gRPC over TLS (with --grpc-tls-key-file; e.g. a mounted Secret's tls.crt)")
	fs.StringVar(&o.GRPCKeyFile, "grpc-tls-key-file", "", "PEM private key for gRPC over TLS")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", ":9090", "address for /metrics (empty: off)")
	fs.StringVar(&o.PprofAddr, "pprof-addr", "", "address for Go's profiler at /debug/pprof/, for performance work only (empty: off; bind to localhost)")
	fs.StringVar(&o.Manifests, "manifests", "", "standalone mode: a folder of AuthPolicy and Secret manifests, reloaded on change (empty: read them from the cluster)")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "cluster mode: kubeconfig file of the API server (empty: $KUBECONFIG, else the pod's service account)")
	fs.StringVar(&o.DefaultNamespace, "default-namespace", "default", "namespace of manifests that name none")
	fs.StringVar(&o.Store, "store", "memory", "session store: memory (one replica) or redis (shared by replicas)")
	// Redis settings start from the AUTHGATE_REDIS_* environment (the only place for passwords) and
	// flags override them.
	o.Redis = store.RedisConfigFromEnv(os.Getenv)
	redisAddrs := strings.Join(o.Redis.Addrs, ",")
	fs.StringVar(&o.Redis.URL, "redis-url", o.Redis.URL, "standalone Redis as redis://[user@]host:port[/db] or rediss:// for TLS (env AUTHGATE_REDIS_URL)")
	fs.StringVar(&redisAddrs, "redis-addrs", redisAddrs, "comma-separated host:port: one server, the Sentinels (with --redis-sentinel-master), or Cluster nodes (env AUTHGATE_REDIS_ADDRS)")
	fs.StringVar(&o.Redis.SentinelMaster, "redis-sentinel-master", o.Redis.SentinelMaster, "the master's name at the Sentinels in --redis-addrs (env AUTHGATE_REDIS_SENTINEL_MASTER)")
	fs.BoolVar(&o.Redis.Cluster, "redis-cluster", o.Redis.Cluster, "treat --redis-addrs as Redis Cluster nodes even when it names one (a configuration endpoint) (env AUTHGATE_REDIS_CLUSTER)")
	fs.StringVar(&o.Redis.Username, "redis-username", o.Redis.Username, "ACL user; the password comes from env AUTHGATE_REDIS_PASSWORD (env AUTHGATE_REDIS_USERNAME)")
	fs.IntVar(&o.Redis.DB, "redis-db", o.Redis.DB, "database number (standalone and Sentinel)")
	fs.BoolVar(&o.Redis.TLS, "redis-tls", o.Redis.TLS, "connect with TLS (env AUTHGATE_REDIS_TLS)")
	fs.StringVar(&o.Redis.CAFile, "redis-ca-file", o.Redis.CAFile, "PEM certificate authorities of the Redis servers (env AUTHGATE_REDIS_CA_FILE)")
	fs.StringVar(&o.Redis.CertFile, "redis-cert-file", o.Redis.CertFile, "PEM client certificate, for servers that require one")
	fs.StringVar(&o.Redis.KeyFile, "redis-key-file", o.Redis.KeyFile, "PEM client key, with --redis-cert-file")
	fs.StringVar(&o.Redis.Prefix, "redis-prefix", o.Redis.Prefix, "prefix of every key and of the revocation channel (default authgate)")
	fs.DurationVar(&o.Redis.ReadTimeout, "redis-timeout", o.Redis.ReadTimeout, "how long a command may wait for Redis before the policy's onStoreUnavailable applies (default 1s)")
	fs.StringVar(&o.SecretKeyFile, "secret-key-file", "", "file with at least 32 random bytes shared by all replicas (CSRF, refresh rotation); default: random per process")
	fs.BoolVar(&o.TrustForwarded, "trust-forwarded-for", false, "take the login client's address from X-Real-IP / X-Forwarded-For (set when the login page is only reachable through the ingress)")
	fs.DurationVar(&o.RefreshGrace, "refresh-grace", 10*time.Second, "how long a rotated refresh token may be presented again by a concurrent request and get the same new token")
	fs.IntVar(&o.LoginsPerMinuteIP, "login-attempts-per-minute-ip", 10, "login attempts allowed per client address (IPv6: per /64) and minute, per replica")
	fs.IntVar(&o.LoginsPerMinuteAccount, "login-attempts-per-minute-account", 5, "login attempts allowed per account and minute, per replica")
	fs.IntVar(&o.CacheSize, "cache-size", 100_000, "sessions and verified tokens each replica keeps in memory (0: no caches)")
	fs.DurationVar(&o.StoreCheckTimeout, "store-check-timeout", session.DefaultCheckTimeout, "how long the store calls of one session check may take before the policy's onStoreUnavailable applies; keep it below the proxy's timeout (Envoy's default is 200ms)")
	fs.DurationVar(&o.MaxStaleness, "cache-max-staleness", 30*time.Second, "how long a cached session is trusted without reading the store again, should a revocation be missed")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long in-flight requests may take after SIGTERM")
	fs.BoolVar(&o.LogDevelopment, "log-development", false, "human-readable logs")
	fs.StringVar(&o.OTLPEndpoint, "otlp-endpoint", "", "OpenTelemetry collector that receives trace spans of checks and logins over OTLP/gRPC: host:port (TLS), or http://host:port for plaintext (empty: no tracing; sampling from OTEL_TRACES_SAMPLER)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q (the only subcommand is hash-password)", fs.Args())
	}
	if o.Manifests != "" && o.Kubeconfig != "" {
		return o, errors.New("--manifests and --kubeconfig exclude each other: policies come from a folder or from a cluster")
	}
	o.Redis.Addrs = nil
	for _, a := range strings.Split(redisAddrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			o.Redis.Addrs = append(o.Redis.Addrs, a)
		}
	}
	o.Redis.WriteTimeout = o.Redis.ReadTimeout
	switch o.Store {
	case "memory":
	case "redis":
		if o.Redis.URL == "" && len(o.Redis.Addrs) == 0 {
			return o, errors.New("--store redis needs --redis-url or --redis-addrs (or AUTHGATE_REDIS_URL / AUTHGATE_REDIS_ADDRS)")
		}
		if err := o.Redis.Validate(); err != nil {
			return o, fmt.Errorf("--store redis: %w", err)
		}
	default:
		return o, fmt.Errorf("--store %q: want memory or redis", o.Store)
	}
	if (o.GRPCCertFile == "") != (o.GRPCKeyFile == "") {
		return o, errors.New("--grpc-tls-cert-file and --grpc-tls-key-file go together")
	}
	if o.LoginsPerMinuteIP < 1 || o.LoginsPerMinuteAccount < 1 {
		return o, errors.New("--login-attempts-per-minute-ip and --login-attempts-per-minute-account must be at least 1")
	}
	if o.CacheSize < 0 {
		return o, fmt.Errorf("--cache-size %d: must not be negative", o.CacheSize)
	}
	if o.MaxStaleness <= 0 || o.MaxStaleness > 10*time.Minute {
		return o, fmt.Errorf("--cache-max-staleness %s: must be more than 0s and at most 10m", o.MaxStaleness)
	}
	if o.StoreCheckTimeout < time.Millisecond || o.StoreCheckTimeout > 10*time.Second {
		return o, fmt.Errorf("--store-check-timeout %s: must be between 1ms and 10s", o.StoreCheckTimeout)
	}
	if o.RefreshGrace < 0 || o.RefreshGrace > time.Minute {
		return o, fmt.Errorf("--refresh-grace %s: must be between 0s and 1m", o.RefreshGrace)
	}
	return o, nil
}

// hashPassword prints the bcrypt hash (cost 12) of a password read from stdin, for users.yaml.
func hashPassword(stdin io.Reader, stdout io.Writer) error {
	b, err := io.ReadAll(io.LimitReader(stdin, 1024))
	if err != nil {
		return fmt.Errorf("reading the password from stdin: %w", err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return errors.New("no password on stdin (pipe it in: printf '%s' \"$PASSWORD\" | webhook hash-password)")
	}
	if len(pw) > 72 {
		return errors.New("bcrypt uses at most 72 bytes of a password; this one is longer")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), 12)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, string(hash))
	return err
}

// clusterConfig finds the API server of cluster mode: Options.RestConfig, else --kubeconfig,
// $KUBECONFIG or the pod's service account.
func clusterConfig(o Options) (*rest.Config, error) {
	if o.RestConfig != nil {
		return o.RestConfig, nil
	}
	cfg, err := kube.Config(o.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("%w (for standalone mode, pass --manifests)", err)
	}
	return cfg, nil
}

func secretKey(path string, log logr.Logger) ([]byte, error) {
	if path == "" {
		log.Info("No --secret-key-file: using a random key for this process; run one replica only, or share a key file")
		key := make([]byte, 32)
		_, err := rand.Read(key)
		return key, err
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading --secret-key-file: %w", err)
	}
	if len(key) < 32 {
		return nil, fmt.Errorf("--secret-key-file %s holds %d bytes; at least 32 are needed", path, len(key))
	}
	return key, nil
}

// Run serves until ctx ends, then shuts down gracefully.
func Run(ctx context.Context, o Options) error {
	log := logr.FromContextOrDiscard(ctx)
	key, err := secretKey(o.SecretKeyFile, log)
	if err != nil {
		return err
	}
	registry, metrics := newRegistry()
	// Security events go to a logger of their own, named "audit" from the root.
	auditLog := audit.New(log)
	unmeasured, err := newStore(o, log)
	if err != nil {
		return err
	}
	// Every caller gets the measured store: its latency and errors are observed in one place.
	st := store.Instrument(unmeasured, metrics.storeObserver(o.Store))
	defer st.Close()
	denylist, err := authz.NewDenylist(ctx, st, nil)
	if err != nil {
		return err
	}
	defer denylist.Close()
	metrics.watchDenylist(denylist)
	defer st.Subscribe(metrics.revocationReceived)()
	verifier := token.NewVerifier(token.WithDenylist(denylist), token.WithCache(o.CacheSize),
		token.WithCacheCounters(metrics.cacheCounters("token")))
	defer verifier.Close()
	var sessionOpts []session.Option
	if o.CacheSize > 0 {
		cache := session.NewCache(o.CacheSize, o.MaxStaleness, nil, session.WithLookupCounters(metrics.cacheCounters("session")))
		defer cache.Follow(st)()
		sessionOpts = append(sessionOpts, session.WithCache(cache))
	}
	if o.StoreCheckTimeout > 0 {
		sessionOpts = append(sessionOpts, session.WithCheckTimeout(o.StoreCheckTimeout))
	}
	sessions := session.NewManager(st, nil, sessionOpts...)
	snapshots := &authz.AtomicSnapshot{}
	engine := authz.NewEngine(snapshots, sessions, verifier)

	// Sources publish from goroutines of their own; once Run returns, the store is closed and
	// nothing may be published any more.
	var publishing sync.Mutex
	stopped := false
	defer func() {
		publishing.Lock()
		stopped = true
		publishing.Unlock()
	}()
	publish := func(next *policy.Snapshot) {
		publishing.Lock()
		defer publishing.Unlock()
		if stopped {
			return
		}
		prev := snapshots.Load()
		snapshots.Store(next)
		revokeRemovedUsers(ctx, st, prev, next, time.Now(), log.WithName("users"), auditLog)
	}
	// watched reports the cluster source's first load: nil once the first snapshot is published,
	// or why there will be none. It stays nil in standalone mode, which loads before serving.
	var watched chan error
	if o.Manifests != "" {
		if err := source.WatchDir(ctx, o.Manifests, o.DefaultNamespace, publish, log.WithName("source")); err != nil {
			return fmt.Errorf("loading policies: %w", err)
		}
	} else {
		cfg, err := clusterConfig(o)
		if err != nil {
			return err
		}
		// Serving starts before the first snapshot, so that /healthz answers while the caches
		// fill (/readyz and checks wait for it).
		watchCtx, stopWatching := context.WithCancel(ctx)
		defer stopWatching()
		watched = make(chan error, 1)
		go func() {
			watched <- source.WatchCluster(watchCtx, cfg, source.ClusterOptions{}, publish, log.WithName("source"))
		}()
	}
	logins, err := login.NewService(login.Config{
		Snapshots: snapshots, Sessions: sessions, Store: st, Tokens: verifier, Key: key,
		TrustForwarded: o.TrustForwarded, RefreshGrace: o.RefreshGrace, Log: log.WithName("login"),
		Audit: auditLog, Metrics: metrics, Limiter: loginLimiter(o),
	})
	if err != nil {
		return err
	}

	checker := &measured{next: engine, m: metrics}
	var tracer *tracing
	if o.OTLPEndpoint != "" {
		if tracer, err = newTracing(ctx, o.OTLPEndpoint, log); err != nil {
			return err
		}
		defer func() {
			// The spans still buffered go out before Run returns.
			flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tracer.shutdown(flushCtx); err != nil {
				log.Error(err, "Sending the last trace spans")
			}
		}()
		checker.tracer = tracer.tracer
	}

	var ready atomic.Bool
	mux := http.NewServeMux()
	mux.Handle(nginx.Path, nginx.Handler(checker))
	mux.Handle(traefik.Path, traefik.Handler(checker))
	envoyHTTP := envoyhttp.Handler(checker)
	logins.Register(mux)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if snapshots.Load() == nil || !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})

	// Envoy's HTTP service sends the original path under the prefix, raw: it must reach the adapter
	// as sent, before ServeMux would clean "//" and "/../" with a redirect.
	var root http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, envoyhttp.PathPrefix); ok && (rest == "" || rest[0] == '/') {
			envoyHTTP.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	if tracer != nil {
		root = tracer.handler(root)
	}
	checks := newServer(o.HTTPAddr, root)
	// Every request's context starts from one that holds the logger, where adapters find it: set
	// once here rather than per request, which would copy each request to change its context.
	base := logr.NewContext(context.Background(), log)
	checks.BaseContext = func(net.Listener) context.Context { return base }
	servers := []*http.Server{checks}
	if o.MetricsAddr != "" {
		m := http.NewServeMux()
		m.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
		servers = append(servers, newServer(o.MetricsAddr, m))
	}
	if o.PprofAddr != "" {
		m := http.NewServeMux()
		m.HandleFunc("/debug/pprof/", pprof.Index)
		m.HandleFunc("/debug/pprof/profile", pprof.Profile)
		m.HandleFunc("/debug/pprof/trace", pprof.Trace)
		srv := newServer(o.PprofAddr, m)
		// A CPU profile takes as long as it was asked to run.
		srv.WriteTimeout = 0
		servers = append(servers, srv)
	}
	// Every address is bound before any is served, so that a failure leaves nothing listening.
	listeners := make([]net.Listener, 0, len(servers))
	for _, s := range servers {
		ln, err := net.Listen("tcp", s.Addr)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return fmt.Errorf("listening on %s: %w", s.Addr, err)
		}
		listeners = append(listeners, ln)
	}
	var grpcServer *grpc.Server
	var grpcListener net.Listener
	if o.GRPCAddr != "" {
		if grpcListener, err = net.Listen("tcp", o.GRPCAddr); err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return fmt.Errorf("listening on %s: %w", o.GRPCAddr, err)
		}
		grpcOpts := append(grpcServerOptions(), grpc.UnaryInterceptor(withLogger(log)))
		if o.GRPCCertFile != "" {
			creds, err := credentials.NewServerTLSFromFile(o.GRPCCertFile, o.GRPCKeyFile)
			if err != nil {
				grpcListener.Close()
				for _, l := range listeners {
					l.Close()
				}
				return fmt.Errorf("loading the gRPC TLS certificate: %w", err)
			}
			grpcOpts = append(grpcOpts, grpc.Creds(creds))
		}
		grpcServer = grpc.NewServer(grpcOpts...)
		envoygrpc.NewServer(checker).Register(grpcServer)
	}
	errs := make(chan error, len(servers)+1)
	if grpcServer != nil {
		log.Info("Serving gRPC", "addr", grpcListener.Addr().String())
		go func() {
			if err := grpcServer.Serve(grpcListener); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				errs <- err
			}
		}()
	}
	for i, s := range servers {
		ln := listeners[i]
		log.Info("Serving", "addr", ln.Addr().String())
		go func() {
			if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		}()
	}
	ready.Store(true)
	var runErr error
	for serving := true; serving; {
		select {
		case <-ctx.Done():
			serving = false
		case err := <-errs:
			// One server failed: the others are shut down too rather than left serving.
			runErr = err
			serving = false
		case err := <-watched:
			// Without a first snapshot the webhook would never get ready: stop with the reason,
			// so that Kubernetes shows it and restarts the pod.
			watched = nil
			if err != nil && ctx.Err() == nil {
				runErr = fmt.Errorf("loading policies from the cluster: %w", err)
				serving = false
			}
		}
	}
	// Readiness drops first, so that load balancers stop sending before the listeners close.
	ready.Store(false)
	log.Info("Shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	shutdownErr := runErr
	for _, s := range servers {
		shutdownErr = errors.Join(shutdownErr, s.Shutdown(shutdownCtx))
	}
	if grpcServer != nil {
		stopped := make(chan struct{})
		go func() { grpcServer.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-shutdownCtx.Done():
			grpcServer.Stop()
		}
	}
	return shutdownErr
}

// redisLog sends go-redis's own messages (reconnects, pool errors) to the webhook's log at
// verbosity 1: outages are reported by the decisions and metrics, not by a line per dial.
type redisLog struct{ log logr.Logger }

func (l redisLog) Printf(_ context.Context, format string, v ...any) {
	l.log.V(1).Info(fmt.Sprintf(format, v...))
}

// newStore builds the store the options name.
func newStore(o Options, log logr.Logger) (store.Store, error) {
	if o.Store != "redis" {
		return store.NewMemory(), nil
	}
	redis.SetLogger(redisLog{log.WithName("redis")})
	client, err := o.Redis.NewClient()
	if err != nil {
		return nil, fmt.Errorf("connecting to Redis (%s): %w", o.Redis, err)
	}
	st, err := store.NewRedis(client, store.RedisOptions{Prefix: o.Redis.Prefix})
	if err != nil {
		client.Close()
		return nil, err
	}
	return st, nil
}

// loginLimiter limits logins as the flags say; options built without flags get the defaults.
func loginLimiter(o Options) *login.Limiter {
	cfg := login.DefaultLimiterConfig()
	if o.LoginsPerMinuteIP > 0 {
		cfg.PerIP, cfg.IPBurst = rate.Every(time.Minute/time.Duration(o.LoginsPerMinuteIP)), o.LoginsPerMinuteIP
	}
	if o.LoginsPerMinuteAccount > 0 {
		cfg.PerAccount, cfg.AccountBurst = rate.Every(time.Minute/time.Duration(o.LoginsPerMinuteAccount)), o.LoginsPerMinuteAccount
	}
	return login.NewLimiter(cfg)
}

func newServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       120 * time.Second,
		// A request whose request line and headers exceed 64 KiB is refused with 431: net/http reads
		// 4 KiB beyond MaxHeaderBytes before it gives up, so the limit is set 4 KiB lower.
		MaxHeaderBytes: maxHeaderBytes - 4<<10,
	}
}

// maxHeaderBytes bounds a request's line and headers: a longer request is answered 431.
const maxHeaderBytes = 64 << 10

// grpcServerOptions bound what one client can hold of the gRPC server: a CheckRequest of at most
// 1 MiB, metadata of at most 64 KiB (as the HTTP servers' headers), 5 s to finish the handshake, and
// connections that are recycled after 5 minutes (with 30 s to finish their calls), so that Envoy's
// long-lived HTTP/2 connections spread over replicas added since they were opened.
func grpcServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(1 << 20),
		grpc.MaxHeaderListSize(64 << 10),
		grpc.ConnectionTimeout(5 * time.Second),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle:     10 * time.Minute,
			MaxConnectionAge:      5 * time.Minute,
			MaxConnectionAgeGrace: 30 * time.Second,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
}

// withLogger gives each gRPC call the webhook's logger, as the HTTP servers' BaseContext does for
// requests, so that what the Check handler logs (a misconfigured proxy, a refused request) is kept.
func withLogger(log logr.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return handler(logr.NewContext(ctx, log), req)
	}
}
