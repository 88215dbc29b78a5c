package webhook

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/internal/store"
)

// value returns the value of the counter, gauge or histogram count of name whose labels are
// exactly labels, and whether there is one.
func value(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metric
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// TestStoreObserver: every operation is timed; failures are counted as errors, but not a miss, and
// not a client that went away.
func TestStoreObserver(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	o := m.storeObserver("redis")
	unavailable := fmt.Errorf("redis store: get session: %w: dial tcp: connection refused", store.ErrUnavailable)
	for _, err := range []error{nil, store.ErrNotFound, unavailable, fmt.Errorf("%w: %w", store.ErrUnavailable, context.Canceled), unavailable} {
		o.Observe(store.OpGetSession, time.Millisecond, err)
	}
	o.Observe(store.OpCreateSession, time.Millisecond, fmt.Errorf("%w: %w", store.ErrUnavailable, context.DeadlineExceeded))
	o.Published(store.RevokeFamily)
	o.Published(store.SubscriptionLost) // not a revocation
	for _, want := range []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"authgate_store_operation_duration_seconds", map[string]string{"store": "redis", "operation": "get_session"}, 5},
		{"authgate_store_operation_duration_seconds", map[string]string{"store": "redis", "operation": "create_session"}, 1},
		{"authgate_store_errors_total", map[string]string{"store": "redis", "operation": "get_session"}, 2},
		{"authgate_store_errors_total", map[string]string{"store": "redis", "operation": "create_session"}, 1},
		{"authgate_store_errors_total", map[string]string{"store": "redis", "operation": "revoke_user"}, 0},
		{"authgate_revocations_total", map[string]string{"kind": "family", "source": "local"}, 1},
		{"authgate_revocations_total", map[string]string{"kind": "family", "source": "channel"}, 0},
	} {
		if got, ok := value(t, reg, want.name, want.labels); !ok || got != want.value {
			t.Errorf("%s%v = %v (present: %t), want %v", want.name, want.labels, got, ok, want.value)
		}
	}
	m.revocationReceived(store.Revocation{Kind: store.RevokeUser})
	m.revocationReceived(store.Revocation{Kind: store.SubscriptionRestored})
	if got, _ := value(t, reg, "authgate_revocations_total", map[string]string{"kind": "user", "source": "channel"}); got != 1 {
		t.Errorf("received user revocations = %v, want 1", got)
	}
	if _, ok := value(t, reg, "authgate_revocations_total", map[string]string{"kind": "subscription-restored", "source": "channel"}); ok {
		t.Error("the feed's own ups and downs are counted as revocations")
	}
}

// TestLoginMetrics: what the login endpoints report lands in their series.
func TestLoginMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	m.Login("ns/p", "failure")
	m.Logout("ns/p", true)
	m.Refresh("", "invalid_request")
	m.RefreshReuse("ns/p")
	for _, want := range []struct {
		name   string
		labels map[string]string
	}{
		{"authgate_logins_total", map[string]string{"policy": "ns/p", "result": "failure"}},
		{"authgate_logouts_total", map[string]string{"policy": "ns/p", "everywhere": "true"}},
		{"authgate_refreshes_total", map[string]string{"policy": "", "result": "invalid_request"}},
		{"authgate_refresh_reuse_total", map[string]string{"policy": "ns/p"}},
	} {
		if got, ok := value(t, reg, want.name, want.labels); !ok || got != 1 {
			t.Errorf("%s%v = %v (present: %t), want 1", want.name, want.labels, got, ok)
		}
	}
	// Without a denylist yet, its size reads zero.
	if got, ok := value(t, reg, "authgate_denylist_entries", map[string]string{"kind": "family"}); !ok || got != 0 {
		t.Errorf("authgate_denylist_entries{kind=family} = %v (present: %t), want 0", got, ok)
	}
}
