package webhook

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/session"
	"github.com/authgate/authgate/internal/store"
)

func TestRevokeRemovedUsers(t *testing.T) {
	ctx := context.Background()
	before, err := policy.Compile(fixture.AuthPolicy(), fixture.Secrets())
	if err != nil {
		t.Fatal(err)
	}
	// The edited users Secret: the viewer is gone, the admin stays, and a new user arrives.
	secrets := fixture.Secrets()
	users := string(secrets["shop-users"]["users.yaml"])
	users = users[:strings.Index(users, "- email: viewer@example.com")] + strings.Replace(users[:strings.Index(users, "- email: viewer@example.com")], "admin@example.com", "new@example.com", 1)
	after, err := policy.Compile(fixture.AuthPolicy(), map[string]map[string][]byte{
		"shop-users": {"users.yaml": []byte(users)}, "shop-jwt-keys": secrets["shop-jwt-keys"],
	})
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory()
	sessions := session.NewManager(st, nil)
	admin, _ := before.Login().User("admin@example.com")
	viewer, _ := before.Login().User("viewer@example.com")
	adminSession, _, err := sessions.Create(ctx, before, admin)
	if err != nil {
		t.Fatal(err)
	}
	viewerSession, _, err := sessions.Create(ctx, before, viewer)
	if err != nil {
		t.Fatal(err)
	}

	revokeRemovedUsers(ctx, st, policy.NewSnapshot([]*policy.Policy{before}), policy.NewSnapshot([]*policy.Policy{after}), time.Now(), testr.New(t))

	if _, err := st.GetSession(ctx, store.KeyOf(viewerSession)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the removed user's session is still stored: %v", err)
	}
	if _, err := st.GetSession(ctx, store.KeyOf(adminSession)); err != nil {
		t.Errorf("a user who stayed lost their session: %v", err)
	}
	revs, err := st.Revocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != 1 || revs[0].Kind != store.RevokeUser || revs[0].Value != "viewer@example.com" || revs[0].Policy != "shop/shop" {
		t.Fatalf("revocations %+v, want one RevokeUser of the viewer", revs)
	}
	// The first snapshot revokes nothing.
	revokeRemovedUsers(ctx, st, nil, policy.NewSnapshot([]*policy.Policy{after}), time.Now(), testr.New(t))
}
