// Package store keeps what authgate must remember between requests: sessions, refresh-token
// families and revocations. One interface, Store, has two implementations: Memory, for a single
// process (the default), and Redis, shared by every replica (docs/redis.md).
//
// Secrets never reach a Store: sessions and refresh tokens are stored under the SHA-256 of their
// value (a Key), so a copy of the store lets nobody log in. The store does not decide anything
// either: sliding expiry, reuse detection windows and denylists are computed by its callers from the
// records and times it returns, so every implementation behaves the same.
package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"
)

// Key is the SHA-256 of a session ID or refresh token: what the store indexes by instead of the
// secret itself.
type Key [sha256.Size]byte

// KeyOf hashes a session ID or refresh token.
func KeyOf(secret string) Key { return sha256.Sum256([]byte(secret)) }

// ErrNotFound is returned for a session or refresh token that does not exist or has expired.
var ErrNotFound = errors.New("not found")

// ErrUnavailable wraps errors of a store that cannot be reached; callers apply the policy's
// onStoreUnavailable to them.
var ErrUnavailable = errors.New("session store unavailable")

// Session is the server-side record of a login under a Session-mode policy.
type Session struct {
	// Policy is "<namespace>/<name>" of the policy the session was created under; a session is
	// valid only there.
	Policy string
	// UserID is the user's stable id, the identity's "sub".
	UserID string
	// Email is the user's login name.
	Email string
	// CreatedAt is the login time.
	CreatedAt time.Time
	// ExpiresAt is when the session ends unless extended.
	ExpiresAt time.Time
	// MaxExpiresAt is CreatedAt plus the policy's maxLifetime: no extension goes past it.
	MaxExpiresAt time.Time
	// LastSeenAt is the time of the last check that found the session, for idle timeouts.
	LastSeenAt time.Time
}

// RefreshToken is the record of one refresh token. Every refresh token descends from one login;
// the login's Family is the "sid" claim of every access token issued from it.
type RefreshToken struct {
	Policy    string
	UserID    string
	Email     string
	Family    string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// UsedAt is set when the token was rotated; a used token presented again is a reuse, unless it
	// comes within the grace window with the same successor.
	UsedAt time.Time
	// Successor is the key of the token that replaced this one.
	Successor Key
}

// RotateOutcome says what RotateRefreshToken did.
type RotateOutcome int

const (
	// Rotated: the token was live and unused; it is now used and its successor stored.
	Rotated RotateOutcome = iota
	// Replayed: the token was used within the grace window and the caller asked for the same
	// successor; nothing changed. A concurrent duplicate refresh gets the same new token.
	Replayed
	// Reused: the token was used before, outside the grace window (or with another successor); the
	// whole family has been revoked.
	Reused
)

// RevocationKind says what a Revocation revokes.
type RevocationKind string

const (
	// RevokeSession: one session, by the hex of its Key; its cached records must go.
	RevokeSession RevocationKind = "session"
	// RevokeFamily: every refresh token and access token of a login, by family ("sid").
	RevokeFamily RevocationKind = "family"
	// RevokeUser: every session and token of a user (Value is the user id) of one policy issued
	// before the revocation.
	RevokeUser RevocationKind = "user"
)

// Kinds that say something about the revocation feed itself rather than about records. Stores whose
// feed can break (Redis) deliver them to subscribers; the memory store never does.
const (
	// SubscriptionLost: revocations may be missed from now on. Caches must drop what they hold and
	// read through the store until SubscriptionRestored.
	SubscriptionLost RevocationKind = "subscription-lost"
	// SubscriptionRestored: the feed is back. Caches drop what they cached meanwhile; denylists
	// reload Revocations, which they may have missed.
	SubscriptionRestored RevocationKind = "subscription-restored"
)

// Revocation is pushed to every replica so that it can evict caches and deny tokens at once,
// without a store lookup per check.
type Revocation struct {
	Kind   RevocationKind
	Policy string
	Value  string
	// At is when the revocation happened: tokens of a revoked user issued before it are refused.
	At time.Time
	// Until is when the revocation no longer matters: the latest expiry of what it revokes. A
	// replica may forget it afterwards.
	Until time.Time
}

// Store is the storage every webhook replica shares. Implementations are safe for concurrent use,
// and every method that changes more than one record does so atomically, except RevokeUser, which
// may delete the user's records one by one (Redis does: they live in several Cluster slots).
// Whether a session or refresh token has expired is decided by the store's clock, not by a time
// argument. Times may read back in UTC and truncated to the microsecond (Redis keeps microseconds).
//
// A method called with a done context returns an error wrapping ctx.Err(); one whose context ends
// while it waits for the store returns an error wrapping ErrUnavailable and ctx.Err(). The misuse errors a
// method documents (a key that exists already, a successor of another policy or family or at a
// taken key, a revoked family) are neither ErrNotFound nor ErrUnavailable. Any other error but ErrNotFound means the
// store could not answer; it wraps ErrUnavailable.
type Store interface {
	// CreateSession stores a new session; a key that exists already is an error.
	CreateSession(ctx context.Context, key Key, s Session) error
	// GetSession returns a session that exists and has not expired, or ErrNotFound.
	GetSession(ctx context.Context, key Key) (Session, error)
	// ExtendSession sets a live session's ExpiresAt to min(expiresAt, MaxExpiresAt) if that is later
	// than its current expiry, and its LastSeenAt to lastSeenAt if that is later than its current
	// one (neither ever goes back); it returns the session as stored, or ErrNotFound.
	ExtendSession(ctx context.Context, key Key, expiresAt, lastSeenAt time.Time) (Session, error)
	// DeleteSession deletes a session and publishes its revocation (Value is the hex of key, Until
	// the session's ExpiresAt); deleting a missing session is not an error and publishes nothing.
	DeleteSession(ctx context.Context, key Key) error
	// RevokeUser ends everything a user holds under a policy ("log out everywhere"): it deletes their
	// sessions and refresh tokens, remembers the revocation until until (the latest expiry of a token
	// issued before now), publishes a RevokeUser revocation, and returns how many live sessions it
	// deleted. Sessions and tokens created afterwards are not refused by the store.
	RevokeUser(ctx context.Context, policy, userID string, now, until time.Time) (int, error)

	// CreateRefreshToken stores the first refresh token of a login (a new family). A key that exists
	// already, and a family that is revoked, are errors.
	CreateRefreshToken(ctx context.Context, key Key, t RefreshToken) error
	// RotateRefreshToken uses the token at old and stores next under successor, atomically:
	// a live unused token becomes used (Rotated); a token used within grace with the same successor
	// changes nothing (Replayed); any other use of a used token revokes the family (Reused). It
	// returns the record of old as it was before the call. Missing or expired tokens, and tokens
	// of a revoked family, are ErrNotFound. next must have old's Policy and Family, and successor
	// must hold no live token: otherwise it is an error and nothing changes. The revocation of a
	// Reused family lasts until the latest ExpiresAt of the family's tokens.
	RotateRefreshToken(ctx context.Context, old, successor Key, next RefreshToken, now time.Time, grace time.Duration) (RotateOutcome, RefreshToken, error)
	// GetRefreshToken returns a live refresh token, used or not, or ErrNotFound.
	GetRefreshToken(ctx context.Context, key Key) (RefreshToken, error)
	// RevokeFamily deletes every refresh token of a family of a policy, remembers the family as
	// revoked until until, and publishes a RevokeFamily revocation. A family of the same name under
	// another policy is another family.
	RevokeFamily(ctx context.Context, policy, family string, until time.Time) error

	// Revocations returns the revocations still in force (Until in the future), so that a replica
	// starting up or resubscribing can fill its denylist.
	Revocations(ctx context.Context) ([]Revocation, error)
	// Subscribe calls fn for every revocation published from now on, by any replica, until cancel
	// is called (cancel may be called more than once). fn may be called from any goroutine, after
	// the change is visible in the store, and must not block.
	Subscribe(fn func(Revocation)) (cancel func())

	// Close releases the store's resources.
	Close() error
}
