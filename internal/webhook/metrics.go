package webhook

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/proxy"
)

// metrics are the check path's Prometheus metrics.
type metrics struct {
	decisions *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	fallback  *prometheus.CounterVec
}

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
	}
	m.fallback = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_session_store_fallback_total",
		Help: "Sessions allowed on a cached record while the store was unavailable (onStoreUnavailable: AllowCached).",
	}, []string{"policy"})
	reg.MustRegister(m.decisions, m.duration, m.fallback)
	return m
}

// wrap builds an adapter's handler around a checker that records every decision.
func (m *metrics) wrap(c proxy.Checker, adapter func(proxy.Checker) http.Handler) http.Handler {
	return adapter(&measured{next: c, m: m})
}

type measured struct {
	next proxy.Checker
	m    *metrics
}

func (c *measured) Check(ctx context.Context, r *authz.Request) authz.Decision {
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
	return d
}
