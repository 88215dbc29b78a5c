package login

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/authgate/authgate/internal/policy"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func testLimiter(clock *fakeClock, mutate func(*LimiterConfig)) *Limiter {
	cfg := LimiterConfig{
		PerIP: rate.Every(6 * time.Second), IPBurst: 10,
		PerAccount: rate.Every(12 * time.Second), AccountBurst: 5,
		MaxEntries: 1000, Clock: clock.Now,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	return NewLimiter(cfg)
}

func mustAllow(t *testing.T, l *Limiter, ip, account string) {
	t.Helper()
	if ok, retry := l.Allow(ip, account); !ok {
		t.Fatalf("Allow(%q, %q) refused (retry after %v); want allowed", ip, account, retry)
	}
}

func mustRefuse(t *testing.T, l *Limiter, ip, account string, retry time.Duration) {
	t.Helper()
	ok, got := l.Allow(ip, account)
	if ok {
		t.Fatalf("Allow(%q, %q) allowed; want refused", ip, account)
	}
	if got != retry {
		t.Fatalf("Allow(%q, %q) retry after %v; want %v", ip, account, got, retry)
	}
}

func TestDefaultLimiterConfig(t *testing.T) {
	cfg := DefaultLimiterConfig()
	if cfg.PerIP != rate.Limit(10.0/60) || cfg.IPBurst != 10 || cfg.PerAccount != rate.Limit(5.0/60) ||
		cfg.AccountBurst != 5 || cfg.MaxEntries != 100_000 || cfg.Clock == nil {
		t.Fatalf("DefaultLimiterConfig = %+v", cfg)
	}
	// Zero fields take the defaults.
	clock := newFakeClock()
	l := NewLimiter(LimiterConfig{Clock: clock.Now})
	for i := range 5 {
		mustAllow(t, l, fmt.Sprintf("192.0.2.%d", i), "shop/shop\x00a@example.com")
	}
	mustRefuse(t, l, "192.0.2.9", "shop/shop\x00a@example.com", 12*time.Second)
}

func TestLimiterPerAccount(t *testing.T) {
	clock := newFakeClock()
	l := testLimiter(clock, nil)
	acct := AccountKey(policy.Ref{Namespace: "shop", Name: "shop"}, "Admin@Example.com")
	// The burst, from as many addresses as the attacker likes.
	for i := range 5 {
		mustAllow(t, l, fmt.Sprintf("198.51.100.%d", i), acct)
	}
	mustRefuse(t, l, "198.51.100.200", acct, 12*time.Second)
	// The same account in another case is the same account.
	mustRefuse(t, l, "198.51.100.201", AccountKey(policy.Ref{Namespace: "shop", Name: "shop"}, "admin@example.COM"), 12*time.Second)
	// ... but not under another policy.
	mustAllow(t, l, "198.51.100.202", AccountKey(policy.Ref{Namespace: "shop", Name: "other"}, "admin@example.com"))

	clock.Advance(5 * time.Second)
	mustRefuse(t, l, "198.51.100.200", acct, 7*time.Second)
	clock.Advance(6*time.Second + 500*time.Millisecond)
	mustRefuse(t, l, "198.51.100.200", acct, time.Second) // 0.5s rounds up to 1s
	clock.Advance(500 * time.Millisecond)
	mustAllow(t, l, "198.51.100.200", acct)
	mustRefuse(t, l, "198.51.100.200", acct, 12*time.Second)
}

func TestLimiterPerIP(t *testing.T) {
	clock := newFakeClock()
	l := testLimiter(clock, nil)
	for i := range 10 {
		mustAllow(t, l, "203.0.113.7", fmt.Sprintf("user%d", i))
	}
	mustRefuse(t, l, "203.0.113.7", "user99", 6*time.Second)
	// A port, as in RemoteAddr, does not make another client.
	mustRefuse(t, l, "203.0.113.7:4711", "user99", 6*time.Second)
	// Nor does the IPv4-mapped IPv6 spelling.
	mustRefuse(t, l, "::ffff:203.0.113.7", "user99", 6*time.Second)
	// Another address is another client.
	mustAllow(t, l, "203.0.113.8", "user99")

	// IPv6 clients are limited per /64.
	for i := range 10 {
		mustAllow(t, l, fmt.Sprintf("2001:db8:1:2::%x", i+1), fmt.Sprintf("v6user%d", i))
	}
	mustRefuse(t, l, "2001:db8:1:2:ffff:ffff:ffff:ffff", "v6user99", 6*time.Second)
	mustRefuse(t, l, "[2001:db8:1:2::99]:443", "v6user99", 6*time.Second)
	mustAllow(t, l, "2001:db8:1:3::1", "v6user99")

	// The refill is at the configured rate.
	clock.Advance(6 * time.Second)
	mustAllow(t, l, "203.0.113.7", "user100")
	mustRefuse(t, l, "203.0.113.7", "user101", 6*time.Second)
}

// TestLimiterRefusalTakesNoToken: a refused attempt leaves the other bucket as it was.
func TestLimiterRefusalTakesNoToken(t *testing.T) {
	clock := newFakeClock()
	l := testLimiter(clock, func(c *LimiterConfig) { c.IPBurst = 5; c.AccountBurst = 1 })

	// Refused for the account: the address keeps its tokens.
	mustAllow(t, l, "192.0.2.1", "victim")
	for range 20 {
		mustRefuse(t, l, "192.0.2.1", "victim", 12*time.Second)
	}
	for i := range 4 {
		mustAllow(t, l, "192.0.2.1", fmt.Sprintf("other%d", i))
	}
	mustRefuse(t, l, "192.0.2.1", "other9", 6*time.Second)

	// Refused for the address: the account keeps its token.
	for range 20 {
		mustRefuse(t, l, "192.0.2.1", "fresh", 6*time.Second)
	}
	mustAllow(t, l, "192.0.2.2", "fresh")

	// Refused for both: the longer wait.
	mustRefuse(t, l, "192.0.2.1", "fresh", 12*time.Second)
}

func TestLimiterRetryAfterRoundsUp(t *testing.T) {
	for _, tc := range []struct {
		every time.Duration
		want  time.Duration
	}{
		{1500 * time.Millisecond, 2 * time.Second},
		{100 * time.Millisecond, time.Second},
		{time.Second, time.Second},
		{7 * time.Second / 3, 3 * time.Second},
		{time.Minute / 10, 6 * time.Second},
		{time.Hour, time.Hour},
	} {
		clock := newFakeClock()
		l := testLimiter(clock, func(c *LimiterConfig) { c.PerIP = rate.Every(tc.every); c.IPBurst = 1; c.PerAccount = rate.Inf })
		mustAllow(t, l, "192.0.2.1", "a")
		if ok, retry := l.Allow("192.0.2.1", "a"); ok || retry != tc.want {
			t.Errorf("every %v: Allow = %v, %v; want refused, %v", tc.every, ok, retry, tc.want)
		}
	}
}

// TestLimiterRetryAfterIsExact: waiting Retry-After is always enough, and a second less is not.
func TestLimiterRetryAfterIsExact(t *testing.T) {
	everies := []time.Duration{
		100 * time.Millisecond, time.Second, 1500 * time.Millisecond, 7 * time.Second / 3,
		time.Minute / 10, time.Minute / 5, time.Minute / 7, 13 * time.Second, time.Hour / 3,
	}
	for _, every := range everies {
		for _, elapsed := range []time.Duration{0, 1, time.Millisecond, 500 * time.Millisecond, time.Second,
			every / 3, every / 2, every - time.Second, every - 1} {
			if elapsed < 0 || elapsed >= every {
				continue
			}
			// Each probe replays the same history on a new limiter, since probing changes state.
			probe := func(extra time.Duration) (bool, time.Duration) {
				clock := newFakeClock()
				l := testLimiter(clock, func(c *LimiterConfig) { c.PerIP = rate.Every(every); c.IPBurst = 2; c.PerAccount = rate.Inf })
				mustAllow(t, l, "192.0.2.1", "")
				mustAllow(t, l, "192.0.2.1", "")
				clock.Advance(elapsed + extra)
				return l.Allow("192.0.2.1", "")
			}
			ok, retry := probe(0)
			if ok {
				t.Fatalf("every %v, %v later: allowed; want refused", every, elapsed)
			}
			if retry < time.Second || retry%time.Second != 0 {
				t.Fatalf("every %v, %v later: Retry-After %v is not whole seconds, at least one", every, elapsed, retry)
			}
			if ok, _ := probe(retry); !ok {
				t.Errorf("every %v, %v later: refused after waiting Retry-After %v", every, elapsed, retry)
			}
			if retry > time.Second {
				if ok, _ := probe(retry - time.Second); ok {
					t.Errorf("every %v, %v later: Retry-After %v is a second or more too long", every, elapsed, retry)
				}
			}
		}
	}
}

func TestLimiterInfDisablesALimit(t *testing.T) {
	clock := newFakeClock()
	l := testLimiter(clock, func(c *LimiterConfig) { c.PerIP = rate.Inf; c.AccountBurst = 2 })
	for range 100 {
		mustAllow(t, l, "192.0.2.1", fmt.Sprint(clock.Now().UnixNano()))
		clock.Advance(time.Nanosecond)
	}
	if n := l.ips.len(); n != 0 {
		t.Errorf("a disabled limit keeps %d buckets", n)
	}
	mustAllow(t, l, "192.0.2.1", "x")
	mustAllow(t, l, "192.0.2.1", "x")
	mustRefuse(t, l, "192.0.2.1", "x", 12*time.Second)
}

// TestLimiterMemoryIsBounded sprays addresses and accounts, as a botnet would, and checks that the
// tables never grow past MaxEntries, and that a spray of one kind does not evict the other.
func TestLimiterMemoryIsBounded(t *testing.T) {
	clock := newFakeClock()
	l := testLimiter(clock, func(c *LimiterConfig) { c.MaxEntries = 1000; c.AccountBurst = 1 })
	mustAllow(t, l, "192.0.2.1", "victim")
	mustRefuse(t, l, "192.0.2.2", "victim", 12*time.Second)

	// 200,000 addresses at once, each trying the account it likes: the victim's bucket is empty, so
	// it stays.
	for i := range 200_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.Allow(a.String(), "victim")
		if n := l.ips.len(); n > 500 {
			t.Fatalf("after %d addresses, %d address buckets; want at most 500", i+1, n)
		}
	}
	if n := l.accounts.len(); n != 1 {
		t.Fatalf("%d account buckets; want 1", n)
	}
	mustRefuse(t, l, "192.0.2.3", "victim", 12*time.Second)

	// 200,000 accounts from as many addresses.
	for i := range 200_000 {
		a := netip.AddrFrom4([4]byte{11, byte(i >> 16), byte(i >> 8), byte(i)})
		l.Allow(a.String(), fmt.Sprintf("spray%d", i))
		if n, m := l.ips.len(), l.accounts.len(); n > 500 || m > 500 {
			t.Fatalf("after %d accounts, %d address and %d account buckets; want at most 500 each", i+1, n, m)
		}
	}
	if n := len(l.ips.byKey) + len(l.accounts.byKey); n > 1000 {
		t.Fatalf("%d buckets; want at most 1000", n)
	}
	checkList(t, &l.ips)
	checkList(t, &l.accounts)
}

// TestLimiterForgetsFullBuckets: once traffic stops, buckets that have refilled are dropped, so the
// tables shrink back without any background goroutine.
func TestLimiterForgetsFullBuckets(t *testing.T) {
	clock := newFakeClock()
	l := testLimiter(clock, func(c *LimiterConfig) { c.MaxEntries = 100_000 })
	for i := range 1000 {
		l.Allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256), fmt.Sprintf("user%d", i))
	}
	if n := l.ips.len(); n != 1000 {
		t.Fatalf("%d address buckets; want 1000", n)
	}
	// A depleted bucket is kept while it refills, even at the end of the list.
	clock.Advance(time.Second)
	l.Allow("192.0.2.1", "someone")
	if n := l.ips.len(); n != 1001 {
		t.Fatalf("%d address buckets after a second; want 1001 (none full yet)", n)
	}
	// A minute later all are full again, and ordinary traffic sweeps them away.
	clock.Advance(time.Minute)
	for i := range 600 {
		l.Allow("192.0.2.2", fmt.Sprintf("later%d", i%3))
	}
	if n, m := l.ips.len(), l.accounts.len(); n > 2 || m > 4 {
		t.Fatalf("%d address and %d account buckets left; want the few in use", n, m)
	}
	checkList(t, &l.ips)
	checkList(t, &l.accounts)
}

// TestLimiterEvictsLeastRecentlyUsed: with the table full of buckets that are still refilling, the
// one used longest ago goes.
func TestLimiterEvictsLeastRecentlyUsed(t *testing.T) {
	clock := newFakeClock()
	l := testLimiter(clock, func(c *LimiterConfig) { c.MaxEntries = 6; c.PerAccount = rate.Inf; c.IPBurst = 1 })
	for _, ip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		mustAllow(t, l, ip, "")
	}
	mustRefuse(t, l, "10.0.0.1", "", 6*time.Second) // 10.0.0.1 is now the most recent
	mustAllow(t, l, "10.0.0.4", "")                 // evicts 10.0.0.2
	mustAllow(t, l, "10.0.0.2", "")                 // forgotten, so allowed again (evicts 10.0.0.3)
	mustRefuse(t, l, "10.0.0.1", "", 6*time.Second)
	mustRefuse(t, l, "10.0.0.4", "", 6*time.Second)
	checkList(t, &l.ips)
}

func TestLimiterConcurrent(t *testing.T) {
	clock := newFakeClock()
	l := testLimiter(clock, func(c *LimiterConfig) { c.MaxEntries = 64; c.IPBurst = 1000; c.AccountBurst = 1000 })
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed int
	)
	for g := range 8 {
		wg.Go(func() {
			n := 0
			for i := range 500 {
				if ok, _ := l.Allow(fmt.Sprintf("10.0.%d.%d", g, i%40), "shared"); ok {
					n++
				}
				if i%50 == 0 {
					clock.Advance(time.Millisecond)
				}
			}
			mu.Lock()
			allowed += n
			mu.Unlock()
		})
	}
	wg.Wait()
	// 1000 from the shared account's burst, plus what refilled in at most 80ms: nothing.
	if allowed != 1000 {
		t.Fatalf("%d attempts allowed on one account; want exactly its burst, 1000", allowed)
	}
	checkList(t, &l.ips)
	checkList(t, &l.accounts)
}

// checkList checks that the LRU list and the map hold the same buckets.
func checkList(t *testing.T, tb *bucketTable) {
	t.Helper()
	n := 0
	var prev *bucket
	for b := tb.head; b != nil; b = b.next {
		if b.prev != prev {
			t.Fatal("LRU list: broken prev link")
		}
		if tb.byKey[b.key] != b {
			t.Fatal("LRU list holds a bucket the map does not")
		}
		prev = b
		n++
	}
	if prev != tb.tail {
		t.Fatal("LRU list: tail is not the last bucket")
	}
	if n != len(tb.byKey) || n > tb.max {
		t.Fatalf("LRU list has %d buckets, map %d, max %d", n, len(tb.byKey), tb.max)
	}
}
