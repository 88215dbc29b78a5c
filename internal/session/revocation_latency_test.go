package session_test

import (
	"context"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/session"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/store/redistest"
)

// revocationDeadline is how long a revocation may take to reach the other replica before the test
// gives up on it. It only tells a lost revocation from a slow one: how fast they arrive is
// BenchmarkRevocationReachesAnotherReplica's to measure.
const revocationDeadline = 10 * time.Second

// logouts is how many sessions the test logs out, and the benchmark in each round.
const logouts = 200

// replicaPair is two replicas sharing a real redis-server: A caches sessions and follows the
// revocation feed as the webhook does, B logs them out.
type replicaPair struct {
	p    *policy.Policy
	user policy.User
	a, b *session.Manager
	// received gets the value of every session revocation A's feed delivers, with when it arrived.
	// A's cache follows the feed first, so by the time a revocation is sent here the cache has
	// dropped the session.
	received chan receipt
}

type receipt struct {
	value string
	at    time.Time
}

func newReplicaPair(tb testing.TB, p *policy.Policy) *replicaPair {
	tb.Helper()
	server := redistest.StartServer(tb)
	newStore := func() store.Store {
		cfg := store.RedisConfig{URL: "redis://" + server.Addr, Prefix: "latency"}
		client, err := cfg.NewClient()
		if err != nil {
			tb.Fatal(err)
		}
		st, err := store.NewRedis(client, store.RedisOptions{Prefix: "latency"})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { st.Close() })
		return st
	}
	stA, stB := newStore(), newStore()
	cacheA := session.NewCache(1000, time.Minute, nil)
	tb.Cleanup(cacheA.Follow(stA))
	// Buffered well beyond what is ever outstanding, so that the feed is never held up by a
	// receipt nobody waits for (the warm-up's extra logouts).
	received := make(chan receipt, 64)
	tb.Cleanup(stA.Subscribe(func(r store.Revocation) {
		if r.Kind == store.RevokeSession {
			received <- receipt{value: r.Value, at: time.Now()}
		}
	}))
	user, ok := p.Login().User("admin@example.com")
	if !ok {
		tb.Fatal("no admin in the fixture")
	}
	pair := &replicaPair{
		p: p, user: user,
		a: session.NewManager(stA, nil, session.WithCache(cacheA)), b: session.NewManager(stB, nil),
		received: received,
	}
	pair.waitForFeed(tb)
	return pair
}

// waitForFeed returns once A's subscription is live: a logout on B has reached A. Until then
// logouts may be published before A listens, so each try logs out a new session.
func (r *replicaPair) waitForFeed(tb testing.TB) {
	tb.Helper()
	ctx := context.Background()
	deadline := time.After(revocationDeadline)
	for {
		id, _, err := r.a.Create(ctx, r.p, r.user)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := r.b.Delete(ctx, r.p, id); err != nil {
			tb.Fatal(err)
		}
		select {
		case <-r.received:
			return
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			tb.Fatalf("replica A received no revocation within %v", revocationDeadline)
		}
	}
}

// logout creates a session on A and has A cache it, logs it out on B, and returns how long the
// revocation took from the start of B's logout to its arrival at A. It fails if the revocation
// does not arrive within revocationDeadline, or if A still accepts the session afterwards.
func (r *replicaPair) logout(tb testing.TB) time.Duration {
	tb.Helper()
	ctx := context.Background()
	id, _, err := r.a.Create(ctx, r.p, r.user)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := r.a.Check(ctx, r.p, id); err != nil { // now cached on A
		tb.Fatal(err)
	}
	key := store.KeyOf(id)
	want := hex.EncodeToString(key[:])
	start := time.Now()
	if _, err := r.b.Delete(ctx, r.p, id); err != nil {
		tb.Fatal(err)
	}
	deadline := time.After(revocationDeadline)
	for {
		select {
		case got := <-r.received:
			if got.value != want {
				continue // a late receipt of the warm-up's
			}
			if _, err := r.a.Check(ctx, r.p, id); err != session.ErrNoSession {
				tb.Fatalf("replica A still accepts the session after its revocation arrived: %v", err)
			}
			return got.at.Sub(start)
		case <-deadline:
			tb.Fatalf("a logout on replica B did not reach replica A within %v", revocationDeadline)
		}
	}
}

// TestRevocationReachesAnotherReplica: through a real redis-server, every logout on one replica
// reaches another replica's cache, which then refuses the session.
func TestRevocationReachesAnotherReplica(t *testing.T) {
	r := newReplicaPair(t, compile(t, nil))
	for range logouts {
		r.logout(t)
	}
}

// BenchmarkRevocationReachesAnotherReplica measures, through a real redis-server on loopback, how
// long a logout on one replica takes to evict the session from another replica's cache: from the
// start of B's logout (it deletes the record and publishes the revocation) to A's receipt of it,
// which is when A's cache drops the session. Target: p99 within 50 ms.
//
// Each b.Loop iteration is a round of logouts; the percentiles are over every logout of every
// round, so -benchtime 1x gives them over one round. Metrics: p50-ms, p99-ms and max-ms.
func BenchmarkRevocationReachesAnotherReplica(b *testing.B) {
	p, err := policy.Compile(fixture.AuthPolicy(), fixture.Secrets())
	if err != nil {
		b.Fatal(err)
	}
	r := newReplicaPair(b, p)
	var lat []time.Duration
	for b.Loop() {
		for range logouts {
			lat = append(lat, r.logout(b))
		}
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
}
