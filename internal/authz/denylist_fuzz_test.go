package authz_test

import (
	"context"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/token"
)

// FuzzDenylistAdd adds arbitrary revocations, as the store's feed delivers them from any replica,
// and checks a token of policy shop/shop against them: a family revocation refuses exactly the
// tokens of that family, a user revocation that user's tokens issued up to its time, each only
// until it lapses, and nothing else refuses anything.
func FuzzDenylistAdd(f *testing.F) {
	f.Add(string(store.RevokeFamily), "shop/shop", "fam", int64(0), int64(60), "fam", "admin", int64(-10))
	f.Add(string(store.RevokeFamily), "shop/shop", "", int64(0), int64(60), "", "admin", int64(-10))
	f.Add(string(store.RevokeFamily), "other/shop", "fam", int64(0), int64(60), "fam", "admin", int64(-10))
	f.Add(string(store.RevokeFamily), "shop/shop", "fam", int64(0), int64(-1), "fam", "admin", int64(-10))
	f.Add(string(store.RevokeUser), "shop/shop", "admin", int64(0), int64(60), "fam", "admin", int64(0))
	f.Add(string(store.RevokeUser), "shop/shop", "admin", int64(0), int64(60), "fam", "admin", int64(1))
	f.Add(string(store.RevokeUser), "shop/shop", "admin", int64(-1<<31), int64(60), "", "admin", int64(-1<<31))
	f.Add(string(store.RevokeSession), "shop/shop", "fam", int64(0), int64(60), "fam", "fam", int64(0))
	f.Add(string(store.SubscriptionLost), "", "", int64(0), int64(0), "", "", int64(0))
	f.Fuzz(func(t *testing.T, kind, pol, value string, at, until int64, sid, sub string, iat int64) {
		now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
		// Within 68 years of now: revocations are of this era.
		sec := func(s int64) time.Time { return now.Add(time.Duration(s%(1<<31)) * time.Second) }
		st := store.NewMemory(store.WithClock(func() time.Time { return now }))
		defer st.Close()
		d, err := authz.NewDenylist(context.Background(), st, func() time.Time { return now })
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		rev := store.Revocation{Kind: store.RevocationKind(kind), Policy: pol, Value: value, At: sec(at), Until: sec(until)}
		d.Add(rev)
		claims := &token.Claims{SessionID: sid, Subject: sub, IssuedAt: sec(iat)}
		live := now.Before(rev.Until) && pol == "shop/shop"
		var want bool
		switch rev.Kind {
		case store.RevokeFamily:
			want = live && sid != "" && sid == value
		case store.RevokeUser:
			want = live && sub == value && !claims.IssuedAt.After(rev.At)
		}
		if got := d.Revoked("shop/shop", claims); got != want {
			t.Fatalf("after %+v, token %+v revoked: %v, want %v", rev, claims, got, want)
		}
	})
}
