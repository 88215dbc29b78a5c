package authz_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/session"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/store/storetest"
	"github.com/authgate/authgate/internal/token"
)

// cachedEntries is what the webhook's --cache-size defaults to: the bound of each of its caches.
const cachedEntries = 100_000

// liveHeap returns the bytes of reachable heap objects. Two collections: the first may leave
// sync.Pool victims and objects freed by cleanups behind, the second takes them.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkCacheMemory measures the heap that a replica's caches take when full at the default
// --cache-size: cachedEntries sessions in session.Cache and cachedEntries verified access tokens
// in the Verifier's cache, both built as webhook.Run builds them and filled through the code that
// fills them on a check.
//
// What is counted is what the caches keep alive and nothing else. The session records also live in
// the memory store, which stands in for Redis here, so they are created before the first reading.
// A bearer token's string arrives in a request and stays reachable only through the cache's key
// once the request is done, so the tokens are issued after the second reading and the benchmark
// drops its own references to them before the third.
//
// A record read from the memory store shares its strings (policy, user ID, email) with the
// store's copy; read from Redis it has copies of its own, which in this benchmark's records come
// to about 64 bytes more per session.
//
// Each b.Loop iteration fills fresh caches and measures them; the figures reported are those of
// the last iteration. One fill takes seconds (100,000 ES256 signatures and as many verifications),
// so at the default -benchtime, or with -benchtime 1x, there is one iteration.
//
// Metrics: MiB-heap (both caches together), B/session and B/token (each cache on its own,
// divided by the entries it holds).
func BenchmarkCacheMemory(b *testing.B) {
	ctx := context.Background()
	clock := storetest.NewClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	p, err := policy.Compile(fixture.AuthPolicy(), fixture.Secrets())
	if err != nil {
		b.Fatal(err)
	}
	var users []policy.User
	for _, email := range []string{"admin@example.com", "viewer@example.com"} {
		u, ok := p.Login().User(email)
		if !ok {
			b.Fatalf("no %s in the fixture", email)
		}
		users = append(users, u)
	}
	st := store.NewMemory(store.WithClock(clock.Now))
	b.Cleanup(func() { _ = st.Close() })
	deny, err := authz.NewDenylist(ctx, st, clock.Now)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(deny.Close)

	// The sessions are logged in once; every iteration caches the same records afresh.
	uncached := session.NewManager(st, clock.Now)
	ids := make([]string, cachedEntries)
	for i := range ids {
		if ids[i], _, err = uncached.Create(ctx, p, users[i%len(users)]); err != nil {
			b.Fatal(err)
		}
	}

	var sessionBytes, tokenBytes int64
	for b.Loop() {
		before := liveHeap()
		cache, stopFollowing := fillSessionCache(b, st, clock.Now, p, ids)
		withSessions := liveHeap()
		verifier := fillTokenCache(b, deny, clock.Now, p, users)
		withTokens := liveHeap()

		runtime.KeepAlive(cache)
		runtime.KeepAlive(verifier)
		stopFollowing()
		verifier.Close()
		sessionBytes = int64(withSessions) - int64(before)
		tokenBytes = int64(withTokens) - int64(withSessions)
	}
	runtime.KeepAlive(ids)
	b.ReportMetric(float64(sessionBytes+tokenBytes)/(1<<20), "MiB-heap")
	b.ReportMetric(float64(sessionBytes)/cachedEntries, "B/session")
	b.ReportMetric(float64(tokenBytes)/cachedEntries, "B/token")
}

// fillSessionCache builds the session cache as webhook.Run does (bounded by --cache-size, trusted
// for --cache-max-staleness, following the store's revocations) and checks each of ids once
// through a Manager reading through it.
func fillSessionCache(b *testing.B, st store.Store, now func() time.Time, p *policy.Policy, ids []string) (*session.Cache, func()) {
	b.Helper()
	ctx := context.Background()
	cache := session.NewCache(cachedEntries, 30*time.Second, now)
	stopFollowing := cache.Follow(st)
	sessions := session.NewManager(st, now, session.WithCache(cache))
	for _, id := range ids {
		if _, err := sessions.Check(ctx, p, id); err != nil {
			b.Fatal(err)
		}
	}
	if n := cache.Len(); n != len(ids) {
		b.Fatalf("the session cache holds %d sessions, want %d", n, len(ids))
	}
	return cache, stopFollowing
}

// fillTokenCache builds the Verifier as webhook.Run does and verifies cachedEntries new access
// tokens of p with it. On return the tokens are reachable only through the Verifier's cache, as
// they are once the requests that carried them are done.
func fillTokenCache(b *testing.B, deny *authz.Denylist, now func() time.Time, p *policy.Policy, users []policy.User) *token.Verifier {
	b.Helper()
	ctx := context.Background()
	verifier := token.NewVerifier(token.WithClock(now), token.WithDenylist(deny), token.WithCache(cachedEntries))
	raws := make([]string, cachedEntries)
	for i := range raws {
		// Each login is a family of its own, named as the login service names them.
		sid, err := session.NewID()
		if err != nil {
			b.Fatal(err)
		}
		if raws[i], _, err = token.Issue(p, users[i%len(users)], sid, now()); err != nil {
			b.Fatal(err)
		}
	}
	first := make([]*token.Claims, len(raws))
	for i, raw := range raws {
		var err error
		if first[i], err = verifier.Verify(ctx, p, raw); err != nil {
			b.Fatal(err)
		}
	}
	// A hit returns the very Claims cached by the first verification: any other answer means the
	// cache evicted while filling and holds fewer tokens than it is credited with.
	for i, raw := range raws {
		if again, err := verifier.Verify(ctx, p, raw); err != nil || again != first[i] {
			b.Fatalf("token %d was not answered from the verified-token cache (%v)", i, err)
		}
	}
	return verifier
}
