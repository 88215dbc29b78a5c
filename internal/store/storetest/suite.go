// Package storetest is the conformance suite of store.Store: every implementation runs Run, so that
// they all behave the same. The suite checks observable behaviour only, through the Store
// interface. Times are passed explicitly, except for expiry, which a store decides with its own
// clock: the suite gives each store a Clock it advances to make records expire.
package storetest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/store"
)

// Clock is a fake clock for stores under test: it stands still until Advance. It is safe for
// concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock that reads start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d, which must not be negative.
func (c *Clock) Advance(d time.Duration) {
	if d < 0 {
		panic("storetest: Clock.Advance with a negative duration")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// start is the time every subtest's clock starts at: whole seconds, so that a store that keeps
// coarser times still compares equal.
var start = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// deliveryTimeout bounds the wait for a subscriber to receive a revocation, for stores that
// deliver asynchronously.
const deliveryTimeout = 5 * time.Second

// Policies and users of the suite's records.
const (
	policyA = "ns-a/policy"
	policyB = "ns-b/policy"
	alice   = "user-alice"
	bob     = "user-bob"
)

// Run runs every conformance subtest. Each gets a fresh store from newStore, built on a fresh Clock
// that reads 2026-03-01T12:00:00Z; the store must read its time from clock. Run closes the store
// when the subtest ends.
func Run(t *testing.T, newStore func(t *testing.T, clock *Clock) store.Store) {
	t.Helper()
	for _, tc := range subtests {
		t.Run(tc.name, func(t *testing.T) {
			clock := NewClock(start)
			s := newStore(t, clock)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.run(&env{T: t, s: s, clock: clock, ctx: t.Context()})
		})
	}
}

// subtests lists the conformance subtests; each function's comment says what it checks.
var subtests = []struct {
	name string
	run  func(e *env)
}{
	{"CreateGetSession", testCreateGetSession},
	{"CreateSessionTwiceFails", testCreateSessionTwiceFails},
	{"SessionExpires", testSessionExpires},
	{"ExtendSessionExtends", testExtendSessionExtends},
	{"ExtendSessionCapsAtMaxExpiresAt", testExtendSessionCaps},
	{"ExtendSessionNeverShortens", testExtendSessionNeverShortens},
	{"ExtendSessionLastSeenAtNeverGoesBack", testExtendSessionLastSeenAt},
	{"ExtendSessionMissingOrExpired", testExtendSessionMissing},
	{"DeleteSessionPublishes", testDeleteSession},
	{"DeleteSessionTwiceOrMissing", testDeleteSessionTwice},
	{"RevokeUser", testRevokeUser},
	{"RevokeUserUnknown", testRevokeUserUnknown},
	{"RevokeUserThenNewLogin", testRevokeUserThenNewLogin},
	{"CreateGetRefreshToken", testCreateGetRefreshToken},
	{"CreateRefreshTokenTwiceFails", testCreateRefreshTokenTwice},
	{"RefreshTokenExpires", testRefreshTokenExpires},
	{"RotateRefreshToken", testRotate},
	{"RotateMissingOrExpired", testRotateMissing},
	{"RotateReplayWithinGrace", testRotateReplay},
	{"RotateReuseAfterGrace", testRotateReuseAfterGrace},
	{"RotateReuseWithOtherSuccessor", testRotateReuseOtherSuccessor},
	{"RotateRefusesOtherFamilyOrPolicy", testRotateOtherFamily},
	{"RotateRefusesExistingSuccessor", testRotateExistingSuccessor},
	{"RevokeFamily", testRevokeFamily},
	{"RevokeFamilyEnds", testRevokeFamilyEnds},
	{"Revocations", testRevocations},
	{"SubscribeAndCancel", testSubscribe},
	{"ConcurrentRotateSameSuccessor", testConcurrentRotate},
	{"ConcurrentExtendSession", testConcurrentExtend},
	{"ConcurrentCreateSession", testConcurrentCreate},
	{"CancelledContext", testCancelledContext},
}

// env is what a subtest works with.
type env struct {
	*testing.T
	s     store.Store
	clock *Clock
	ctx   context.Context
}

// key returns the key of a made-up secret.
func key(name string) store.Key { return store.KeyOf("storetest/" + name) }

func hexKey(k store.Key) string { return hex.EncodeToString(k[:]) }

// session returns a session created now that expires in an hour, at most in a day.
func (e *env) session(policy, user string) store.Session {
	now := e.clock.Now()
	return store.Session{
		Policy: policy, UserID: user, Email: user + "@example.com",
		CreatedAt: now, ExpiresAt: now.Add(time.Hour), MaxExpiresAt: now.Add(24 * time.Hour), LastSeenAt: now,
	}
}

// token returns an unused refresh token issued now that expires in a day.
func (e *env) token(policy, user, family string) store.RefreshToken {
	now := e.clock.Now()
	return store.RefreshToken{
		Policy: policy, UserID: user, Email: user + "@example.com", Family: family,
		IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour),
	}
}

func (e *env) createSession(k store.Key, s store.Session) {
	e.Helper()
	if err := e.s.CreateSession(e.ctx, k, s); err != nil {
		e.Fatalf("CreateSession: %v", err)
	}
}

func (e *env) createToken(k store.Key, t store.RefreshToken) {
	e.Helper()
	if err := e.s.CreateRefreshToken(e.ctx, k, t); err != nil {
		e.Fatalf("CreateRefreshToken: %v", err)
	}
}

// wantSession fails unless the session at k is live and equal to want.
func (e *env) wantSession(k store.Key, want store.Session) {
	e.Helper()
	got, err := e.s.GetSession(e.ctx, k)
	if err != nil {
		e.Fatalf("GetSession: %v, want %s", err, fmtSession(want))
	}
	if !sameSession(got, want) {
		e.Fatalf("GetSession = %s\nwant         %s", fmtSession(got), fmtSession(want))
	}
}

// wantNoSession fails unless GetSession of k is ErrNotFound.
func (e *env) wantNoSession(k store.Key) {
	e.Helper()
	if got, err := e.s.GetSession(e.ctx, k); !errors.Is(err, store.ErrNotFound) {
		e.Fatalf("GetSession = %s, %v; want ErrNotFound", fmtSession(got), err)
	}
}

// wantToken fails unless the refresh token at k is live and equal to want.
func (e *env) wantToken(k store.Key, want store.RefreshToken) {
	e.Helper()
	got, err := e.s.GetRefreshToken(e.ctx, k)
	if err != nil {
		e.Fatalf("GetRefreshToken: %v, want %s", err, fmtToken(want))
	}
	if !sameToken(got, want) {
		e.Fatalf("GetRefreshToken = %s\nwant              %s", fmtToken(got), fmtToken(want))
	}
}

// wantNoToken fails unless GetRefreshToken of k is ErrNotFound.
func (e *env) wantNoToken(k store.Key) {
	e.Helper()
	if got, err := e.s.GetRefreshToken(e.ctx, k); !errors.Is(err, store.ErrNotFound) {
		e.Fatalf("GetRefreshToken = %s, %v; want ErrNotFound", fmtToken(got), err)
	}
}

// rotate calls RotateRefreshToken and fails unless it returns the outcome want.
func (e *env) rotate(old, successor store.Key, next store.RefreshToken, now time.Time, grace time.Duration, want store.RotateOutcome) store.RefreshToken {
	e.Helper()
	got, rec, err := e.s.RotateRefreshToken(e.ctx, old, successor, next, now, grace)
	if err != nil {
		e.Fatalf("RotateRefreshToken: %v, want outcome %s", err, outcome(want))
	}
	if got != want {
		e.Fatalf("RotateRefreshToken = %s, want %s", outcome(got), outcome(want))
	}
	return rec
}

// wantMisuse fails unless err is an error that is neither ErrNotFound nor ErrUnavailable.
func (e *env) wantMisuse(what string, err error) {
	e.Helper()
	switch {
	case err == nil:
		e.Fatalf("%s succeeded, want an error", what)
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrUnavailable):
		e.Fatalf("%s: %v; want a misuse error, neither ErrNotFound nor ErrUnavailable", what, err)
	}
}

// wantRevocations fails unless Revocations returns want, in any order.
func (e *env) wantRevocations(want ...store.Revocation) {
	e.Helper()
	got, err := e.s.Revocations(e.ctx)
	if err != nil {
		e.Fatalf("Revocations: %v", err)
	}
	if !sameRevocationSet(got, want) {
		e.Fatalf("Revocations =\n%s\nwant\n%s", fmtRevocations(got), fmtRevocations(want))
	}
}

// recorder is a subscriber that keeps what it receives.
type recorder struct {
	mu  sync.Mutex
	got []store.Revocation
}

// subscribe returns a recorder subscribed to e's store, unsubscribed when the test ends.
func (e *env) subscribe() (*recorder, func()) {
	r := &recorder{}
	cancel := e.s.Subscribe(func(rev store.Revocation) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, rev)
	})
	e.Cleanup(cancel)
	return r, cancel
}

func (r *recorder) received() []store.Revocation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]store.Revocation(nil), r.got...)
}

// wait waits until r has received n revocations, and fails unless they are want, in order. A
// revocation received after the n-th, which the test did not publish, is not seen: to check that
// an action published nothing, follow it with one that publishes and wait for that one.
func (r *recorder) wait(t testing.TB, want ...store.Revocation) {
	t.Helper()
	deadline := time.Now().Add(deliveryTimeout)
	got := r.received()
	for len(got) < len(want) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		got = r.received()
	}
	if len(got) < len(want) {
		t.Fatalf("subscriber received, within %v,\n%s\nwant\n%s", deliveryTimeout, fmtRevocations(got), fmtRevocations(want))
	}
	got = got[:len(want)]
	for i := range want {
		if !sameRevocation(got[i], want[i]) {
			t.Fatalf("subscriber received\n%s\nwant\n%s", fmtRevocations(got), fmtRevocations(want))
		}
	}
}

// testCreateGetSession: a created session reads back as created; another key is ErrNotFound.
func testCreateGetSession(e *env) {
	s := e.session(policyA, alice)
	e.createSession(key("s1"), s)
	e.wantSession(key("s1"), s)
	e.wantNoSession(key("s2"))
	// A second session of the same user is a separate record.
	s2 := e.session(policyA, alice)
	s2.Email = "other@example.com"
	e.createSession(key("s2"), s2)
	e.wantSession(key("s2"), s2)
	e.wantSession(key("s1"), s)
}

// testCreateSessionTwiceFails: creating a session at a key that holds a live one is a misuse error
// and leaves the first session as it was.
func testCreateSessionTwiceFails(e *env) {
	s := e.session(policyA, alice)
	e.createSession(key("s"), s)
	other := e.session(policyB, bob)
	e.wantMisuse("second CreateSession", e.s.CreateSession(e.ctx, key("s"), other))
	e.wantSession(key("s"), s)
}

// testSessionExpires: a session is live while the clock is before its ExpiresAt, and ErrNotFound
// from ExpiresAt on.
func testSessionExpires(e *env) {
	s := e.session(policyA, alice)
	e.createSession(key("s"), s)
	e.clock.Advance(time.Hour - time.Second)
	e.wantSession(key("s"), s)
	e.clock.Advance(time.Second) // now == ExpiresAt
	e.wantNoSession(key("s"))
	e.clock.Advance(time.Hour)
	e.wantNoSession(key("s"))
}

// testExtendSessionExtends: ExtendSession moves ExpiresAt and LastSeenAt forward, leaves the
// other fields, returns the session as stored, and the extension keeps it live past its old expiry.
func testExtendSessionExtends(e *env) {
	s := e.session(policyA, alice)
	e.createSession(key("s"), s)
	e.clock.Advance(30 * time.Minute)
	now := e.clock.Now()
	got, err := e.s.ExtendSession(e.ctx, key("s"), now.Add(2*time.Hour), now)
	if err != nil {
		e.Fatalf("ExtendSession: %v", err)
	}
	want := s
	want.ExpiresAt, want.LastSeenAt = now.Add(2*time.Hour), now
	if !sameSession(got, want) {
		e.Fatalf("ExtendSession = %s\nwant          %s", fmtSession(got), fmtSession(want))
	}
	e.wantSession(key("s"), want)
	e.clock.Advance(time.Hour) // past the old expiry, before the new one
	e.wantSession(key("s"), want)
}

// testExtendSessionCaps: an extension past MaxExpiresAt stops at MaxExpiresAt.
func testExtendSessionCaps(e *env) {
	s := e.session(policyA, alice)
	e.createSession(key("s"), s)
	now := e.clock.Now()
	got, err := e.s.ExtendSession(e.ctx, key("s"), s.MaxExpiresAt.Add(time.Hour), now.Add(time.Minute))
	if err != nil {
		e.Fatalf("ExtendSession: %v", err)
	}
	want := s
	want.ExpiresAt, want.LastSeenAt = s.MaxExpiresAt, now.Add(time.Minute)
	if !sameSession(got, want) {
		e.Fatalf("ExtendSession = %s\nwant          %s", fmtSession(got), fmtSession(want))
	}
	e.wantSession(key("s"), want)
	e.clock.Advance(s.MaxExpiresAt.Sub(now))
	e.wantNoSession(key("s"))
}

// testExtendSessionNeverShortens: an expiry earlier than the current one leaves ExpiresAt, but
// LastSeenAt still moves forward.
func testExtendSessionNeverShortens(e *env) {
	s := e.session(policyA, alice)
	e.createSession(key("s"), s)
	e.clock.Advance(10 * time.Minute)
	now := e.clock.Now()
	got, err := e.s.ExtendSession(e.ctx, key("s"), s.ExpiresAt.Add(-30*time.Minute), now)
	if err != nil {
		e.Fatalf("ExtendSession: %v", err)
	}
	want := s
	want.LastSeenAt = now
	if !sameSession(got, want) {
		e.Fatalf("ExtendSession = %s\nwant          %s", fmtSession(got), fmtSession(want))
	}
	e.wantSession(key("s"), want)
}

// testExtendSessionLastSeenAt: a lastSeenAt earlier than the stored one (a late, concurrent check)
// leaves LastSeenAt, while the expiry still extends.
func testExtendSessionLastSeenAt(e *env) {
	s := e.session(policyA, alice)
	e.createSession(key("s"), s)
	e.clock.Advance(20 * time.Minute)
	now := e.clock.Now()
	if _, err := e.s.ExtendSession(e.ctx, key("s"), s.ExpiresAt, now); err != nil {
		e.Fatalf("ExtendSession: %v", err)
	}
	got, err := e.s.ExtendSession(e.ctx, key("s"), now.Add(2*time.Hour), now.Add(-5*time.Minute))
	if err != nil {
		e.Fatalf("ExtendSession: %v", err)
	}
	want := s
	want.ExpiresAt, want.LastSeenAt = now.Add(2*time.Hour), now
	if !sameSession(got, want) {
		e.Fatalf("ExtendSession = %s\nwant          %s", fmtSession(got), fmtSession(want))
	}
	e.wantSession(key("s"), want)
}

// testExtendSessionMissing: extending a session that never existed, or has expired, is
// ErrNotFound and does not bring it back.
func testExtendSessionMissing(e *env) {
	now := e.clock.Now()
	if _, err := e.s.ExtendSession(e.ctx, key("none"), now.Add(time.Hour), now); !errors.Is(err, store.ErrNotFound) {
		e.Fatalf("ExtendSession of a missing session: %v, want ErrNotFound", err)
	}
	e.wantNoSession(key("none"))

	s := e.session(policyA, alice)
	e.createSession(key("s"), s)
	e.clock.Advance(time.Hour)
	now = e.clock.Now()
	if _, err := e.s.ExtendSession(e.ctx, key("s"), now.Add(time.Hour), now); !errors.Is(err, store.ErrNotFound) {
		e.Fatalf("ExtendSession of an expired session: %v, want ErrNotFound", err)
	}
	e.wantNoSession(key("s"))
}

// testDeleteSession: DeleteSession removes the session, and publishes a RevokeSession revocation
// (policy, hex key, the store's time, the session's current expiry) to subscribers and in
// Revocations. Another session stays.
func testDeleteSession(e *env) {
	rec, _ := e.subscribe()
	s := e.session(policyA, alice)
	e.createSession(key("s"), s)
	e.createSession(key("other"), e.session(policyA, alice))
	e.clock.Advance(time.Minute)
	extended, err := e.s.ExtendSession(e.ctx, key("s"), s.ExpiresAt.Add(time.Hour), e.clock.Now())
	if err != nil {
		e.Fatalf("ExtendSession: %v", err)
	}
	if err := e.s.DeleteSession(e.ctx, key("s")); err != nil {
		e.Fatalf("DeleteSession: %v", err)
	}
	e.wantNoSession(key("s"))
	if _, err := e.s.GetSession(e.ctx, key("other")); err != nil {
		e.Fatalf("GetSession of another session: %v", err)
	}
	want := store.Revocation{Kind: store.RevokeSession, Policy: policyA, Value: hexKey(key("s")), At: e.clock.Now(), Until: extended.ExpiresAt}
	rec.wait(e, want)
	e.wantRevocations(want)
}

// testDeleteSessionTwice: deleting a session again, or one that never existed, is not an error and
// publishes nothing.
func testDeleteSessionTwice(e *env) {
	rec, _ := e.subscribe()
	s := e.session(policyA, alice)
	e.createSession(key("s"), s)
	if err := e.s.DeleteSession(e.ctx, key("s")); err != nil {
		e.Fatalf("DeleteSession: %v", err)
	}
	if err := e.s.DeleteSession(e.ctx, key("s")); err != nil {
		e.Fatalf("second DeleteSession: %v", err)
	}
	if err := e.s.DeleteSession(e.ctx, key("never")); err != nil {
		e.Fatalf("DeleteSession of a missing session: %v", err)
	}
	// A marker: the first revocation after the deletion's must be it.
	marker := e.session(policyB, bob)
	e.createSession(key("marker"), marker)
	if err := e.s.DeleteSession(e.ctx, key("marker")); err != nil {
		e.Fatalf("DeleteSession: %v", err)
	}
	now := e.clock.Now()
	first := store.Revocation{Kind: store.RevokeSession, Policy: policyA, Value: hexKey(key("s")), At: now, Until: s.ExpiresAt}
	second := store.Revocation{Kind: store.RevokeSession, Policy: policyB, Value: hexKey(key("marker")), At: now, Until: marker.ExpiresAt}
	rec.wait(e, first, second)
	e.wantRevocations(first, second)
}

// testRevokeUser: RevokeUser deletes the live sessions and the refresh tokens of one user under one
// policy, counts the sessions, and publishes a RevokeUser revocation. The same user id under
// another policy, and other users, keep theirs.
func testRevokeUser(e *env) {
	rec, _ := e.subscribe()
	short := e.session(policyA, alice)
	short.ExpiresAt = short.CreatedAt.Add(10 * time.Second)
	e.createSession(key("alice-a-expired"), short)
	e.clock.Advance(20 * time.Second)
	e.createSession(key("alice-a-1"), e.session(policyA, alice))
	e.createSession(key("alice-a-2"), e.session(policyA, alice))
	aliceB := e.session(policyB, alice)
	e.createSession(key("alice-b"), aliceB)
	bobA := e.session(policyA, bob)
	e.createSession(key("bob-a"), bobA)

	e.createToken(key("alice-a-rt1"), e.token(policyA, alice, "fam-alice-a"))
	now := e.clock.Now()
	e.rotate(key("alice-a-rt1"), key("alice-a-rt2"), e.token(policyA, alice, "fam-alice-a"), now, time.Minute, store.Rotated)
	aliceBToken := e.token(policyB, alice, "fam-alice-b")
	e.createToken(key("alice-b-rt"), aliceBToken)
	bobAToken := e.token(policyA, bob, "fam-bob-a")
	e.createToken(key("bob-a-rt"), bobAToken)

	until := now.Add(24 * time.Hour)
	n, err := e.s.RevokeUser(e.ctx, policyA, alice, now, until)
	if err != nil {
		e.Fatalf("RevokeUser: %v", err)
	}
	if n != 2 {
		e.Errorf("RevokeUser deleted %d live sessions, want 2", n)
	}
	for _, k := range []string{"alice-a-1", "alice-a-2", "alice-a-expired"} {
		e.wantNoSession(key(k))
	}
	e.wantNoToken(key("alice-a-rt1"))
	e.wantNoToken(key("alice-a-rt2"))
	if _, _, err := e.s.RotateRefreshToken(e.ctx, key("alice-a-rt2"), key("alice-a-rt3"), e.token(policyA, alice, "fam-alice-a"), now, time.Minute); !errors.Is(err, store.ErrNotFound) {
		e.Errorf("RotateRefreshToken of a revoked user's token: %v, want ErrNotFound", err)
	}
	e.wantSession(key("alice-b"), aliceB)
	e.wantSession(key("bob-a"), bobA)
	e.wantToken(key("alice-b-rt"), aliceBToken)
	e.wantToken(key("bob-a-rt"), bobAToken)

	want := store.Revocation{Kind: store.RevokeUser, Policy: policyA, Value: alice, At: now, Until: until}
	rec.wait(e, want)
	e.wantRevocations(want)
}

// testRevokeUserUnknown: revoking a user with nothing stored deletes nothing, returns 0, and
// still publishes the revocation (their tokens may be out there), whose At is the time passed in,
// not the store's.
func testRevokeUserUnknown(e *env) {
	rec, _ := e.subscribe()
	e.createSession(key("bob"), e.session(policyA, bob))
	now := e.clock.Now().Add(-time.Second) // the caller's clock may lag
	n, err := e.s.RevokeUser(e.ctx, policyA, alice, now, now.Add(time.Hour))
	if err != nil || n != 0 {
		e.Fatalf("RevokeUser = %d, %v; want 0, nil", n, err)
	}
	if _, err := e.s.GetSession(e.ctx, key("bob")); err != nil {
		e.Fatalf("GetSession of another user's session: %v", err)
	}
	want := store.Revocation{Kind: store.RevokeUser, Policy: policyA, Value: alice, At: now, Until: now.Add(time.Hour)}
	rec.wait(e, want)
	e.wantRevocations(want)
}

// testRevokeUserThenNewLogin: the store does not refuse what a user creates after RevokeUser:
// callers compare times with the revocation's At.
func testRevokeUserThenNewLogin(e *env) {
	e.createSession(key("old"), e.session(policyA, alice))
	now := e.clock.Now()
	if _, err := e.s.RevokeUser(e.ctx, policyA, alice, now, now.Add(time.Hour)); err != nil {
		e.Fatalf("RevokeUser: %v", err)
	}
	e.clock.Advance(time.Second)
	s := e.session(policyA, alice)
	e.createSession(key("new"), s)
	e.wantSession(key("new"), s)
	tok := e.token(policyA, alice, "fam-new")
	e.createToken(key("rt"), tok)
	e.wantToken(key("rt"), tok)
}

// testCreateGetRefreshToken: a created refresh token reads back unused and as created; another key
// is ErrNotFound; tokens do not share keys with sessions.
func testCreateGetRefreshToken(e *env) {
	tok := e.token(policyA, alice, "fam")
	e.createToken(key("rt"), tok)
	e.wantToken(key("rt"), tok)
	e.wantNoToken(key("other"))
	e.wantNoSession(key("rt"))
}

// testCreateRefreshTokenTwice: creating a refresh token at a key that holds a live one is a misuse
// error and leaves the first token.
func testCreateRefreshTokenTwice(e *env) {
	tok := e.token(policyA, alice, "fam")
	e.createToken(key("rt"), tok)
	e.wantMisuse("second CreateRefreshToken", e.s.CreateRefreshToken(e.ctx, key("rt"), e.token(policyB, bob, "fam2")))
	e.wantToken(key("rt"), tok)
}

// testRefreshTokenExpires: a refresh token is live while the clock is before its ExpiresAt; from
// then on Get and Rotate are ErrNotFound, and a rotation does not store the successor.
func testRefreshTokenExpires(e *env) {
	tok := e.token(policyA, alice, "fam")
	e.createToken(key("rt"), tok)
	e.clock.Advance(24*time.Hour - time.Second)
	e.wantToken(key("rt"), tok)
	e.clock.Advance(time.Second)
	e.wantNoToken(key("rt"))
	now := e.clock.Now()
	if _, _, err := e.s.RotateRefreshToken(e.ctx, key("rt"), key("next"), e.token(policyA, alice, "fam"), now, time.Minute); !errors.Is(err, store.ErrNotFound) {
		e.Fatalf("RotateRefreshToken of an expired token: %v, want ErrNotFound", err)
	}
	e.wantNoToken(key("next"))
}

// testRotate: rotating a live unused token is Rotated and returns its record from before the call;
// the old token is then used, pointing at its successor, which is stored as given and can be
// rotated in turn.
func testRotate(e *env) {
	first := e.token(policyA, alice, "fam")
	e.createToken(key("rt1"), first)
	e.clock.Advance(time.Hour)
	now := e.clock.Now()
	second := e.token(policyA, alice, "fam")
	before := e.rotate(key("rt1"), key("rt2"), second, now, time.Minute, store.Rotated)
	if !sameToken(before, first) {
		e.Fatalf("RotateRefreshToken returned %s, want the record before the call %s", fmtToken(before), fmtToken(first))
	}
	used := first
	used.UsedAt, used.Successor = now, key("rt2")
	e.wantToken(key("rt1"), used)
	e.wantToken(key("rt2"), second)

	e.clock.Advance(time.Hour)
	now = e.clock.Now()
	third := e.token(policyA, alice, "fam")
	before = e.rotate(key("rt2"), key("rt3"), third, now, time.Minute, store.Rotated)
	if !sameToken(before, second) {
		e.Fatalf("RotateRefreshToken returned %s, want %s", fmtToken(before), fmtToken(second))
	}
	e.wantToken(key("rt3"), third)
	e.wantToken(key("rt1"), used)
}

// testRotateMissing: rotating a key that holds no token is ErrNotFound and stores nothing.
func testRotateMissing(e *env) {
	now := e.clock.Now()
	if _, _, err := e.s.RotateRefreshToken(e.ctx, key("none"), key("next"), e.token(policyA, alice, "fam"), now, time.Minute); !errors.Is(err, store.ErrNotFound) {
		e.Fatalf("RotateRefreshToken of a missing token: %v, want ErrNotFound", err)
	}
	e.wantNoToken(key("next"))
}

// testRotateReplay: presenting a used token again within the grace window (its edge included) with
// the same successor is Replayed and changes nothing: the successor keeps its first record (not
// the replay's next), the old token keeps its first UsedAt, and the successor can still be rotated.
func testRotateReplay(e *env) {
	const grace = 10 * time.Second
	first := e.token(policyA, alice, "fam")
	e.createToken(key("rt1"), first)
	now := e.clock.Now()
	second := e.token(policyA, alice, "fam")
	e.rotate(key("rt1"), key("rt2"), second, now, grace, store.Rotated)
	used := first
	used.UsedAt, used.Successor = now, key("rt2")

	e.clock.Advance(grace)
	replay := e.token(policyA, alice, "fam") // issued later: must not replace second
	before := e.rotate(key("rt1"), key("rt2"), replay, e.clock.Now(), grace, store.Replayed)
	if !sameToken(before, used) {
		e.Fatalf("Replayed rotation returned %s, want %s", fmtToken(before), fmtToken(used))
	}
	e.wantToken(key("rt1"), used)
	e.wantToken(key("rt2"), second)
	e.rotate(key("rt2"), key("rt3"), e.token(policyA, alice, "fam"), e.clock.Now(), grace, store.Rotated)
}

// testRotateReuseAfterGrace: presenting a used token after the grace window is Reused: the family
// (the token, its successor and their descendants) is gone, a RevokeFamily revocation lasting until
// the family's latest expiry is published and listed, and the family takes no new token. Another
// family stays.
func testRotateReuseAfterGrace(e *env) {
	const grace = 10 * time.Second
	rec, _ := e.subscribe()
	other := e.token(policyA, alice, "fam-other")
	e.createToken(key("other"), other)
	first := e.token(policyA, alice, "fam")
	e.createToken(key("rt1"), first)
	now := e.clock.Now()
	e.rotate(key("rt1"), key("rt2"), e.token(policyA, alice, "fam"), now, grace, store.Rotated)
	used := first
	used.UsedAt, used.Successor = now, key("rt2")
	e.clock.Advance(time.Hour)
	third := e.token(policyA, alice, "fam") // the family's latest expiry
	e.rotate(key("rt2"), key("rt3"), third, e.clock.Now(), grace, store.Rotated)

	e.clock.Advance(time.Minute)
	now = e.clock.Now()
	before := e.rotate(key("rt1"), key("rt2"), e.token(policyA, alice, "fam"), now, grace, store.Reused)
	if !sameToken(before, used) {
		e.Fatalf("Reused rotation returned %s, want %s", fmtToken(before), fmtToken(used))
	}
	for _, k := range []string{"rt1", "rt2", "rt3"} {
		e.wantNoToken(key(k))
	}
	if _, _, err := e.s.RotateRefreshToken(e.ctx, key("rt3"), key("rt4"), e.token(policyA, alice, "fam"), now, grace); !errors.Is(err, store.ErrNotFound) {
		e.Fatalf("RotateRefreshToken of a token of a revoked family: %v, want ErrNotFound", err)
	}
	e.wantNoToken(key("rt4"))
	e.wantToken(key("other"), other)

	want := store.Revocation{Kind: store.RevokeFamily, Policy: policyA, Value: "fam", At: now, Until: third.ExpiresAt}
	rec.wait(e, want)
	e.wantRevocations(want)
	e.wantMisuse("CreateRefreshToken in a revoked family", e.s.CreateRefreshToken(e.ctx, key("new"), e.token(policyA, alice, "fam")))
	e.wantNoToken(key("new"))
}

// testRotateReuseOtherSuccessor: presenting a used token within the grace window but with another
// successor is Reused, and revokes the family.
func testRotateReuseOtherSuccessor(e *env) {
	first := e.token(policyA, alice, "fam")
	e.createToken(key("rt1"), first)
	now := e.clock.Now()
	e.rotate(key("rt1"), key("rt2"), e.token(policyA, alice, "fam"), now, time.Minute, store.Rotated)
	e.rotate(key("rt1"), key("rt2-other"), e.token(policyA, alice, "fam"), now, time.Minute, store.Reused)
	e.wantNoToken(key("rt1"))
	e.wantNoToken(key("rt2"))
	e.wantNoToken(key("rt2-other"))
}

// testRotateOtherFamily: a rotation whose next has another family or another policy than the old
// token is a misuse error and changes nothing: the old token stays unused and rotates afterwards.
func testRotateOtherFamily(e *env) {
	first := e.token(policyA, alice, "fam")
	e.createToken(key("rt1"), first)
	now := e.clock.Now()
	for _, next := range []store.RefreshToken{e.token(policyA, alice, "fam-other"), e.token(policyB, alice, "fam")} {
		_, _, err := e.s.RotateRefreshToken(e.ctx, key("rt1"), key("rt2"), next, now, time.Minute)
		e.wantMisuse(fmt.Sprintf("RotateRefreshToken to %s", fmtToken(next)), err)
		e.wantToken(key("rt1"), first)
		e.wantNoToken(key("rt2"))
	}
	e.rotate(key("rt1"), key("rt2"), e.token(policyA, alice, "fam"), now, time.Minute, store.Rotated)
}

// testRotateExistingSuccessor: a rotation to a successor key that holds a live token already is a
// misuse error and changes nothing: neither token is replaced or used.
func testRotateExistingSuccessor(e *env) {
	first := e.token(policyA, alice, "fam")
	e.createToken(key("rt1"), first)
	taken := e.token(policyA, bob, "fam-bob")
	e.createToken(key("taken"), taken)
	_, _, err := e.s.RotateRefreshToken(e.ctx, key("rt1"), key("taken"), e.token(policyA, alice, "fam"), e.clock.Now(), time.Minute)
	e.wantMisuse("RotateRefreshToken to a taken key", err)
	e.wantToken(key("rt1"), first)
	e.wantToken(key("taken"), taken)
}

// testRevokeFamily: RevokeFamily deletes every token of the family, used or not, publishes and
// lists a RevokeFamily revocation, and refuses new tokens of the family. Another family, and a
// family of the same name under another policy, keep theirs.
func testRevokeFamily(e *env) {
	rec, _ := e.subscribe()
	e.createToken(key("rt1"), e.token(policyA, alice, "fam"))
	now := e.clock.Now()
	e.rotate(key("rt1"), key("rt2"), e.token(policyA, alice, "fam"), now, time.Minute, store.Rotated)
	other := e.token(policyA, alice, "fam-other")
	e.createToken(key("other"), other)
	samename := e.token(policyB, alice, "fam")
	e.createToken(key("samename"), samename)

	until := now.Add(48 * time.Hour)
	if err := e.s.RevokeFamily(e.ctx, policyA, "fam", until); err != nil {
		e.Fatalf("RevokeFamily: %v", err)
	}
	e.wantNoToken(key("rt1"))
	e.wantNoToken(key("rt2"))
	if _, _, err := e.s.RotateRefreshToken(e.ctx, key("rt2"), key("rt3"), e.token(policyA, alice, "fam"), now, time.Minute); !errors.Is(err, store.ErrNotFound) {
		e.Fatalf("RotateRefreshToken in a revoked family: %v, want ErrNotFound", err)
	}
	e.wantNoToken(key("rt3"))
	e.wantToken(key("other"), other)
	e.wantToken(key("samename"), samename)
	e.wantMisuse("CreateRefreshToken in a revoked family", e.s.CreateRefreshToken(e.ctx, key("new"), e.token(policyA, alice, "fam")))
	e.wantNoToken(key("new"))

	want := store.Revocation{Kind: store.RevokeFamily, Policy: policyA, Value: "fam", At: now, Until: until}
	rec.wait(e, want)
	e.wantRevocations(want)
}

// testRevokeFamilyEnds: a family is revoked until the revocation's Until and no longer: then it
// takes new tokens again, and Revocations no longer lists it.
func testRevokeFamilyEnds(e *env) {
	until := e.clock.Now().Add(time.Hour)
	if err := e.s.RevokeFamily(e.ctx, policyA, "fam", until); err != nil {
		e.Fatalf("RevokeFamily: %v", err)
	}
	e.clock.Advance(time.Hour - time.Second)
	e.wantMisuse("CreateRefreshToken in a revoked family", e.s.CreateRefreshToken(e.ctx, key("rt"), e.token(policyA, alice, "fam")))
	e.clock.Advance(time.Second)
	e.wantRevocations()
	tok := e.token(policyA, alice, "fam")
	e.createToken(key("rt"), tok)
	e.wantToken(key("rt"), tok)
}

// testRevocations: Revocations lists the revocations whose Until is after the clock, and drops each
// one as the clock reaches its Until; one published with Until not after the clock is delivered
// to subscribers but never listed.
func testRevocations(e *env) {
	rec, _ := e.subscribe()
	e.wantRevocations()
	now := e.clock.Now()
	s := e.session(policyA, alice) // expires in 1h
	e.createSession(key("s"), s)
	if err := e.s.DeleteSession(e.ctx, key("s")); err != nil {
		e.Fatalf("DeleteSession: %v", err)
	}
	if err := e.s.RevokeFamily(e.ctx, policyA, "fam", now.Add(2*time.Hour)); err != nil {
		e.Fatalf("RevokeFamily: %v", err)
	}
	if _, err := e.s.RevokeUser(e.ctx, policyB, bob, now, now.Add(3*time.Hour)); err != nil {
		e.Fatalf("RevokeUser: %v", err)
	}
	if _, err := e.s.RevokeUser(e.ctx, policyB, alice, now, now); err != nil {
		e.Fatalf("RevokeUser: %v", err)
	}
	session := store.Revocation{Kind: store.RevokeSession, Policy: policyA, Value: hexKey(key("s")), At: now, Until: s.ExpiresAt}
	family := store.Revocation{Kind: store.RevokeFamily, Policy: policyA, Value: "fam", At: now, Until: now.Add(2 * time.Hour)}
	user := store.Revocation{Kind: store.RevokeUser, Policy: policyB, Value: bob, At: now, Until: now.Add(3 * time.Hour)}
	spent := store.Revocation{Kind: store.RevokeUser, Policy: policyB, Value: alice, At: now, Until: now}
	rec.wait(e, session, family, user, spent)
	e.wantRevocations(session, family, user)

	e.clock.Advance(time.Hour - time.Second)
	e.wantRevocations(session, family, user)
	e.clock.Advance(time.Second)
	e.wantRevocations(family, user)
	e.clock.Advance(time.Hour)
	e.wantRevocations(user)
	e.clock.Advance(2 * time.Hour)
	e.wantRevocations()
}

// testSubscribe: every subscriber receives each revocation published after it subscribed, until
// it cancels; cancel may be called twice; other subscribers keep receiving.
func testSubscribe(e *env) {
	now := e.clock.Now()
	revoke := func(family string) store.Revocation {
		e.Helper()
		if err := e.s.RevokeFamily(e.ctx, policyA, family, now.Add(time.Hour)); err != nil {
			e.Fatalf("RevokeFamily: %v", err)
		}
		return store.Revocation{Kind: store.RevokeFamily, Policy: policyA, Value: family, At: now, Until: now.Add(time.Hour)}
	}
	a, cancelA := e.subscribe()
	r1 := revoke("f1")
	b, cancelB := e.subscribe()
	r2 := revoke("f2")
	a.wait(e, r1, r2)
	b.wait(e, r2)

	cancelA()
	cancelA()
	r3 := revoke("f3")
	b.wait(e, r2, r3)
	// b has received r3, so a would have too by now: a must still hold r1 and r2 only.
	if got := a.received(); len(got) != 2 {
		e.Fatalf("cancelled subscriber received\n%s\nwant r1 and r2 only", fmtRevocations(got))
	}

	cancelB()
	c, _ := e.subscribe()
	r4 := revoke("f4")
	c.wait(e, r4)
	if got := b.received(); len(got) != 2 {
		e.Fatalf("cancelled subscriber received\n%s\nwant r2 and r3 only", fmtRevocations(got))
	}
}

// testConcurrentRotate: 50 goroutines rotating the same token to the same successor at the same
// time get exactly one Rotated and 49 Replayed, never Reused: the family lives on.
func testConcurrentRotate(e *env) {
	const n = 50
	e.createToken(key("rt1"), e.token(policyA, alice, "fam"))
	next := e.token(policyA, alice, "fam")
	now := e.clock.Now()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		outcomes = map[store.RotateOutcome]int{}
		errs     []error
		ready    = make(chan struct{})
	)
	for range n {
		wg.Go(func() {
			<-ready
			o, _, err := e.s.RotateRefreshToken(e.ctx, key("rt1"), key("rt2"), next, now, 10*time.Second)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			outcomes[o]++
		})
	}
	close(ready)
	wg.Wait()
	if len(errs) > 0 {
		e.Fatalf("%d of %d rotations failed, first: %v", len(errs), n, errs[0])
	}
	if outcomes[store.Rotated] != 1 || outcomes[store.Replayed] != n-1 || outcomes[store.Reused] != 0 {
		e.Fatalf("outcomes: %d Rotated, %d Replayed, %d Reused; want 1, %d, 0",
			outcomes[store.Rotated], outcomes[store.Replayed], outcomes[store.Reused], n-1)
	}
	e.wantToken(key("rt2"), next)
	e.rotate(key("rt2"), key("rt3"), e.token(policyA, alice, "fam"), now, 10*time.Second, store.Rotated)
}

// testConcurrentExtend: 50 goroutines extending one session to different times lose no update:
// each gets back an expiry at least its own, and the session ends with the latest expiry and
// LastSeenAt asked for.
func testConcurrentExtend(e *env) {
	const n = 50
	s := e.session(policyA, alice)
	e.createSession(key("s"), s)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fails []string
		ready = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-ready
			// Requests up to 1h + 50min: all under MaxExpiresAt (24h).
			exp := s.ExpiresAt.Add(time.Duration(i+1) * time.Minute)
			seen := s.LastSeenAt.Add(time.Duration(i+1) * time.Second)
			got, err := e.s.ExtendSession(e.ctx, key("s"), exp, seen)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				fails = append(fails, err.Error())
			case got.ExpiresAt.Before(exp) || got.LastSeenAt.Before(seen):
				fails = append(fails, fmt.Sprintf("ExtendSession(%v, %v) returned %s", exp, seen, fmtSession(got)))
			}
		})
	}
	close(ready)
	wg.Wait()
	if len(fails) > 0 {
		e.Fatalf("%d of %d extensions failed, first: %s", len(fails), n, fails[0])
	}
	want := s
	want.ExpiresAt = s.ExpiresAt.Add(n * time.Minute)
	want.LastSeenAt = s.LastSeenAt.Add(n * time.Second)
	e.wantSession(key("s"), want)
}

// testConcurrentCreate: of 50 goroutines creating a session at the same key, exactly one succeeds,
// and the stored session is the winner's.
func testConcurrentCreate(e *env) {
	const n = 50
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		winner = -1
		wins   int
		ready  = make(chan struct{})
	)
	sessions := make([]store.Session, n)
	for i := range sessions {
		sessions[i] = e.session(policyA, fmt.Sprintf("user-%d", i))
	}
	for i := range n {
		wg.Go(func() {
			<-ready
			if err := e.s.CreateSession(e.ctx, key("s"), sessions[i]); err == nil {
				mu.Lock()
				defer mu.Unlock()
				winner = i
				wins++
			}
		})
	}
	close(ready)
	wg.Wait()
	if wins != 1 {
		e.Fatalf("%d of %d concurrent CreateSession calls succeeded, want 1", wins, n)
	}
	e.wantSession(key("s"), sessions[winner])
}

// testCancelledContext: every method given a cancelled context returns an error wrapping
// context.Canceled and changes nothing.
func testCancelledContext(e *env) {
	s := e.session(policyA, alice)
	e.createSession(key("s"), s)
	tok := e.token(policyA, alice, "fam")
	e.createToken(key("rt"), tok)
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	now := e.clock.Now()

	check := func(method string, err error) {
		e.Helper()
		if !errors.Is(err, context.Canceled) {
			e.Errorf("%s with a cancelled context: %v, want an error wrapping context.Canceled", method, err)
		}
	}
	check("CreateSession", e.s.CreateSession(ctx, key("new"), e.session(policyA, alice)))
	_, err := e.s.GetSession(ctx, key("s"))
	check("GetSession", err)
	_, err = e.s.ExtendSession(ctx, key("s"), now.Add(2*time.Hour), now.Add(time.Minute))
	check("ExtendSession", err)
	check("DeleteSession", e.s.DeleteSession(ctx, key("s")))
	_, err = e.s.RevokeUser(ctx, policyA, alice, now, now.Add(time.Hour))
	check("RevokeUser", err)
	check("CreateRefreshToken", e.s.CreateRefreshToken(ctx, key("new-rt"), e.token(policyA, alice, "fam2")))
	_, _, err = e.s.RotateRefreshToken(ctx, key("rt"), key("rt2"), e.token(policyA, alice, "fam"), now, time.Minute)
	check("RotateRefreshToken", err)
	_, err = e.s.GetRefreshToken(ctx, key("rt"))
	check("GetRefreshToken", err)
	check("RevokeFamily", e.s.RevokeFamily(ctx, policyA, "fam", now.Add(time.Hour)))
	_, err = e.s.Revocations(ctx)
	check("Revocations", err)

	e.wantSession(key("s"), s)
	e.wantNoSession(key("new"))
	e.wantToken(key("rt"), tok)
	e.wantNoToken(key("rt2"))
	e.wantNoToken(key("new-rt"))
	e.wantRevocations()
}

func sameSession(a, b store.Session) bool {
	return a.Policy == b.Policy && a.UserID == b.UserID && a.Email == b.Email &&
		a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt) &&
		a.MaxExpiresAt.Equal(b.MaxExpiresAt) && a.LastSeenAt.Equal(b.LastSeenAt)
}

func sameToken(a, b store.RefreshToken) bool {
	return a.Policy == b.Policy && a.UserID == b.UserID && a.Email == b.Email && a.Family == b.Family &&
		a.IssuedAt.Equal(b.IssuedAt) && a.ExpiresAt.Equal(b.ExpiresAt) &&
		a.UsedAt.Equal(b.UsedAt) && a.UsedAt.IsZero() == b.UsedAt.IsZero() && a.Successor == b.Successor
}

func sameRevocation(a, b store.Revocation) bool {
	return a.Kind == b.Kind && a.Policy == b.Policy && a.Value == b.Value && a.At.Equal(b.At) && a.Until.Equal(b.Until)
}

// sameRevocationSet reports whether got and want hold the same revocations, in any order.
func sameRevocationSet(got, want []store.Revocation) bool {
	if len(got) != len(want) {
		return false
	}
	used := make([]bool, len(got))
next:
	for _, w := range want {
		for i, g := range got {
			if !used[i] && sameRevocation(g, w) {
				used[i] = true
				continue next
			}
		}
		return false
	}
	return true
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "zero"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func fmtSession(s store.Session) string {
	return fmt.Sprintf("{Policy:%q UserID:%q Email:%q CreatedAt:%s ExpiresAt:%s MaxExpiresAt:%s LastSeenAt:%s}",
		s.Policy, s.UserID, s.Email, fmtTime(s.CreatedAt), fmtTime(s.ExpiresAt), fmtTime(s.MaxExpiresAt), fmtTime(s.LastSeenAt))
}

func fmtToken(t store.RefreshToken) string {
	succ := "none"
	if t.Successor != (store.Key{}) {
		succ = hexKey(t.Successor)[:12]
	}
	return fmt.Sprintf("{Policy:%q UserID:%q Family:%q IssuedAt:%s ExpiresAt:%s UsedAt:%s Successor:%s}",
		t.Policy, t.UserID, t.Family, fmtTime(t.IssuedAt), fmtTime(t.ExpiresAt), fmtTime(t.UsedAt), succ)
}

func fmtRevocations(rs []store.Revocation) string {
	if len(rs) == 0 {
		return "  (none)"
	}
	var out string
	for i, r := range rs {
		if i > 0 {
			out += "\n"
		}
		out += fmt.Sprintf("  {%s %q %q At:%s Until:%s}", r.Kind, r.Policy, r.Value, fmtTime(r.At), fmtTime(r.Until))
	}
	return out
}

func outcome(o store.RotateOutcome) string {
	switch o {
	case store.Rotated:
		return "Rotated"
	case store.Replayed:
		return "Replayed"
	case store.Reused:
		return "Reused"
	}
	return fmt.Sprintf("RotateOutcome(%d)", int(o))
}
