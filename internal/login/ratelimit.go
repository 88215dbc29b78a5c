package login

import (
	"hash/maphash"
	"math"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/authgate/authgate/internal/policy"
)

// LimiterConfig configures a Limiter. Fields that are zero (or negative) take the value of
// DefaultLimiterConfig; rate.Inf turns a limit off.
type LimiterConfig struct {
	// PerIP is the sustained rate of attempts from one client address, and IPBurst how many may
	// come at once. IPv6 clients are limited per /64, the block a single host usually gets.
	PerIP   rate.Limit
	IPBurst int
	// PerAccount is the sustained rate of attempts on one account (policy and email) from all
	// addresses together, and AccountBurst how many may come at once. It stops password guessing
	// spread over many addresses; the price is that an attacker can keep a known account's owner
	// waiting, which is why the default refills every 12 seconds rather than locking out for hours.
	PerAccount   rate.Limit
	AccountBurst int
	// MaxEntries bounds the buckets the Limiter keeps, address and account buckets together (each
	// kind gets half), so that memory stays bounded whatever clients send: about 150 bytes each, so
	// 15 MB at the default.
	MaxEntries int
	// Clock returns the current time; time.Now when nil. Tests pass a fake clock.
	Clock func() time.Time
}

// DefaultLimiterConfig returns 10 attempts a minute with a burst of 10 per address, 5 a minute with
// a burst of 5 per account, and at most 100,000 buckets.
func DefaultLimiterConfig() LimiterConfig {
	return LimiterConfig{
		PerIP:        rate.Every(time.Minute / 10),
		IPBurst:      10,
		PerAccount:   rate.Every(time.Minute / 5),
		AccountBurst: 5,
		MaxEntries:   100_000,
		Clock:        time.Now,
	}
}

// maxRetryAfter caps the retry delay Allow reports, so that an absurdly slow rate cannot overflow
// a time.Duration.
const maxRetryAfter = 365 * 24 * time.Hour

// sweepPerCall is how many of the least recently used buckets of each kind every Allow call looks
// at, dropping those that are full again. A full bucket behaves exactly like a missing one, so this
// loses nothing; since each call adds at most one bucket of each kind, the tables shrink back to the
// clients that are actually being limited once a burst of traffic is over.
const sweepPerCall = 2

// Limiter limits login attempts per client IP and per account (policy + lower-cased email), with
// golang.org/x/time/rate token buckets. An attempt proceeds only when both its buckets hold a token,
// and then takes one from each: a refused attempt takes nothing, so being refused for the account
// does not use up the address's allowance, nor the reverse.
//
// Buckets live in memory, in two tables of at most MaxEntries/2 buckets each, keyed by a keyed hash
// (so long inputs cost no memory and keys cannot be chosen to collide). When a table is full, the
// least recently used bucket is dropped; buckets that have refilled are dropped earlier, as they
// carry no information. Spraying addresses or account names therefore costs at most MaxEntries
// buckets, and cannot push the other kind's buckets out. Under such a spray the oldest buckets that
// are still refilling are forgotten first, which resets their limit early: the Limiter fails open for
// them rather than refuse new clients.
//
// Limits are per replica: with n replicas behind a load balancer a client gets up to n times the
// configured rate.
//
// A Limiter is safe for concurrent use.
type Limiter struct {
	clock func() time.Time
	seed  maphash.Seed

	mu       sync.Mutex
	ips      bucketTable
	accounts bucketTable
}

// NewLimiter returns a Limiter configured by cfg (zero fields take the defaults).
func NewLimiter(cfg LimiterConfig) *Limiter {
	def := DefaultLimiterConfig()
	if cfg.PerIP <= 0 {
		cfg.PerIP = def.PerIP
	}
	if cfg.IPBurst <= 0 {
		cfg.IPBurst = def.IPBurst
	}
	if cfg.PerAccount <= 0 {
		cfg.PerAccount = def.PerAccount
	}
	if cfg.AccountBurst <= 0 {
		cfg.AccountBurst = def.AccountBurst
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = def.MaxEntries
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	perTable := max(1, cfg.MaxEntries/2)
	return &Limiter{
		clock:    cfg.Clock,
		seed:     maphash.MakeSeed(),
		ips:      newBucketTable(cfg.PerIP, cfg.IPBurst, perTable),
		accounts: newBucketTable(cfg.PerAccount, cfg.AccountBurst, perTable),
	}
}

// AccountKey returns the account key Allow expects for an email under policy ref: the policy and the
// email lower-cased as LoginSettings.User compares it, so that "Admin@Example.com" and
// "admin@example.com" share one bucket while the same email under two policies does not.
func AccountKey(ref policy.Ref, email string) string {
	return ref.String() + "\x00" + strings.ToLower(email)
}

// Allow reports whether an attempt from ip (a client address, with or without a port; anything else
// is used as it is, and all attempts with an empty ip share one bucket) on account (from
// AccountKey) may proceed. When it may not, retryAfter is how long until one would, for the
// Retry-After header: rounded up to whole seconds, at least 1s.
func (l *Limiter) Allow(ip, account string) (ok bool, retryAfter time.Duration) {
	now := l.clock()
	ipKey := l.ipKey(ip)
	accountKey := maphash.String(l.seed, account)

	l.mu.Lock()
	defer l.mu.Unlock()
	l.ips.sweep(now, sweepPerCall)
	l.accounts.sweep(now, sweepPerCall)
	ib := l.ips.get(ipKey)
	ab := l.accounts.get(accountKey)
	// Check both, then take from both: AllowN cannot fail in between, as buckets are only used
	// under l.mu.
	if wait := max(l.ips.wait(ib, now), l.accounts.wait(ab, now)); wait > 0 {
		return false, wait
	}
	if ib != nil {
		ib.lim.AllowN(now, 1)
	}
	if ab != nil {
		ab.lim.AllowN(now, 1)
	}
	return true, 0
}

// ipKey hashes a client address: IPv4 (and IPv4-mapped IPv6) per address, IPv6 per /64, a zone or
// port ignored. Anything that does not parse as an address is hashed as it is, apart
// from every address.
func (l *Limiter) ipKey(ip string) uint64 {
	var h maphash.Hash
	h.SetSeed(l.seed)
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		if ap, err := netip.ParseAddrPort(ip); err == nil {
			addr = ap.Addr()
		}
	}
	if !addr.IsValid() {
		h.WriteByte(0)
		h.WriteString(ip)
		return h.Sum64()
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		h.WriteByte(6)
		addr = netip.PrefixFrom(addr, 64).Masked().Addr()
	} else {
		h.WriteByte(4)
	}
	b := addr.As16()
	h.Write(b[:])
	return h.Sum64()
}

// bucketTable holds the buckets of one kind in a map and a least-recently-used list (head is the
// most recent). A table whose limit is rate.Inf keeps nothing.
type bucketTable struct {
	limit      rate.Limit
	burst      int
	max        int
	byKey      map[uint64]*bucket
	head, tail *bucket
}

type bucket struct {
	key        uint64
	lim        *rate.Limiter
	prev, next *bucket
}

func newBucketTable(limit rate.Limit, burst, maxEntries int) bucketTable {
	return bucketTable{limit: limit, burst: burst, max: maxEntries, byKey: make(map[uint64]*bucket)}
}

func (t *bucketTable) disabled() bool { return t.limit == rate.Inf }

// get returns the bucket for key, made full if there was none, and marks it most recently used.
func (t *bucketTable) get(key uint64) *bucket {
	if t.disabled() {
		return nil
	}
	if b := t.byKey[key]; b != nil {
		t.unlink(b)
		t.pushFront(b)
		return b
	}
	for len(t.byKey) >= t.max {
		t.remove(t.tail)
	}
	b := &bucket{key: key, lim: rate.NewLimiter(t.limit, t.burst)}
	t.byKey[key] = b
	t.pushFront(b)
	return b
}

// sweep drops up to n least recently used buckets that are full at now.
func (t *bucketTable) sweep(now time.Time, n int) {
	for ; n > 0 && t.tail != nil; n-- {
		if t.tail.lim.TokensAt(now) < float64(t.burst) {
			return
		}
		t.remove(t.tail)
	}
}

// wait returns how long until b holds a token, in whole seconds; zero when it holds one now.
func (t *bucketTable) wait(b *bucket, now time.Time) time.Duration {
	if b == nil {
		return 0
	}
	tokens := b.lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	// The estimate forgives float noise ((1 - 5/12) / (1/12) is 7.000000000000001), and the loop
	// below checks it against the bucket's own arithmetic, so that Retry-After is never early.
	secs := math.Ceil((1-tokens)/float64(t.limit) - 1e-6)
	if !(secs >= 1) { // also NaN
		secs = 1
	}
	if secs >= maxRetryAfter.Seconds() {
		return maxRetryAfter
	}
	for range 3 {
		if b.lim.TokensAt(now.Add(time.Duration(secs)*time.Second)) >= 1 {
			break
		}
		secs++
	}
	return time.Duration(secs) * time.Second
}

func (t *bucketTable) len() int { return len(t.byKey) }

func (t *bucketTable) pushFront(b *bucket) {
	b.prev, b.next = nil, t.head
	if t.head != nil {
		t.head.prev = b
	}
	t.head = b
	if t.tail == nil {
		t.tail = b
	}
}

func (t *bucketTable) unlink(b *bucket) {
	if b.prev != nil {
		b.prev.next = b.next
	} else {
		t.head = b.next
	}
	if b.next != nil {
		b.next.prev = b.prev
	} else {
		t.tail = b.prev
	}
	b.prev, b.next = nil, nil
}

func (t *bucketTable) remove(b *bucket) {
	t.unlink(b)
	delete(t.byKey, b.key)
}
