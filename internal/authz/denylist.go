package authz

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/token"
)

// Denylist holds the revocations that concern access tokens, so that a JWT check stays a memory
// lookup: logout revokes a login's family ("sid"), "log out everywhere" a user's tokens issued
// before it. Entries are dropped once every token they could match has expired. It implements
// token.Denylist.
type Denylist struct {
	store    store.Store
	clock    func() time.Time
	mu       sync.RWMutex
	families map[familyKey]time.Time   // -> until
	users    map[familyKey]userRevoked // Value is the user id
	cancel   func()
	lastGC   time.Time
	closed   chan struct{}
	once     sync.Once
}

type familyKey struct{ policy, value string }

type userRevoked struct{ at, until time.Time }

var _ token.Denylist = (*Denylist)(nil)

// NewDenylist returns a Denylist filled with the store's revocations in force and kept current by
// its subscription. clock may be nil for time.Now. Close stops the subscription.
func NewDenylist(ctx context.Context, s store.Store, clock func() time.Time) (*Denylist, error) {
	if clock == nil {
		clock = time.Now
	}
	d := &Denylist{store: s, clock: clock, families: map[familyKey]time.Time{}, users: map[familyKey]userRevoked{}, closed: make(chan struct{})}
	// Subscribe before reading the backlog, so that nothing published in between is missed.
	d.cancel = s.Subscribe(d.receive)
	existing, err := s.Revocations(ctx)
	if err != nil {
		if !errors.Is(err, store.ErrUnavailable) {
			d.cancel()
			return nil, fmt.Errorf("reading revocations in force: %w", err)
		}
		// The store is down: start empty and keep trying, so that a replica started during an
		// outage recovers by itself.
		go d.reloadUntilDone()
		return d, nil
	}
	for _, r := range existing {
		d.Add(r)
	}
	return d, nil
}

// reloadUntilDone reads the store's revocations until it succeeds or the denylist is closed.
func (d *Denylist) reloadUntilDone() {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		backlog, err := d.store.Revocations(ctx)
		cancel()
		if err == nil {
			for _, r := range backlog {
				d.Add(r)
			}
			return
		}
		select {
		case <-d.closed:
			return
		case <-time.After(2 * time.Second):
		}
	}
}

// receive handles the store's feed: revocations, and the feed's own ups and downs. When the feed
// comes back after a break, revocations published meanwhile were missed; they are read again.
func (d *Denylist) receive(r store.Revocation) {
	if r.Kind != store.SubscriptionRestored {
		d.Add(r)
		return
	}
	// Called from the store's feed: the reload must not block it.
	go d.reloadUntilDone()
}

// Add records a revocation.
func (d *Denylist) Add(r store.Revocation) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := familyKey{r.Policy, r.Value}
	switch r.Kind {
	case store.RevokeFamily:
		if r.Until.After(d.families[k]) {
			d.families[k] = r.Until
		}
	case store.RevokeUser:
		prev := d.users[k]
		if r.At.After(prev.at) {
			prev.at = r.At
		}
		if r.Until.After(prev.until) {
			prev.until = r.Until
		}
		d.users[k] = prev
	}
	d.collectLocked()
}

// collectLocked drops entries that can no longer match a live token, at most once a minute.
func (d *Denylist) collectLocked() {
	now := d.clock()
	if now.Sub(d.lastGC) < time.Minute {
		return
	}
	d.lastGC = now
	for k, until := range d.families {
		if !now.Before(until) {
			delete(d.families, k)
		}
	}
	for k, u := range d.users {
		if !now.Before(u.until) {
			delete(d.users, k)
		}
	}
}

// Revoked reports whether a verified token of policy has been revoked.
func (d *Denylist) Revoked(policy string, c *token.Claims) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if c.SessionID != "" {
		if _, ok := d.families[familyKey{policy, c.SessionID}]; ok {
			return true
		}
	}
	if u, ok := d.users[familyKey{policy, c.Subject}]; ok && !c.IssuedAt.After(u.at) {
		return true
	}
	return false
}

// Len returns how many revoked families and revoked users the denylist holds, including those
// expired since the last collection (at most a minute ago, or at the next revocation).
func (d *Denylist) Len() (families, users int) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.families), len(d.users)
}

// Close stops following the store's revocations.
func (d *Denylist) Close() {
	d.once.Do(func() {
		close(d.closed)
		if d.cancel != nil {
			d.cancel()
		}
	})
}
