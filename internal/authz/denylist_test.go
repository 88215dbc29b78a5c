package authz_test

import (
	"context"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/store/storetest"
)

// TestDenylistLen: the denylist reports what it holds (the webhook's authgate_denylist_entries),
// from the store's backlog and its feed, and forgets what has expired.
func TestDenylistLen(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	st := store.NewMemory(store.WithClock(clock.Now))
	t.Cleanup(func() { _ = st.Close() })
	if err := st.RevokeFamily(ctx, "ns/p", "before", clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	d, err := authz.NewDenylist(ctx, st, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	want := func(families, users int) {
		t.Helper()
		if f, u := d.Len(); f != families || u != users {
			t.Errorf("Len = %d families, %d users; want %d, %d", f, u, families, users)
		}
	}
	want(1, 0)
	if err := st.RevokeFamily(ctx, "ns/p", "after", clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RevokeUser(ctx, "ns/p", "u", clock.Now(), clock.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	want(2, 1)
	// Expired entries go at the next collection, which the next revocation runs.
	clock.Advance(90 * time.Minute)
	d.Add(store.Revocation{Kind: store.RevokeFamily, Policy: "ns/p", Value: "later", Until: clock.Now().Add(time.Hour)})
	want(1, 1)
}
