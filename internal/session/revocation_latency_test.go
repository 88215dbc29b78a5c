package session_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/session"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/store/redistest"
)

// TestRevocationReachesAnotherReplica measures, through a real redis-server, how long a logout on
// one replica takes to evict the session from another replica's cache: from the moment replica B's
// logout starts (it deletes the record and publishes the revocation) to the moment replica A has
// received it, which is when A's cache drops the session. The p99 must stay well
// under 100 ms; the figures are logged (go test -v) for docs/redis.md.
func TestRevocationReachesAnotherReplica(t *testing.T) {
	server := redistest.StartServer(t)
	newStore := func() store.Store {
		cfg := store.RedisConfig{URL: "redis://" + server.Addr, Prefix: "latency"}
		client, err := cfg.NewClient()
		if err != nil {
			t.Fatal(err)
		}
		st, err := store.NewRedis(client, store.RedisOptions{Prefix: "latency"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	stA, stB := newStore(), newStore()
	cacheA := session.NewCache(1000, time.Minute, nil)
	t.Cleanup(cacheA.Follow(stA))
	evicted := make(chan time.Time, 1)
	t.Cleanup(stA.Subscribe(func(r store.Revocation) {
		if r.Kind == store.RevokeSession {
			evicted <- time.Now()
		}
	}))
	a := session.NewManager(stA, nil, session.WithCache(cacheA))
	b := session.NewManager(stB, nil)
	p := compile(t, nil)
	u, _ := p.Login().User("admin@example.com")
	ctx := context.Background()

	// Wait for A's subscription to be live: a first revocation must arrive.
	warm, _, err := a.Create(ctx, p, u)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for done := false; !done; {
		if _, err := b.Delete(ctx, p, warm); err != nil {
			t.Fatal(err)
		}
		select {
		case <-evicted:
			done = true
		case <-time.After(100 * time.Millisecond):
			warm, _, _ = a.Create(ctx, p, u)
		case <-deadline:
			t.Fatal("replica A never received a revocation")
		}
	}

	const n = 200
	var lat []time.Duration
	for i := 0; i < n; i++ {
		id, _, err := a.Create(ctx, p, u)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Check(ctx, p, id); err != nil { // cached on A
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := b.Delete(ctx, p, id); err != nil {
			t.Fatal(err)
		}
		select {
		case at := <-evicted:
			lat = append(lat, at.Sub(start))
		case <-time.After(time.Second):
			t.Fatalf("logout %d never reached replica A", i)
		}
		if _, err := a.Check(ctx, p, id); err != session.ErrNoSession {
			t.Fatalf("replica A still accepts session %d after the revocation arrived: %v", i, err)
		}
	}
	slices.Sort(lat)
	p50, p99 := lat[n/2], lat[n*99/100]
	t.Logf("revocation reaching a second replica over %d logouts: p50 %v, p99 %v, max %v", n, p50, p99, lat[n-1])
	if p99 > 100*time.Millisecond {
		t.Errorf("p99 %v: revocation must reach a second replica well under 100 ms", p99)
	}
}
