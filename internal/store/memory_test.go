package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock *storetest.Clock) store.Store {
		return store.NewMemory(store.WithClock(clock.Now))
	})
}

var t0 = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

func newMemory(t testing.TB) (*store.Memory, *storetest.Clock) {
	clock := storetest.NewClock(t0)
	m := store.NewMemory(store.WithClock(clock.Now))
	t.Cleanup(func() { _ = m.Close() })
	return m, clock
}

func session(now time.Time, policy, user string, ttl time.Duration) store.Session {
	return store.Session{Policy: policy, UserID: user, Email: user + "@example.com",
		CreatedAt: now, ExpiresAt: now.Add(ttl), MaxExpiresAt: now.Add(24 * time.Hour), LastSeenAt: now}
}

func token(now time.Time, policy, user, family string, ttl time.Duration) store.RefreshToken {
	return store.RefreshToken{Policy: policy, UserID: user, Email: user + "@example.com", Family: family,
		IssuedAt: now, ExpiresAt: now.Add(ttl)}
}

func wantStats(t *testing.T, m *store.Memory, want store.MemoryStats) {
	t.Helper()
	if got := m.Stats(); got != want {
		t.Fatalf("Stats = %+v\nwant    %+v", got, want)
	}
}

// fill stores, for each of n users, a session and a used refresh token with its successor, all
// expiring after ttl, and a user and a family revocation lasting as long.
func fill(t *testing.T, m *store.Memory, now time.Time, n int, ttl time.Duration) {
	t.Helper()
	ctx := t.Context()
	for i := range n {
		user, fam := fmt.Sprintf("user-%d", i), fmt.Sprintf("fam-%d", i)
		if err := m.CreateSession(ctx, store.KeyOf("s-"+user), session(now, "ns/p", user, ttl)); err != nil {
			t.Fatal(err)
		}
		if err := m.CreateRefreshToken(ctx, store.KeyOf("rt1-"+user), token(now, "ns/p", user, fam, ttl)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := m.RotateRefreshToken(ctx, store.KeyOf("rt1-"+user), store.KeyOf("rt2-"+user), token(now, "ns/p", user, fam, ttl), now, time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := m.RevokeUser(ctx, "ns/other", user, now, now.Add(ttl)); err != nil {
			t.Fatal(err)
		}
		if err := m.RevokeFamily(ctx, "ns/other", fam, now.Add(ttl)); err != nil {
			t.Fatal(err)
		}
	}
}

// Expired records, their index entries and spent revocations are swept by the first write a
// minute or more after the previous sweep, even when nobody reads them again.
func TestMemorySweepBoundsMemory(t *testing.T) {
	m, clock := newMemory(t)
	const n = 500
	fill(t, m, clock.Now(), n, 30*time.Second)
	wantStats(t, m, store.MemoryStats{Sessions: n, RefreshTokens: 2 * n, Users: n, Families: n, RevokedFamilies: n, Revocations: 2 * n})

	clock.Advance(time.Minute)
	live := session(clock.Now(), "ns/p", "survivor", time.Hour)
	if err := m.CreateSession(t.Context(), store.KeyOf("live"), live); err != nil {
		t.Fatal(err)
	}
	wantStats(t, m, store.MemoryStats{Sessions: 1, Users: 1})
	if got, err := m.GetSession(t.Context(), store.KeyOf("live")); err != nil || got != live {
		t.Fatalf("GetSession = %+v, %v; want the live session", got, err)
	}
}

// A sweep runs at most once a minute: records that expire right after one stay until the next.
func TestMemorySweepAtMostOncePerMinute(t *testing.T) {
	m, clock := newMemory(t)
	ctx := t.Context()
	clock.Advance(time.Minute)
	if err := m.CreateSession(ctx, store.KeyOf("a"), session(clock.Now(), "ns/p", "a", 10*time.Second)); err != nil {
		t.Fatal(err) // this write swept (a minute since NewMemory), and stored a
	}
	clock.Advance(30 * time.Second) // a has expired; 30s since the sweep
	if err := m.CreateSession(ctx, store.KeyOf("b"), session(clock.Now(), "ns/p", "b", time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantStats(t, m, store.MemoryStats{Sessions: 2, Users: 2})
	clock.Advance(30 * time.Second) // a minute since the sweep
	if err := m.DeleteSession(ctx, store.KeyOf("none")); err != nil {
		t.Fatal(err)
	}
	wantStats(t, m, store.MemoryStats{Sessions: 1, Users: 1})
}

// Reads remove the expired record they find, with its index entries, without waiting for a sweep.
func TestMemoryExpiredRemovedOnRead(t *testing.T) {
	m, clock := newMemory(t)
	ctx := t.Context()
	now := clock.Now()
	if err := m.CreateSession(ctx, store.KeyOf("s"), session(now, "ns/p", "u", 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := m.CreateRefreshToken(ctx, store.KeyOf("rt"), token(now, "ns/p", "u", "fam", 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Second)
	if _, err := m.GetSession(ctx, store.KeyOf("s")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSession: %v, want ErrNotFound", err)
	}
	wantStats(t, m, store.MemoryStats{RefreshTokens: 1, Users: 1, Families: 1})
	if _, err := m.GetRefreshToken(ctx, store.KeyOf("rt")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetRefreshToken: %v, want ErrNotFound", err)
	}
	wantStats(t, m, store.MemoryStats{})
}

// Deleting records by any means removes their index entries.
func TestMemoryIndexFollowsDeletes(t *testing.T) {
	m, clock := newMemory(t)
	ctx := t.Context()
	now := clock.Now()
	if err := m.CreateSession(ctx, store.KeyOf("s"), session(now, "ns/p", "u", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteSession(ctx, store.KeyOf("s")); err != nil {
		t.Fatal(err)
	}
	wantStats(t, m, store.MemoryStats{Revocations: 1})

	if err := m.CreateRefreshToken(ctx, store.KeyOf("rt1"), token(now, "ns/p", "u", "fam", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.RotateRefreshToken(ctx, store.KeyOf("rt1"), store.KeyOf("rt2"), token(now, "ns/p", "u", "fam", time.Hour), now, 0); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if o, _, err := m.RotateRefreshToken(ctx, store.KeyOf("rt1"), store.KeyOf("rt2"), token(now, "ns/p", "u", "fam", time.Hour), clock.Now(), 0); err != nil || o != store.Reused {
		t.Fatalf("RotateRefreshToken = %v, %v; want Reused", o, err)
	}
	wantStats(t, m, store.MemoryStats{RevokedFamilies: 1, Revocations: 2})

	if err := m.CreateSession(ctx, store.KeyOf("s2"), session(now, "ns/p", "u", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := m.CreateRefreshToken(ctx, store.KeyOf("rt3"), token(now, "ns/p", "u", "fam2", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, err := m.RevokeUser(ctx, "ns/p", "u", now, now.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("RevokeUser = %d, %v; want 1", n, err)
	}
	wantStats(t, m, store.MemoryStats{RevokedFamilies: 1, Revocations: 3})
}

// A rotation at the zero time would leave the token looking unused, so it is refused.
func TestMemoryRotateRefusesZeroTime(t *testing.T) {
	m, clock := newMemory(t)
	ctx := t.Context()
	tok := token(clock.Now(), "ns/p", "u", "fam", time.Hour)
	if err := m.CreateRefreshToken(ctx, store.KeyOf("rt1"), tok); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.RotateRefreshToken(ctx, store.KeyOf("rt1"), store.KeyOf("rt2"), tok, time.Time{}, time.Minute); err == nil {
		t.Fatal("RotateRefreshToken at the zero time succeeded")
	}
	if got, err := m.GetRefreshToken(ctx, store.KeyOf("rt1")); err != nil || got != tok {
		t.Fatalf("GetRefreshToken = %+v, %v; want the unused token", got, err)
	}
}

// Subscribers are called outside the lock: one may call the store back.
func TestMemorySubscriberMayCallStore(t *testing.T) {
	// No Close at cleanup: after a deadlock it would wait forever.
	clock := storetest.NewClock(t0)
	m := store.NewMemory(store.WithClock(clock.Now))
	ctx := t.Context()
	var listed []store.Revocation
	m.Subscribe(func(store.Revocation) {
		if _, err := m.GetSession(ctx, store.KeyOf("x")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetSession from a subscriber: %v", err)
		}
		var err error
		if listed, err = m.Revocations(ctx); err != nil {
			t.Errorf("Revocations from a subscriber: %v", err)
		}
	})
	done := make(chan error, 1)
	go func() { done <- m.RevokeFamily(ctx, "ns/p", "fam", clock.Now().Add(time.Hour)) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RevokeFamily did not return: a subscriber calling the store deadlocks")
	}
	// The subscriber ran after the change was complete.
	if len(listed) != 1 || listed[0].Value != "fam" {
		t.Fatalf("the subscriber listed %+v, want the revocation it was called with", listed)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// After Close every method fails with ErrUnavailable, subscribers are dropped, and Close may be
// called again.
func TestMemoryClose(t *testing.T) {
	m, clock := newMemory(t)
	ctx := t.Context()
	now := clock.Now()
	called := false
	m.Subscribe(func(store.Revocation) { called = true })
	if err := m.CreateSession(ctx, store.KeyOf("s"), session(now, "ns/p", "u", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := m.GetSession(ctx, store.KeyOf("s")); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("GetSession after Close: %v, want ErrUnavailable", err)
	}
	if err := m.DeleteSession(ctx, store.KeyOf("s")); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("DeleteSession after Close: %v, want ErrUnavailable", err)
	}
	if _, err := m.Revocations(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Revocations after Close: %v, want ErrUnavailable", err)
	}
	m.Subscribe(func(store.Revocation) { t.Error("subscribed to a closed store") })()
	if called {
		t.Error("a subscriber was called")
	}
}

// Without WithClock the store reads time.Now.
func TestMemoryDefaultClock(t *testing.T) {
	m := store.NewMemory()
	defer m.Close()
	ctx := t.Context()
	now := time.Now()
	if err := m.CreateSession(ctx, store.KeyOf("live"), session(now, "ns/p", "u", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := m.CreateSession(ctx, store.KeyOf("past"), session(now.Add(-2*time.Hour), "ns/p", "u", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.GetSession(ctx, store.KeyOf("live")); err != nil {
		t.Errorf("GetSession of a live session: %v", err)
	}
	if _, err := m.GetSession(ctx, store.KeyOf("past")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSession of an expired session: %v, want ErrNotFound", err)
	}
}

// Every method runs concurrently with the others while the clock moves and sweeps run (for the race
// detector); when everything has expired, a sweep leaves nothing behind.
func TestMemoryConcurrentMixed(t *testing.T) {
	m, clock := newMemory(t)
	ctx := t.Context()
	var delivered sync.Map
	cancel := m.Subscribe(func(r store.Revocation) { delivered.Store(r.Kind, true) })
	defer cancel()
	const workers, rounds = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				now := clock.Now()
				user := fmt.Sprintf("u%d", (w+i)%5)
				sk := store.KeyOf(fmt.Sprintf("s-%d-%d", w, i))
				fam := fmt.Sprintf("fam-%d-%d", w, i)
				rt1, rt2 := store.KeyOf("rt1-"+fam), store.KeyOf("rt2-"+fam)
				check := func(err error) {
					if err != nil && !errors.Is(err, store.ErrNotFound) {
						t.Errorf("worker %d round %d: %v", w, i, err)
					}
				}
				check(m.CreateSession(ctx, sk, session(now, "ns/p", user, 90*time.Second)))
				_, err := m.GetSession(ctx, sk)
				check(err)
				_, err = m.ExtendSession(ctx, sk, now.Add(2*time.Minute), now)
				check(err)
				check(m.CreateRefreshToken(ctx, rt1, token(now, "ns/p", user, fam, 90*time.Second)))
				_, _, err = m.RotateRefreshToken(ctx, rt1, rt2, token(now, "ns/p", user, fam, 90*time.Second), now, time.Second)
				check(err)
				_, err = m.GetRefreshToken(ctx, rt2)
				check(err)
				switch i % 4 {
				case 0:
					check(m.DeleteSession(ctx, sk))
				case 1:
					_, err = m.RevokeUser(ctx, "ns/p", user, now, now.Add(time.Minute))
					check(err)
				case 2:
					check(m.RevokeFamily(ctx, "ns/p", fam, now.Add(time.Minute)))
				case 3:
					_, err = m.Revocations(ctx)
					check(err)
				}
				if w == 0 {
					clock.Advance(time.Second)
				}
			}
		})
	}
	wg.Wait()
	for _, kind := range []store.RevocationKind{store.RevokeSession, store.RevokeUser, store.RevokeFamily} {
		if _, ok := delivered.Load(kind); !ok {
			t.Errorf("no %s revocation delivered", kind)
		}
	}
	clock.Advance(10 * time.Minute)
	if err := m.DeleteSession(ctx, store.KeyOf("none")); err != nil {
		t.Fatal(err)
	}
	wantStats(t, m, store.MemoryStats{Subscribers: 1})
}

func BenchmarkMemoryGetSession(b *testing.B) {
	m, clock := newMemory(b)
	ctx := context.Background()
	now := clock.Now()
	keys := make([]store.Key, 10000)
	for i := range keys {
		keys[i] = store.KeyOf(fmt.Sprintf("session-%d", i))
		if err := m.CreateSession(ctx, keys[i], session(now, "ns/p", fmt.Sprintf("u%d", i%100), time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := m.GetSession(ctx, keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkMemoryExtendSession(b *testing.B) {
	m, clock := newMemory(b)
	ctx := context.Background()
	now := clock.Now()
	keys := make([]store.Key, 10000)
	for i := range keys {
		keys[i] = store.KeyOf(fmt.Sprintf("session-%d", i))
		if err := m.CreateSession(ctx, keys[i], session(now, "ns/p", fmt.Sprintf("u%d", i%100), time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		seen := now.Add(time.Duration(i) * time.Nanosecond)
		if _, err := m.ExtendSession(ctx, keys[i%len(keys)], seen.Add(2*time.Hour), seen); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
