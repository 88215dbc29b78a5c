package store_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/store/storetest"
)

// observed records what an instrumented store reports.
type observed struct {
	mu        sync.Mutex
	ops       []store.Operation
	errs      map[store.Operation][]error
	published []store.RevocationKind
}

func (o *observed) Observe(op store.Operation, took time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if took < 0 {
		panic("negative duration")
	}
	o.ops = append(o.ops, op)
	if err != nil {
		if o.errs == nil {
			o.errs = map[store.Operation][]error{}
		}
		o.errs[op] = append(o.errs[op], err)
	}
}

func (o *observed) Published(kind store.RevocationKind) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.published = append(o.published, kind)
}

// TestInstrumentedConformance: the decorator changes nothing the Store contract says.
func TestInstrumentedConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock *storetest.Clock) store.Store {
		return store.Instrument(store.NewMemory(store.WithClock(clock.Now)), &observed{})
	})
}

func TestInstrumentReportsEveryOperation(t *testing.T) {
	ctx := context.Background()
	m, clock := newMemory(t)
	o := &observed{}
	st := store.Instrument(m, o)
	now := clock.Now()

	if err := st.CreateSession(ctx, store.KeyOf("s"), session(now, "ns/p", "u", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetSession(ctx, store.KeyOf("s")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetSession(ctx, store.KeyOf("missing")); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := st.ExtendSession(ctx, store.KeyOf("s"), now.Add(2*time.Hour), now); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteSession(ctx, store.KeyOf("s")); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateRefreshToken(ctx, store.KeyOf("r1"), token(now, "ns/p", "u", "f", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetRefreshToken(ctx, store.KeyOf("r1")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.RotateRefreshToken(ctx, store.KeyOf("r1"), store.KeyOf("r2"), token(now, "ns/p", "u", "f", time.Hour), now, time.Second); err != nil {
		t.Fatal(err)
	}
	// Presented again after the grace window: a reuse, which revokes the family.
	later := now.Add(time.Minute)
	if outcome, _, err := st.RotateRefreshToken(ctx, store.KeyOf("r1"), store.KeyOf("r3"), token(later, "ns/p", "u", "f", time.Hour), later, time.Second); err != nil || outcome != store.Reused {
		t.Fatalf("reuse: %v %v", outcome, err)
	}
	if err := st.RevokeFamily(ctx, "ns/p", "g", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RevokeUser(ctx, "ns/p", "u", now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Revocations(ctx); err != nil {
		t.Fatal(err)
	}
	_ = m.Close()
	if _, err := st.GetSession(ctx, store.KeyOf("s")); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("GetSession on a closed store: %v", err)
	}

	want := []store.Operation{
		store.OpCreateSession, store.OpGetSession, store.OpGetSession, store.OpExtendSession, store.OpDeleteSession,
		store.OpCreateRefreshToken, store.OpGetRefreshToken, store.OpRotateRefreshToken, store.OpRotateRefreshToken,
		store.OpRevokeFamily, store.OpRevokeUser, store.OpRevocations, store.OpGetSession,
	}
	if !slices.Equal(o.ops, want) {
		t.Errorf("observed %v\nwant     %v", o.ops, want)
	}
	if got := o.errs[store.OpGetSession]; len(got) != 2 || !errors.Is(got[0], store.ErrNotFound) || !errors.Is(got[1], store.ErrUnavailable) {
		t.Errorf("GetSession errors %v: want the miss and the closed store", got)
	}
	if len(o.errs) != 1 {
		t.Errorf("errors reported for %v; want GetSession only", o.errs)
	}
	// Each operation was observed with its own: every Operation is in Operations.
	for _, op := range want {
		if !slices.Contains(store.Operations, op) {
			t.Errorf("%s is not in store.Operations", op)
		}
	}
	wantPublished := []store.RevocationKind{store.RevokeSession, store.RevokeFamily, store.RevokeFamily, store.RevokeUser}
	if !slices.Equal(o.published, wantPublished) {
		t.Errorf("published %v, want %v", o.published, wantPublished)
	}
}
