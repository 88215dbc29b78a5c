// Package session implements Session mode: opaque session IDs in HttpOnly cookies, records in a
// store.Store, sliding expiry under an absolute cap, idle timeouts, logout and "log out everywhere".
//
// A session ID is 256 bits from crypto/rand, sent to the browser base64url-encoded and stored only
// as its SHA-256 (store.Key). Every login gets a fresh ID, so an ID planted before login (session
// fixation) never becomes a logged-in session. The package renders Set-Cookie values but knows
// nothing of proxies or requests; the decision core and the login handlers call it.
package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/store"
)

// idBytes is the size of a session ID: 256 bits, beyond guessing.
const idBytes = 32

// encodedIDLen is the length of an encoded session ID; cookies of any other length are not IDs.
var encodedIDLen = base64.RawURLEncoding.EncodedLen(idBytes)

// ErrNoSession is returned for a cookie that names no live session of the policy: unknown, expired,
// idle too long, of another policy, or of a user who is gone or disabled.
var ErrNoSession = errors.New("no valid session")

// Manager creates, checks and ends sessions.
type Manager struct {
	store store.Store
	clock func() time.Time
	cache *Cache
	// checkTimeout bounds the store calls of one Check (see WithCheckTimeout).
	checkTimeout time.Duration
}

// DefaultCheckTimeout bounds the store calls of a check: below Envoy's default ext_authz timeout
// (200 ms), so that a slow store ends in the policy's onStoreUnavailable answer, which the webhook
// gives, rather than in the proxy's own timeout, which it does not.
const DefaultCheckTimeout = 150 * time.Millisecond

// Option configures a Manager.
type Option func(*Manager)

// WithCache reads sessions through c; the caller keeps c following the store (Cache.Follow).
func WithCache(c *Cache) Option { return func(m *Manager) { m.cache = c } }

// WithCheckTimeout bounds the store calls of each Check by d (DefaultCheckTimeout when not set; a
// deadline of the request's context that comes sooner still counts). A store that has not answered
// by then counts as unavailable.
func WithCheckTimeout(d time.Duration) Option { return func(m *Manager) { m.checkTimeout = d } }

// NewManager returns a Manager over s. clock may be nil for time.Now.
func NewManager(s store.Store, clock func() time.Time, opts ...Option) *Manager {
	if clock == nil {
		clock = time.Now
	}
	m := &Manager{store: s, clock: clock, checkTimeout: DefaultCheckTimeout}
	for _, o := range opts {
		o(m)
	}
	return m
}

// storeDeadline returns *d, first setting it checkTimeout from now when it is still zero.
func (m *Manager) storeDeadline(d *time.Time) time.Time {
	if d.IsZero() {
		*d = time.Now().Add(m.checkTimeout)
	}
	return *d
}

// NewID returns a fresh session ID.
func NewID() (string, error) {
	b := make([]byte, idBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random bytes for a session ID: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// wellFormed reports whether a cookie value could be a session ID, so that junk never costs a
// store round trip.
func wellFormed(id string) bool {
	if len(id) != encodedIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Create starts a session for user under p and returns its ID and the Set-Cookie value that
// carries it.
func (m *Manager) Create(ctx context.Context, p *policy.Policy, user policy.User) (id, setCookie string, err error) {
	settings, ok := p.Session()
	if !ok {
		return "", "", fmt.Errorf("policy %s has no session settings", p.Ref())
	}
	id, err = NewID()
	if err != nil {
		return "", "", err
	}
	now := m.clock()
	expires := now.Add(settings.TTL)
	maxExpires := now.Add(settings.MaxLifetime)
	if expires.After(maxExpires) {
		expires = maxExpires
	}
	rec := store.Session{
		Policy: p.Name(), UserID: user.ID, Email: user.Email,
		CreatedAt: now, ExpiresAt: expires, MaxExpiresAt: maxExpires, LastSeenAt: now,
	}
	if err := m.store.CreateSession(ctx, store.KeyOf(id), rec); err != nil {
		return "", "", fmt.Errorf("storing a new session: %w", err)
	}
	return id, Cookie(settings, id, expires, now), nil
}

// Result is a session that passed a check.
type Result struct {
	Session store.Session
	// User is the user as the policy's directory has them now: current roles.
	User policy.User
	// SetCookie is non-empty when the check extended the session: the refreshed cookie to send
	// back so that the browser's copy expires with the session.
	SetCookie string
	// Degraded is true when the store did not answer and the session passed on this replica's
	// cached record, as the policy's onStoreUnavailable: AllowCached permits.
	Degraded bool
}

// Check validates the session whose ID is id under p, applying idle timeout and sliding expiry.
// It returns ErrNoSession for anything that is not a live session of p; other errors come from the
// store (and wrap store.ErrUnavailable when it cannot be reached).
func (m *Manager) Check(ctx context.Context, p *policy.Policy, id string) (Result, error) {
	settings, ok := p.Session()
	if !ok || !wellFormed(id) {
		return Result{}, ErrNoSession
	}
	allowCached := p.OnStoreUnavailable() == authgatev1.StoreUnavailableAllowCached
	// One deadline for every store call of this check, set by the first call actually made: a
	// cached session costs neither a clock read nor a context.
	var deadline time.Time
	key := store.KeyOf(id)
	degraded := false
	s, cached := m.cache.fresh(key)
	if !cached {
		var err error
		sctx, cancel := context.WithDeadline(ctx, m.storeDeadline(&deadline))
		s, err = m.store.GetSession(sctx, key)
		cancel()
		switch {
		case errors.Is(err, store.ErrNotFound):
			m.cache.forget(key)
			return Result{}, ErrNoSession
		case err != nil:
			fallback, ok := m.cache.fallback(key)
			if !allowCached || !ok || !errors.Is(err, store.ErrUnavailable) {
				return Result{}, err
			}
			s, degraded = fallback, true
		default:
			m.cache.put(key, s)
		}
	}
	// A session is bound to the policy that created it: another policy's cookie, even under the
	// same name and domain, proves nothing here.
	if s.Policy != p.Name() {
		return Result{}, ErrNoSession
	}
	now := m.clock()
	if !now.Before(s.ExpiresAt) {
		m.cache.forget(key)
		return Result{}, ErrNoSession
	}
	if settings.IdleTimeout > 0 && now.Sub(s.LastSeenAt) > settings.IdleTimeout {
		m.cache.forget(key)
		if !degraded {
			sctx, cancel := context.WithDeadline(ctx, m.storeDeadline(&deadline))
			err := m.store.DeleteSession(sctx, key)
			cancel()
			if err != nil && !errors.Is(err, store.ErrUnavailable) {
				return Result{}, err
			}
		}
		return Result{}, ErrNoSession
	}
	user, ok := lookupUser(p, s.UserID)
	if !ok {
		return Result{}, ErrNoSession
	}
	res := Result{Session: s, User: user, Degraded: degraded}
	newExpiry := extendedExpiry(settings, s, now)
	// Idle tracking needs LastSeenAt, but a store write per check would cost every request a round
	// trip: it is refreshed only when it lags by more than a tenth of the idle timeout.
	touch := settings.IdleTimeout > 0 && now.Sub(s.LastSeenAt) > settings.IdleTimeout/10
	if !degraded && (newExpiry.After(s.ExpiresAt) || touch) {
		lastSeen := s.LastSeenAt
		if touch {
			lastSeen = now
		}
		sctx, cancel := context.WithDeadline(ctx, m.storeDeadline(&deadline))
		updated, err := m.store.ExtendSession(sctx, key, maxTime(newExpiry, s.ExpiresAt), lastSeen)
		cancel()
		switch {
		case errors.Is(err, store.ErrNotFound):
			m.cache.forget(key)
			return Result{}, ErrNoSession
		case err != nil:
			// The extension can wait; the session itself is valid.
			if !allowCached || !errors.Is(err, store.ErrUnavailable) {
				return Result{}, err
			}
			res.Degraded = true
		default:
			m.cache.put(key, updated)
			if updated.ExpiresAt.After(s.ExpiresAt) {
				res.SetCookie = Cookie(settings, id, updated.ExpiresAt, now)
			}
			res.Session = updated
		}
	}
	return res, nil
}

// extendedExpiry is sliding expiry: when less than refreshThreshold of the session remains, it
// runs ttl from now, never past the absolute cap. Otherwise the expiry stays.
func extendedExpiry(settings policy.SessionSettings, s store.Session, now time.Time) time.Time {
	if s.ExpiresAt.Sub(now) >= settings.RefreshThreshold {
		return s.ExpiresAt
	}
	next := now.Add(settings.TTL)
	if next.After(s.MaxExpiresAt) {
		next = s.MaxExpiresAt
	}
	return next
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// lookupUser reads the user from the policy's current directory; a removed or disabled user has
// no session any more.
func lookupUser(p *policy.Policy, id string) (policy.User, bool) {
	l := p.Login()
	if l == nil {
		return policy.User{}, false
	}
	u, ok := l.UserByID(id)
	if !ok || u.Disabled {
		return policy.User{}, false
	}
	return u, true
}

// Delete ends the session whose ID is id (logout) and returns the Set-Cookie value that clears the
// browser's cookie. A session of another policy is left alone.
func (m *Manager) Delete(ctx context.Context, p *policy.Policy, id string) (clearCookie string, err error) {
	settings, ok := p.Session()
	if !ok {
		return "", fmt.Errorf("policy %s has no session settings", p.Ref())
	}
	clearCookie = ClearCookie(settings)
	if !wellFormed(id) {
		return clearCookie, nil
	}
	key := store.KeyOf(id)
	s, err := m.store.GetSession(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return clearCookie, nil
	}
	if err != nil {
		return "", err
	}
	if s.Policy != p.Name() {
		return clearCookie, nil
	}
	m.cache.forget(key)
	if err := m.store.DeleteSession(ctx, key); err != nil {
		return "", err
	}
	return clearCookie, nil
}

// Cookie renders the Set-Cookie value that carries a session ID until expires. It is always
// HttpOnly; Secure, SameSite, Domain and Path come from the policy.
func Cookie(settings policy.SessionSettings, id string, expires, now time.Time) string {
	c := &http.Cookie{
		Name: settings.CookieName, Value: id, Domain: settings.CookieDomain, Path: settings.CookiePath,
		Expires: expires.UTC(), MaxAge: int(expires.Sub(now).Round(time.Second) / time.Second),
		HttpOnly: true, Secure: settings.Secure, SameSite: settings.SameSite,
	}
	if c.MaxAge <= 0 {
		c.MaxAge = -1
	}
	return c.String()
}

// ClearCookie renders the Set-Cookie value that deletes the session cookie.
func ClearCookie(settings policy.SessionSettings) string {
	c := &http.Cookie{
		Name: settings.CookieName, Value: "", Domain: settings.CookieDomain, Path: settings.CookiePath,
		MaxAge: -1, Expires: time.Unix(0, 0).UTC(),
		HttpOnly: true, Secure: settings.Secure, SameSite: settings.SameSite,
	}
	return c.String()
}
