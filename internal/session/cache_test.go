package session_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/session"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/store/storetest"
)

// flakyStore counts reads and can pretend to be unreachable; everything else is the memory store.
type flakyStore struct {
	*store.Memory
	reads atomic.Int64
	down  atomic.Bool
}

func (f *flakyStore) GetSession(ctx context.Context, k store.Key) (store.Session, error) {
	f.reads.Add(1)
	if f.down.Load() {
		return store.Session{}, fmt.Errorf("dial tcp: connection refused: %w", store.ErrUnavailable)
	}
	return f.Memory.GetSession(ctx, k)
}

func (f *flakyStore) ExtendSession(ctx context.Context, k store.Key, e, l time.Time) (store.Session, error) {
	if f.down.Load() {
		return store.Session{}, fmt.Errorf("dial tcp: connection refused: %w", store.ErrUnavailable)
	}
	return f.Memory.ExtendSession(ctx, k, e, l)
}

// replica is one webhook replica's session manager with its own cache, over a shared store.
func replica(t *testing.T, st store.Store, clock *storetest.Clock) (*session.Manager, *session.Cache) {
	t.Helper()
	c := session.NewCache(1000, 30*time.Second, clock.Now)
	t.Cleanup(c.Follow(st))
	return session.NewManager(st, clock.Now, session.WithCache(c)), c
}

func TestCacheSavesStoreReads(t *testing.T) {
	clock := storetest.NewClock(time.Now())
	st := &flakyStore{Memory: store.NewMemory(store.WithClock(clock.Now))}
	m, _ := replica(t, st, clock)
	p := compile(t, func(ap *authgatev1.AuthPolicy) { ap.Spec.Session.IdleTimeout = "" })
	u, _ := p.Login().User("admin@example.com")
	ctx := context.Background()
	id, _, err := m.Create(ctx, p, u)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := m.Check(ctx, p, id); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.reads.Load(); n != 1 {
		t.Fatalf("10 checks read the store %d times, want 1", n)
	}
	clock.Advance(31 * time.Second)
	if _, err := m.Check(ctx, p, id); err != nil {
		t.Fatal(err)
	}
	if n := st.reads.Load(); n != 2 {
		t.Fatalf("an entry older than the maximum staleness was trusted (%d reads)", n)
	}
}

func TestLogoutOnOneReplicaReachesTheOther(t *testing.T) {
	clock := storetest.NewClock(time.Now())
	st := store.NewMemory(store.WithClock(clock.Now))
	a, _ := replica(t, st, clock)
	b, _ := replica(t, st, clock)
	p := compile(t, nil)
	u, _ := p.Login().User("admin@example.com")
	ctx := context.Background()
	id, _, err := a.Create(ctx, p, u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Check(ctx, p, id); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Delete(ctx, p, id); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Check(ctx, p, id); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("replica A still accepts a session logged out on B: %v", err)
	}

	// Log out everywhere evicts every cached session of the user.
	ids := []string{}
	for i := 0; i < 3; i++ {
		id, _, err := a.Create(ctx, p, u)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Check(ctx, p, id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := st.RevokeUser(ctx, "shop/shop", u.ID, clock.Now(), clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := a.Check(ctx, p, id); !errors.Is(err, session.ErrNoSession) {
			t.Fatalf("a cached session survived log-out-everywhere: %v", err)
		}
	}
}

func TestLostFeedBypassesTheCache(t *testing.T) {
	clock := storetest.NewClock(time.Now())
	st := &flakyStore{Memory: store.NewMemory(store.WithClock(clock.Now))}
	c := session.NewCache(10, time.Hour, clock.Now)
	m := session.NewManager(st, clock.Now, session.WithCache(c))
	p := compile(t, nil)
	u, _ := p.Login().User("admin@example.com")
	ctx := context.Background()
	id, _, _ := m.Create(ctx, p, u)
	if _, err := m.Check(ctx, p, id); err != nil {
		t.Fatal(err)
	}
	feed := make(chan func(store.Revocation), 1)
	fake := subscribeOnly{feed: feed}
	cancel := c.Follow(fake)
	defer cancel()
	send := <-feed
	send(store.Revocation{Kind: store.SubscriptionLost})
	before := st.reads.Load()
	if _, err := m.Check(ctx, p, id); err != nil {
		t.Fatal(err)
	}
	if st.reads.Load() != before+1 {
		t.Fatal("the cache answered while the revocation feed was down")
	}
	send(store.Revocation{Kind: store.SubscriptionRestored})
	_, _ = m.Check(ctx, p, id)
	before = st.reads.Load()
	_, _ = m.Check(ctx, p, id)
	if st.reads.Load() != before {
		t.Fatal("the cache did not resume after the feed came back")
	}
}

// subscribeOnly hands out the subscriber's callback, standing in for a store whose feed the test
// drives.
type subscribeOnly struct {
	store.Store
	feed chan func(store.Revocation)
}

func (s subscribeOnly) Subscribe(fn func(store.Revocation)) func() {
	s.feed <- fn
	return func() {}
}

func TestStoreOutage(t *testing.T) {
	clock := storetest.NewClock(time.Now())
	st := &flakyStore{Memory: store.NewMemory(store.WithClock(clock.Now))}
	m, _ := replica(t, st, clock)
	deny := compile(t, func(ap *authgatev1.AuthPolicy) { ap.Spec.Session.IdleTimeout = "" })
	allow := compile(t, func(ap *authgatev1.AuthPolicy) {
		ap.Spec.Session.IdleTimeout = ""
		ap.Spec.OnStoreUnavailable = authgatev1.StoreUnavailableAllowCached
	})
	ctx := context.Background()
	u, _ := deny.Login().User("admin@example.com")
	idDeny, _, _ := m.Create(ctx, deny, u)
	idAllow, _, _ := m.Create(ctx, allow, u)
	idUnseen, _, _ := m.Create(ctx, allow, u)
	if _, err := m.Check(ctx, deny, idDeny); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Check(ctx, allow, idAllow); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute) // past the maximum staleness: the store must be asked
	st.down.Store(true)

	if _, err := m.Check(ctx, deny, idDeny); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Deny: %v, want the store's error", err)
	}
	res, err := m.Check(ctx, allow, idAllow)
	if err != nil || !res.Degraded {
		t.Fatalf("AllowCached with a cached session: %+v, %v", res, err)
	}
	if _, err := m.Check(ctx, allow, idUnseen); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("AllowCached with a session this replica never saw: %v, want the store's error", err)
	}
	// Near the threshold the extension write fails: AllowCached still lets the session through.
	clock.Advance(145 * time.Hour)
	if res, err := m.Check(ctx, allow, idAllow); err != nil || !res.Degraded || res.SetCookie != "" {
		t.Fatalf("AllowCached near expiry: %+v, %v", res, err)
	}
	// The store comes back: everything works again, with no restart.
	st.down.Store(false)
	if res, err := m.Check(ctx, allow, idAllow); err != nil || res.Degraded || res.SetCookie == "" {
		t.Fatalf("after recovery: %+v, %v (want a normal check that slides)", res, err)
	}
}

// counter is a session.Counter.
type counter struct{ n atomic.Int64 }

func (c *counter) Inc() { c.n.Add(1) }

// TestCacheCountsLookups: a check answered from the cache is a hit; one that reads the store (the
// first, and one after maxStale, and any while the feed is down) is a miss.
func TestCacheCountsLookups(t *testing.T) {
	clock := storetest.NewClock(time.Now())
	st := store.NewMemory(store.WithClock(clock.Now))
	var hits, misses counter
	c := session.NewCache(1000, 30*time.Second, clock.Now, session.WithLookupCounters(&hits, &misses))
	t.Cleanup(c.Follow(st))
	m := session.NewManager(st, clock.Now, session.WithCache(c))
	p := compile(t, func(ap *authgatev1.AuthPolicy) { ap.Spec.Session.IdleTimeout = "" })
	u, _ := p.Login().User("admin@example.com")
	ctx := context.Background()
	id, _, err := m.Create(ctx, p, u)
	if err != nil {
		t.Fatal(err)
	}
	check := func(wantHits, wantMisses int64) {
		t.Helper()
		if _, err := m.Check(ctx, p, id); err != nil {
			t.Fatal(err)
		}
		if hits.n.Load() != wantHits || misses.n.Load() != wantMisses {
			t.Fatalf("hits %d, misses %d; want %d, %d", hits.n.Load(), misses.n.Load(), wantHits, wantMisses)
		}
	}
	check(0, 1)
	check(1, 1)
	check(2, 1)
	clock.Advance(31 * time.Second)
	check(2, 2)
	check(3, 2)
	// While the revocation feed is down nothing is read from the cache: every lookup is a miss.
	feed := make(chan func(store.Revocation), 1)
	defer c.Follow(subscribeOnly{feed: feed})()
	send := <-feed
	send(store.Revocation{Kind: store.SubscriptionLost})
	check(3, 3)
	check(3, 4)
	send(store.Revocation{Kind: store.SubscriptionRestored})
	check(3, 5)
	check(4, 5)
}
