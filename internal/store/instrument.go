package store

import (
	"context"
	"time"
)

// Operation names a Store method in metrics.
type Operation string

// The operations an instrumented Store reports. Subscribe and Close are not timed.
const (
	OpCreateSession      Operation = "create_session"
	OpGetSession         Operation = "get_session"
	OpExtendSession      Operation = "extend_session"
	OpDeleteSession      Operation = "delete_session"
	OpRevokeUser         Operation = "revoke_user"
	OpCreateRefreshToken Operation = "create_refresh_token"
	OpRotateRefreshToken Operation = "rotate_refresh_token"
	OpGetRefreshToken    Operation = "get_refresh_token"
	OpRevokeFamily       Operation = "revoke_family"
	OpRevocations        Operation = "revocations"
)

// Operations lists every Operation, so that metrics can start each series at zero.
var Operations = []Operation{
	OpCreateSession, OpGetSession, OpExtendSession, OpDeleteSession, OpRevokeUser,
	OpCreateRefreshToken, OpRotateRefreshToken, OpGetRefreshToken, OpRevokeFamily, OpRevocations,
}

// Observer is told what an instrumented Store does. Its methods are called on the caller's
// goroutine once the operation has returned: they must be cheap, safe for concurrent use, and
// must not call the store.
type Observer interface {
	// Observe reports one operation: how long it took and the error it returned (nil,
	// ErrNotFound for an ordinary miss, or a failure).
	Observe(op Operation, took time.Duration, err error)
	// Published reports a revocation this process had the store publish: a deleted session, a
	// revoked family (a logout, or a reused refresh token) or a user logged out everywhere.
	Published(kind RevocationKind)
}

// Instrument returns s reporting every operation to o. It changes nothing else: what s answers,
// and the revocations it publishes and delivers, pass through unchanged.
func Instrument(s Store, o Observer) Store { return &instrumented{next: s, obs: o} }

type instrumented struct {
	next Store
	obs  Observer
}

// done reports op, started at start, with its error.
func (s *instrumented) done(op Operation, start time.Time, err error) {
	s.obs.Observe(op, time.Since(start), err)
}

func (s *instrumented) CreateSession(ctx context.Context, key Key, sess Session) error {
	start := time.Now()
	err := s.next.CreateSession(ctx, key, sess)
	s.done(OpCreateSession, start, err)
	return err
}

func (s *instrumented) GetSession(ctx context.Context, key Key) (Session, error) {
	start := time.Now()
	sess, err := s.next.GetSession(ctx, key)
	s.done(OpGetSession, start, err)
	return sess, err
}

func (s *instrumented) ExtendSession(ctx context.Context, key Key, expiresAt, lastSeenAt time.Time) (Session, error) {
	start := time.Now()
	sess, err := s.next.ExtendSession(ctx, key, expiresAt, lastSeenAt)
	s.done(OpExtendSession, start, err)
	return sess, err
}

// DeleteSession counts a published revocation whenever it succeeds: deleting a missing session
// publishes nothing, but callers delete the sessions they have just found.
func (s *instrumented) DeleteSession(ctx context.Context, key Key) error {
	start := time.Now()
	err := s.next.DeleteSession(ctx, key)
	s.done(OpDeleteSession, start, err)
	if err == nil {
		s.obs.Published(RevokeSession)
	}
	return err
}

func (s *instrumented) RevokeUser(ctx context.Context, policy, userID string, now, until time.Time) (int, error) {
	start := time.Now()
	n, err := s.next.RevokeUser(ctx, policy, userID, now, until)
	s.done(OpRevokeUser, start, err)
	if err == nil {
		s.obs.Published(RevokeUser)
	}
	return n, err
}

func (s *instrumented) CreateRefreshToken(ctx context.Context, key Key, t RefreshToken) error {
	start := time.Now()
	err := s.next.CreateRefreshToken(ctx, key, t)
	s.done(OpCreateRefreshToken, start, err)
	return err
}

func (s *instrumented) RotateRefreshToken(ctx context.Context, old, successor Key, next RefreshToken, now time.Time, grace time.Duration) (RotateOutcome, RefreshToken, error) {
	start := time.Now()
	outcome, prev, err := s.next.RotateRefreshToken(ctx, old, successor, next, now, grace)
	s.done(OpRotateRefreshToken, start, err)
	if err == nil && outcome == Reused {
		// The store revoked the family and published it.
		s.obs.Published(RevokeFamily)
	}
	return outcome, prev, err
}

func (s *instrumented) GetRefreshToken(ctx context.Context, key Key) (RefreshToken, error) {
	start := time.Now()
	t, err := s.next.GetRefreshToken(ctx, key)
	s.done(OpGetRefreshToken, start, err)
	return t, err
}

func (s *instrumented) RevokeFamily(ctx context.Context, policy, family string, until time.Time) error {
	start := time.Now()
	err := s.next.RevokeFamily(ctx, policy, family, until)
	s.done(OpRevokeFamily, start, err)
	if err == nil {
		s.obs.Published(RevokeFamily)
	}
	return err
}

func (s *instrumented) Revocations(ctx context.Context) ([]Revocation, error) {
	start := time.Now()
	revs, err := s.next.Revocations(ctx)
	s.done(OpRevocations, start, err)
	return revs, err
}

func (s *instrumented) Subscribe(fn func(Revocation)) (cancel func()) { return s.next.Subscribe(fn) }

func (s *instrumented) Close() error { return s.next.Close() }
