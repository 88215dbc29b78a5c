package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// sweepInterval is the least time between two sweeps of expired records.
const sweepInterval = time.Minute

// Errors of misuse: neither ErrNotFound nor ErrUnavailable (see Store).
var (
	errSessionExists = errors.New("memory store: a session with this key exists already")
	errTokenExists   = errors.New("memory store: a refresh token with this key exists already")
	errOtherFamily   = errors.New("memory store: the successor must have the policy and family of the token it replaces")
	errSelfSuccessor = errors.New("memory store: a refresh token cannot be its own successor")
	errZeroNow       = errors.New("memory store: rotation time is zero")
)

// errClosed is returned by every method of a closed Memory.
var errClosed = fmt.Errorf("%w: memory store is closed", ErrUnavailable)

// Memory is a Store held in the memory of one process, the default when authgate runs as a single
// replica. Its zero value is not usable: call NewMemory.
//
// One lock guards every record, so each method is atomic. Expiry is read from the clock (WithClock,
// time.Now by default): a session or refresh token is live while the clock is before its ExpiresAt.
// Expired records, with their index entries, are removed when a method finds them, and by a sweep
// of the whole store that write methods run at most once a minute: an expired record stays at most
// until the first write a minute after its expiry, so memory is bounded by what is live (maps keep
// the capacity of their peak). No goroutine runs in the background.
//
// Subscribers are called synchronously by the method that published the revocation, after its
// change is complete and outside the lock: fn may call the store. Revocations published
// concurrently by different goroutines may reach a subscriber in either order, and a call that
// had already started when cancel is called may still reach the subscriber.
type Memory struct {
	clock func() time.Time

	mu       sync.RWMutex
	closed   bool
	sessions map[Key]Session
	tokens   map[Key]RefreshToken
	// users indexes the sessions and refresh tokens of each user of each policy, for RevokeUser.
	users map[userKey]*userRecords
	// families indexes the refresh tokens of each family; an entry goes with its last token.
	families map[familyKey]map[Key]struct{}
	// revokedFamilies holds until when each revoked family stays revoked. Invariant: no stored
	// token belongs to a family revoked now (revoking deletes them, and creation is refused).
	revokedFamilies map[familyKey]time.Time
	revocations     []Revocation
	// subscribers is copied on cancel, never changed in place, so that a publisher can call the
	// functions of a copy of the slice header taken under the lock.
	subscribers    []subscriber
	nextSubscriber uint64
	lastSweep      time.Time
}

type userKey struct{ policy, userID string }

type familyKey struct{ policy, family string }

type userRecords struct {
	sessions map[Key]struct{}
	tokens   map[Key]struct{}
}

type subscriber struct {
	id uint64
	fn func(Revocation)
}

// MemoryStats counts what a Memory holds, expired records not yet removed included.
type MemoryStats struct {
	Sessions      int
	RefreshTokens int
	// Users is the number of (policy, user) entries of the index RevokeUser uses.
	Users int
	// Families is the number of refresh-token families with a stored token.
	Families int
	// RevokedFamilies is the number of families remembered as revoked.
	RevokedFamilies int
	// Revocations is the number of revocations remembered for Revocations.
	Revocations int
	Subscribers int
}

// MemoryOption configures NewMemory.
type MemoryOption func(*Memory)

// WithClock makes the store read the time from now instead of time.Now, to decide what has expired.
// A nil now keeps time.Now.
func WithClock(now func() time.Time) MemoryOption {
	return func(m *Memory) {
		if now != nil {
			m.clock = now
		}
	}
}

// NewMemory returns an empty Memory.
func NewMemory(opts ...MemoryOption) *Memory {
	m := &Memory{
		clock:           time.Now,
		sessions:        map[Key]Session{},
		tokens:          map[Key]RefreshToken{},
		users:           map[userKey]*userRecords{},
		families:        map[familyKey]map[Key]struct{}{},
		revokedFamilies: map[familyKey]time.Time{},
	}
	for _, opt := range opts {
		opt(m)
	}
	m.lastSweep = m.clock()
	return m
}

var _ Store = (*Memory)(nil)

// CreateSession implements Store. A key whose session has expired may be used again.
func (m *Memory) CreateSession(ctx context.Context, key Key, s Session) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	now, err := m.lockForWrite()
	if err != nil {
		return err
	}
	defer m.mu.Unlock()
	if old, ok := m.sessions[key]; ok {
		if now.Before(old.ExpiresAt) {
			return errSessionExists
		}
		m.deleteSessionLocked(key, old)
	}
	m.sessions[key] = s
	u := m.userLocked(userKey{s.Policy, s.UserID})
	if u.sessions == nil {
		u.sessions = map[Key]struct{}{}
	}
	u.sessions[key] = struct{}{}
	return nil
}

// GetSession implements Store.
func (m *Memory) GetSession(ctx context.Context, key Key) (Session, error) {
	if err := ctxErr(ctx); err != nil {
		return Session{}, err
	}
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return Session{}, errClosed
	}
	now := m.clock()
	s, ok := m.sessions[key]
	m.mu.RUnlock()
	if !ok {
		return Session{}, ErrNotFound
	}
	if now.Before(s.ExpiresAt) {
		return s, nil
	}
	// Expired: remove it, unless another goroutine has replaced it meanwhile.
	m.mu.Lock()
	if s, ok := m.sessions[key]; ok && !now.Before(s.ExpiresAt) {
		m.deleteSessionLocked(key, s)
	}
	m.mu.Unlock()
	return Session{}, ErrNotFound
}

// ExtendSession implements Store. LastSeenAt never goes back: an earlier lastSeenAt leaves it.
func (m *Memory) ExtendSession(ctx context.Context, key Key, expiresAt, lastSeenAt time.Time) (Session, error) {
	if err := ctxErr(ctx); err != nil {
		return Session{}, err
	}
	now, err := m.lockForWrite()
	if err != nil {
		return Session{}, err
	}
	defer m.mu.Unlock()
	s, ok := m.liveSessionLocked(key, now)
	if !ok {
		return Session{}, ErrNotFound
	}
	if expiresAt.After(s.MaxExpiresAt) {
		expiresAt = s.MaxExpiresAt
	}
	if expiresAt.After(s.ExpiresAt) {
		s.ExpiresAt = expiresAt
	}
	if lastSeenAt.After(s.LastSeenAt) {
		s.LastSeenAt = lastSeenAt
	}
	m.sessions[key] = s
	return s, nil
}

// DeleteSession implements Store. Deleting a missing or expired session publishes nothing.
func (m *Memory) DeleteSession(ctx context.Context, key Key) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	now, err := m.lockForWrite()
	if err != nil {
		return err
	}
	s, ok := m.liveSessionLocked(key, now)
	if !ok {
		m.mu.Unlock()
		return nil
	}
	m.deleteSessionLocked(key, s)
	rev := Revocation{Kind: RevokeSession, Policy: s.Policy, Value: hex.EncodeToString(key[:]), At: now, Until: s.ExpiresAt}
	m.rememberLocked(rev, now)
	subs := m.subscribers
	m.mu.Unlock()
	publish(subs, rev)
	return nil
}

// RevokeUser implements Store. It counts the live sessions it deleted.
func (m *Memory) RevokeUser(ctx context.Context, policy, userID string, now, until time.Time) (int, error) {
	if err := ctxErr(ctx); err != nil {
		return 0, err
	}
	clock, err := m.lockForWrite()
	if err != nil {
		return 0, err
	}
	n := 0
	if u := m.users[userKey{policy, userID}]; u != nil {
		// Deleting the last record deletes u from m.users; ranging over its maps stays safe.
		for k := range u.sessions {
			s := m.sessions[k]
			if clock.Before(s.ExpiresAt) {
				n++
			}
			m.deleteSessionLocked(k, s)
		}
		for k := range u.tokens {
			m.deleteTokenLocked(k, m.tokens[k])
		}
	}
	rev := Revocation{Kind: RevokeUser, Policy: policy, Value: userID, At: now, Until: until}
	m.rememberLocked(rev, clock)
	subs := m.subscribers
	m.mu.Unlock()
	publish(subs, rev)
	return n, nil
}

// CreateRefreshToken implements Store. A token of a family revoked until a later time is refused,
// and so is a key that holds a live token.
func (m *Memory) CreateRefreshToken(ctx context.Context, key Key, t RefreshToken) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	now, err := m.lockForWrite()
	if err != nil {
		return err
	}
	defer m.mu.Unlock()
	if m.familyRevokedLocked(familyKey{t.Policy, t.Family}, now) {
		return fmt.Errorf("memory store: refresh-token family %q of policy %q is revoked", t.Family, t.Policy)
	}
	if _, ok := m.liveTokenLocked(key, now); ok {
		return errTokenExists
	}
	m.putTokenLocked(key, t)
	return nil
}

// RotateRefreshToken implements Store. Liveness is decided by the store's clock; now is the time
// recorded as UsedAt and compared with it for the grace window, and must not be zero. next must
// have the Policy and Family of old: otherwise nothing changes and the error says so.
func (m *Memory) RotateRefreshToken(ctx context.Context, old, successor Key, next RefreshToken, now time.Time, grace time.Duration) (RotateOutcome, RefreshToken, error) {
	if err := ctxErr(ctx); err != nil {
		return 0, RefreshToken{}, err
	}
	if now.IsZero() {
		// A zero UsedAt means unused: the token could be rotated again.
		return 0, RefreshToken{}, errZeroNow
	}
	if successor == old {
		return 0, RefreshToken{}, errSelfSuccessor
	}
	clock, err := m.lockForWrite()
	if err != nil {
		return 0, RefreshToken{}, err
	}
	t, ok := m.liveTokenLocked(old, clock)
	if !ok {
		m.mu.Unlock()
		return 0, RefreshToken{}, ErrNotFound
	}
	if next.Policy != t.Policy || next.Family != t.Family {
		m.mu.Unlock()
		return 0, RefreshToken{}, errOtherFamily
	}
	if t.UsedAt.IsZero() {
		defer m.mu.Unlock()
		if _, ok := m.liveTokenLocked(successor, clock); ok {
			return 0, RefreshToken{}, errTokenExists
		}
		used := t
		used.UsedAt = now
		used.Successor = successor
		m.tokens[old] = used
		m.putTokenLocked(successor, next)
		return Rotated, t, nil
	}
	if now.Sub(t.UsedAt) <= grace && t.Successor == successor {
		m.mu.Unlock()
		return Replayed, t, nil
	}
	fk := familyKey{t.Policy, t.Family}
	until := t.ExpiresAt
	for k := range m.families[fk] {
		if e := m.tokens[k].ExpiresAt; e.After(until) {
			until = e
		}
	}
	rev := m.revokeFamilyLocked(fk, until, now, clock)
	subs := m.subscribers
	m.mu.Unlock()
	publish(subs, rev)
	return Reused, t, nil
}

// GetRefreshToken implements Store.
func (m *Memory) GetRefreshToken(ctx context.Context, key Key) (RefreshToken, error) {
	if err := ctxErr(ctx); err != nil {
		return RefreshToken{}, err
	}
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return RefreshToken{}, errClosed
	}
	now := m.clock()
	t, ok := m.tokens[key]
	m.mu.RUnlock()
	if !ok {
		return RefreshToken{}, ErrNotFound
	}
	if now.Before(t.ExpiresAt) {
		return t, nil
	}
	m.mu.Lock()
	if t, ok := m.tokens[key]; ok && !now.Before(t.ExpiresAt) {
		m.deleteTokenLocked(key, t)
	}
	m.mu.Unlock()
	return RefreshToken{}, ErrNotFound
}

// RevokeFamily implements Store. Families are told apart by policy: revoking a family of one policy
// leaves a family of the same name under another. At of the revocation is the store's clock.
func (m *Memory) RevokeFamily(ctx context.Context, policy, family string, until time.Time) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	now, err := m.lockForWrite()
	if err != nil {
		return err
	}
	rev := m.revokeFamilyLocked(familyKey{policy, family}, until, now, now)
	subs := m.subscribers
	m.mu.Unlock()
	publish(subs, rev)
	return nil
}

// Revocations implements Store; it forgets the revocations whose Until has passed. The order of the
// result is the order of publication.
func (m *Memory) Revocations(ctx context.Context) ([]Revocation, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	m.forgetRevocationsLocked(m.clock())
	return slices.Clone(m.revocations), nil
}

// Subscribe implements Store; see Memory for when fn is called. Subscribing to a closed store, or
// with a nil fn, does nothing.
func (m *Memory) Subscribe(fn func(Revocation)) (cancel func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || fn == nil {
		return func() {}
	}
	m.nextSubscriber++
	id := m.nextSubscriber
	m.subscribers = append(m.subscribers, subscriber{id: id, fn: fn})
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if i := slices.IndexFunc(m.subscribers, func(s subscriber) bool { return s.id == id }); i >= 0 {
			// A new slice: publishers may be ranging over the old one.
			m.subscribers = slices.Concat(m.subscribers[:i], m.subscribers[i+1:])
		}
	}
}

// Close drops every record and subscriber. Afterwards every method fails with an error wrapping
// ErrUnavailable; Close itself may be called again.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.sessions, m.tokens, m.users, m.families, m.revokedFamilies = nil, nil, nil, nil, nil
	m.revocations, m.subscribers = nil, nil
	return nil
}

// Stats counts the records and index entries the store holds.
func (m *Memory) Stats() MemoryStats {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return MemoryStats{
		Sessions:        len(m.sessions),
		RefreshTokens:   len(m.tokens),
		Users:           len(m.users),
		Families:        len(m.families),
		RevokedFamilies: len(m.revokedFamilies),
		Revocations:     len(m.revocations),
		Subscribers:     len(m.subscribers),
	}
}

func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory store: %w", err)
	}
	return nil
}

// lockForWrite takes the write lock, reads the clock and sweeps if a sweep is due. On success the
// caller holds the lock and must release it.
func (m *Memory) lockForWrite() (time.Time, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return time.Time{}, errClosed
	}
	now := m.clock()
	// A clock that went back sweeps too, rather than wait for it to catch up.
	if d := now.Sub(m.lastSweep); d < 0 || d >= sweepInterval {
		m.sweepLocked(now)
	}
	return now, nil
}

// sweepLocked removes every expired record and revocation.
func (m *Memory) sweepLocked(now time.Time) {
	m.lastSweep = now
	for k, s := range m.sessions {
		if !now.Before(s.ExpiresAt) {
			m.deleteSessionLocked(k, s)
		}
	}
	for k, t := range m.tokens {
		if !now.Before(t.ExpiresAt) {
			m.deleteTokenLocked(k, t)
		}
	}
	for f, until := range m.revokedFamilies {
		if !now.Before(until) {
			delete(m.revokedFamilies, f)
		}
	}
	m.forgetRevocationsLocked(now)
}

func (m *Memory) forgetRevocationsLocked(now time.Time) {
	m.revocations = slices.DeleteFunc(m.revocations, func(r Revocation) bool { return !now.Before(r.Until) })
}

// rememberLocked keeps rev for Revocations while it is in force.
func (m *Memory) rememberLocked(rev Revocation, now time.Time) {
	if now.Before(rev.Until) {
		m.revocations = append(m.revocations, rev)
	}
}

// liveSessionLocked returns the session at key if it is live, and removes it if it has expired.
func (m *Memory) liveSessionLocked(key Key, now time.Time) (Session, bool) {
	s, ok := m.sessions[key]
	if !ok {
		return Session{}, false
	}
	if !now.Before(s.ExpiresAt) {
		m.deleteSessionLocked(key, s)
		return Session{}, false
	}
	return s, true
}

// liveTokenLocked returns the refresh token at key if it is live, and removes it if it has expired.
func (m *Memory) liveTokenLocked(key Key, now time.Time) (RefreshToken, bool) {
	t, ok := m.tokens[key]
	if !ok {
		return RefreshToken{}, false
	}
	if !now.Before(t.ExpiresAt) {
		m.deleteTokenLocked(key, t)
		return RefreshToken{}, false
	}
	return t, true
}

func (m *Memory) familyRevokedLocked(f familyKey, now time.Time) bool {
	until, ok := m.revokedFamilies[f]
	return ok && now.Before(until)
}

// userLocked returns the index entry of u, creating it.
func (m *Memory) userLocked(u userKey) *userRecords {
	r := m.users[u]
	if r == nil {
		r = &userRecords{}
		m.users[u] = r
	}
	return r
}

// putTokenLocked stores t at key, which holds no token, and indexes it.
func (m *Memory) putTokenLocked(key Key, t RefreshToken) {
	if old, ok := m.tokens[key]; ok {
		m.deleteTokenLocked(key, old)
	}
	m.tokens[key] = t
	u := m.userLocked(userKey{t.Policy, t.UserID})
	if u.tokens == nil {
		u.tokens = map[Key]struct{}{}
	}
	u.tokens[key] = struct{}{}
	f := familyKey{t.Policy, t.Family}
	set := m.families[f]
	if set == nil {
		set = map[Key]struct{}{}
		m.families[f] = set
	}
	set[key] = struct{}{}
}

// deleteSessionLocked deletes the session s stored at key and its index entry.
func (m *Memory) deleteSessionLocked(key Key, s Session) {
	delete(m.sessions, key)
	uk := userKey{s.Policy, s.UserID}
	if u := m.users[uk]; u != nil {
		delete(u.sessions, key)
		if len(u.sessions) == 0 && len(u.tokens) == 0 {
			delete(m.users, uk)
		}
	}
}

// deleteTokenLocked deletes the refresh token t stored at key and its index entries.
func (m *Memory) deleteTokenLocked(key Key, t RefreshToken) {
	delete(m.tokens, key)
	uk := userKey{t.Policy, t.UserID}
	if u := m.users[uk]; u != nil {
		delete(u.tokens, key)
		if len(u.sessions) == 0 && len(u.tokens) == 0 {
			delete(m.users, uk)
		}
	}
	f := familyKey{t.Policy, t.Family}
	if set := m.families[f]; set != nil {
		delete(set, key)
		if len(set) == 0 {
			delete(m.families, f)
		}
	}
}

// revokeFamilyLocked deletes every token of family f, remembers f as revoked until until, and
// returns the revocation to publish, which happened at at; now is the store's clock.
func (m *Memory) revokeFamilyLocked(f familyKey, until, at, now time.Time) Revocation {
	// Deleting the last token deletes the set from m.families; ranging over it stays safe.
	for k := range m.families[f] {
		m.deleteTokenLocked(k, m.tokens[k])
	}
	if until.After(m.revokedFamilies[f]) && now.Before(until) {
		m.revokedFamilies[f] = until
	}
	rev := Revocation{Kind: RevokeFamily, Policy: f.policy, Value: f.family, At: at, Until: until}
	m.rememberLocked(rev, now)
	return rev
}

// publish calls every subscriber with rev; the caller must not hold the lock.
func publish(subs []subscriber, rev Revocation) {
	for _, s := range subs {
		s.fn(rev)
	}
}
