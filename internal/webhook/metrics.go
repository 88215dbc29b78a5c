package webhook

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/login"
	"github.com/authgate/authgate/internal/proxy"
	"github.com/authgate/authgate/internal/store"
)

// metrics are the webhook's Prometheus metrics, all of them: the check path, the store, the caches,
// revocations and the login endpoints. The packages that do the work know nothing of Prometheus;
// they report through small hooks (store.Observer, login.Metrics, lookup counters) that this type
// implements. Each Run builds its own on a registry of its own: nothing is registered globally.
//
// Labels stay few: policies, protocols, modes, outcomes, store operations and fixed result names;
// never a user, a client address or anything a client chooses.
type metrics struct {
	decisions *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	fallback  *prometheus.CounterVec

	storeDuration *prometheus.HistogramVec
	storeErrors   *prometheus.CounterVec
	cacheRequests *prometheus.CounterVec
	revocations   *prometheus.CounterVec
	logins        *prometheus.CounterVec
	logouts       *prometheus.CounterVec
	refreshes     *prometheus.CounterVec
	refreshReuse  *prometheus.CounterVec

	// denylist is measured when a scrape asks; nil until Run has built it.
	denylist atomic.Pointer[authz.Denylist]
}

// Values of the source label of authgate_revocations_total.
const (
	revocationLocal   = "local"
	revocationChannel = "channel"
)

// revocationKinds are the kinds counted by authgate_revocations_total: the feed's own ups and downs
// are not revocations.
var revocationKinds = []store.RevocationKind{store.RevokeSession, store.RevokeFamily, store.RevokeUser}

// newRegistry returns the registry Run serves on /metrics, with every collector of the webhook.
func newRegistry() (*prometheus.Registry, *metrics) {
	registry := prometheus.NewRegistry()
	return registry, registerMetrics(registry)
}

// registerMetrics registers the Go and process collectors and every metric of the webhook on reg.
func registerMetrics(reg prometheus.Registerer) *metrics {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return newMetrics(reg)
}

// RegisterMetrics registers on reg every collector Run serves on /metrics, with nothing observed:
// the chart's alert rules and dashboard are checked against what it registers.
func RegisterMetrics(reg prometheus.Registerer) { registerMetrics(reg) }

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_decisions_total",
			Help: "Check decisions by policy, rule mode, protocol and outcome.",
		}, []string{"policy", "mode", "protocol", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authgate_check_duration_seconds",
			Help:    "Time to decide a check, by protocol.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
		}, []string{"protocol"}),
		fallback: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_session_store_fallback_total",
			Help: "Sessions allowed on a cached record while the store was unavailable (onStoreUnavailable: AllowCached).",
		}, []string{"policy"}),
		storeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authgate_store_operation_duration_seconds",
			Help:    "Time a session-store operation took, failed ones included, by store and operation.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"store", "operation"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_store_errors_total",
			Help: "Session-store operations that failed (not found is an answer, not a failure; a client that went away is not counted), by store and operation.",
		}, []string{"store", "operation"}),
		cacheRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_cache_requests_total",
			Help: "Lookups of the session cache and of the verified-token cache (by checks, logouts and userinfo), by cache and result (hit or miss).",
		}, []string{"cache", "result"}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_revocations_total",
			Help: "Revocations by kind (session, family, user) and source: local, published by this replica; channel, received from the store's feed (this replica's own included).",
		}, []string{"kind", "source"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_logins_total",
			Help: "Login attempts by policy and result: success, failure, rate_limited, invalid_request or error.",
		}, []string{"policy", "result"}),
		logouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_logouts_total",
			Help: "Completed logouts by policy, and whether they logged the user out everywhere.",
		}, []string{"policy", "everywhere"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_refreshes_total",
			Help: "Refresh-token requests by policy and result: success, failure, invalid_request or error. The policy is empty while the token is unknown.",
		}, []string{"policy", "result"}),
		refreshReuse: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_refresh_reuse_total",
			Help: "Used refresh tokens presented again outside the grace window, each of which revoked its login, by policy.",
		}, []string{"policy"}),
	}
	denylistSize := func(kind string) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "authgate_denylist_entries",
			Help:        "Revoked login families and users this replica holds to refuse access tokens, by kind.",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 {
			d := m.denylist.Load()
			if d == nil {
				return 0
			}
			families, users := d.Len()
			if kind == "family" {
				return float64(families)
			}
			return float64(users)
		})
	}
	reg.MustRegister(m.decisions, m.duration, m.fallback, m.storeDuration, m.storeErrors, m.cacheRequests,
		m.revocations, m.logins, m.logouts, m.refreshes, m.refreshReuse, denylistSize("family"), denylistSize("user"))
	// Series that exist whatever happens start at zero, so that rates and alerts see the first
	// increment.
	for _, kind := range revocationKinds {
		m.revocations.WithLabelValues(string(kind), revocationLocal)
		m.revocations.WithLabelValues(string(kind), revocationChannel)
	}
	for _, cache := range []string{"session", "token"} {
		m.cacheCounters(cache)
	}
	return m
}

// measured is the checker every adapter calls: it records each decision in the metrics and, when
// tracing is on, in a span.
type measured struct {
	next proxy.Checker
	m    *metrics
	// tracer is nil when tracing is off: a check then costs no span, not even a no-op one.
	tracer trace.Tracer
}

func (c *measured) Check(ctx context.Context, r *authz.Request) authz.Decision {
	var span trace.Span
	if c.tracer != nil {
		ctx, span = c.tracer.Start(ctx, "authgate.check", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("authgate.protocol", string(r.Protocol))))
		defer span.End()
	}
	start := time.Now()
	d := c.next.Check(ctx, r)
	c.m.duration.WithLabelValues(string(r.Protocol)).Observe(time.Since(start).Seconds())
	policyName, mode := "", ""
	if d.Policy != nil {
		policyName = d.Policy.Name()
	}
	if d.Rule != nil {
		mode = string(d.Rule.Mode())
	}
	c.m.decisions.WithLabelValues(policyName, mode, string(r.Protocol), d.Outcome.String()).Inc()
	if d.Reason == "session_cached" {
		c.m.fallback.WithLabelValues(policyName).Inc()
	}
	if span != nil {
		span.SetAttributes(attribute.String("authgate.policy", policyName), attribute.String("authgate.mode", mode),
			attribute.String("authgate.outcome", d.Outcome.String()), attribute.String("authgate.reason", d.Reason))
		if d.Outcome == authz.Error {
			span.SetStatus(codes.Error, d.Reason)
		}
	}
	return d
}

// cacheCounters returns the hit and miss counters of a cache.
func (m *metrics) cacheCounters(cache string) (hits, misses prometheus.Counter) {
	return m.cacheRequests.WithLabelValues(cache, "hit"), m.cacheRequests.WithLabelValues(cache, "miss")
}

// watchDenylist has scrapes report the size of d.
func (m *metrics) watchDenylist(d *authz.Denylist) { m.denylist.Store(d) }

// revocationReceived counts what the store's feed delivers; Run subscribes it.
func (m *metrics) revocationReceived(r store.Revocation) {
	switch r.Kind {
	case store.RevokeSession, store.RevokeFamily, store.RevokeUser:
		m.revocations.WithLabelValues(string(r.Kind), revocationChannel).Inc()
	}
}

// storeObserver returns the store.Observer of the store named name ("memory" or "redis"), its
// series resolved once.
func (m *metrics) storeObserver(name string) store.Observer {
	o := &storeObserver{
		duration:  map[store.Operation]prometheus.Observer{},
		errors:    map[store.Operation]prometheus.Counter{},
		published: map[store.RevocationKind]prometheus.Counter{},
	}
	for _, op := range store.Operations {
		o.duration[op] = m.storeDuration.WithLabelValues(name, string(op))
		o.errors[op] = m.storeErrors.WithLabelValues(name, string(op))
	}
	for _, kind := range revocationKinds {
		o.published[kind] = m.revocations.WithLabelValues(string(kind), revocationLocal)
	}
	return o
}

// storeObserver's maps are filled before it is used and only read afterwards.
type storeObserver struct {
	duration  map[store.Operation]prometheus.Observer
	errors    map[store.Operation]prometheus.Counter
	published map[store.RevocationKind]prometheus.Counter
}

func (o *storeObserver) Observe(op store.Operation, took time.Duration, err error) {
	if d, ok := o.duration[op]; ok {
		d.Observe(took.Seconds())
	}
	// Not found is an answer; a client that hung up is not the store's failure.
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, context.Canceled) {
		return
	}
	if e, ok := o.errors[op]; ok {
		e.Inc()
	}
}

func (o *storeObserver) Published(kind store.RevocationKind) {
	if c, ok := o.published[kind]; ok {
		c.Inc()
	}
}

var _ login.Metrics = (*metrics)(nil)

func (m *metrics) Login(policy string, result login.Result) {
	m.logins.WithLabelValues(policy, string(result)).Inc()
}

func (m *metrics) Logout(policy string, everywhere bool) {
	e := "false"
	if everywhere {
		e = "true"
	}
	m.logouts.WithLabelValues(policy, e).Inc()
}

func (m *metrics) Refresh(policy string, result login.Result) {
	m.refreshes.WithLabelValues(policy, string(result)).Inc()
}

func (m *metrics) RefreshReuse(policy string) { m.refreshReuse.WithLabelValues(policy).Inc() }
