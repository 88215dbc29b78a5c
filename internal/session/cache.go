package session

import (
	"encoding/hex"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/authgate/authgate/internal/store"
)

// Cache keeps the session records this replica has read, so that a check usually costs no store
// round trip. It stays correct by following the store's revocations: a deleted session, a user
// logged out everywhere, or a lost revocation feed evicts what it cached. maxStale bounds how long
// an entry is trusted without going back to the store, in case a revocation is missed anyway.
//
// During a store outage, entries older than maxStale are still there for policies with
// onStoreUnavailable: AllowCached, until the session itself expires or the entry is evicted.
type Cache struct {
	entries  *otter.Cache[store.Key, cachedSession]
	maxStale time.Duration
	clock    func() time.Time
	// bypass is set while the revocation feed is down: revocations may be missed, so nothing is
	// read from the cache until the feed is back.
	bypass atomic.Bool
	// hits and misses count the lookups of Manager.Check (fresh), when set.
	hits, misses Counter
}

// Counter is what a cache counts lookups with; a prometheus.Counter is one.
type Counter interface{ Inc() }

// CacheOption configures NewCache.
type CacheOption func(*Cache)

// WithLookupCounters counts the lookups of Manager.Check: a hit is a record trusted as fresh, a
// miss anything that sends the check to the store (nothing cached, an entry older than maxStale, or
// a revocation feed that is down).
func WithLookupCounters(hits, misses Counter) CacheOption {
	return func(c *Cache) { c.hits, c.misses = hits, misses }
}

type cachedSession struct {
	s       store.Session
	fetched time.Time
}

// NewCache returns a cache of at most size sessions, each trusted for maxStale. clock may be nil for
// time.Now.
func NewCache(size int, maxStale time.Duration, clock func() time.Time, opts ...CacheOption) *Cache {
	if clock == nil {
		clock = time.Now
	}
	c := &Cache{
		entries:  otter.Must(&otter.Options[store.Key, cachedSession]{MaximumSize: size}),
		maxStale: maxStale,
		clock:    clock,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Follow keeps the cache current with st's revocations until cancel is called.
func (c *Cache) Follow(st store.Store) (cancel func()) {
	return st.Subscribe(c.apply)
}

func (c *Cache) apply(r store.Revocation) {
	switch r.Kind {
	case store.RevokeSession:
		var key store.Key
		if b, err := hex.DecodeString(r.Value); err == nil && len(b) == len(key) {
			copy(key[:], b)
			c.entries.Invalidate(key)
		}
	case store.RevokeUser:
		// Rare (log out everywhere): a scan is cheaper than an index kept on every read.
		for key, e := range c.entries.All() {
			if e.s.Policy == r.Policy && e.s.UserID == r.Value {
				c.entries.Invalidate(key)
			}
		}
	case store.SubscriptionLost:
		// Entries stay for AllowCached fallbacks (no logout can reach the store during an outage
		// either), but none is trusted as fresh until the feed is back.
		c.bypass.Store(true)
	case store.SubscriptionRestored:
		// Whatever was cached while the feed was down may have missed a revocation.
		c.entries.InvalidateAll()
		c.bypass.Store(false)
	}
}

// fresh returns a cached record read less than maxStale ago.
func (c *Cache) fresh(key store.Key) (store.Session, bool) {
	if c == nil {
		return store.Session{}, false
	}
	if c.bypass.Load() {
		c.countLookup(false)
		return store.Session{}, false
	}
	e, ok := c.entries.GetIfPresent(key)
	if !ok || c.clock().Sub(e.fetched) >= c.maxStale {
		c.countLookup(false)
		return store.Session{}, false
	}
	c.countLookup(true)
	return e.s, true
}

func (c *Cache) countLookup(hit bool) {
	switch {
	case hit && c.hits != nil:
		c.hits.Inc()
	case !hit && c.misses != nil:
		c.misses.Inc()
	}
}

// fallback returns a cached record of any age, for AllowCached during an outage.
func (c *Cache) fallback(key store.Key) (store.Session, bool) {
	if c == nil {
		return store.Session{}, false
	}
	e, ok := c.entries.GetIfPresent(key)
	return e.s, ok
}

func (c *Cache) put(key store.Key, s store.Session) {
	if c == nil {
		return
	}
	c.entries.Set(key, cachedSession{s: s, fetched: c.clock()})
}

func (c *Cache) forget(key store.Key) {
	if c == nil {
		return
	}
	c.entries.Invalidate(key)
}

// Len returns how many sessions are cached.
func (c *Cache) Len() int { return c.entries.EstimatedSize() }
