package webhook

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/authgate/authgate/internal/audit"
	"github.com/authgate/authgate/internal/audit/audittest"
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

	logs, root := audittest.New()
	revokeRemovedUsers(ctx, st, policy.NewSnapshot([]*policy.Policy{before}), policy.NewSnapshot([]*policy.Policy{after}), time.Now(), testr.New(t), audit.New(root))

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
	// The revocation is an audit event naming the user, never their session.
	events := logs.Audit(audit.EventRevocation)
	if len(events) != 1 || events[0]["logger"] != "audit" || events[0]["policy"] != "shop/shop" || events[0]["sub"] != viewer.ID ||
		events[0]["kind"] != "user" || events[0]["reason"] != "user_removed_or_disabled" || events[0]["sessions"] != 1.0 {
		t.Errorf("audit events %v, want one revocation of the viewer's sessions and tokens", events)
	}
	if text := logs.Text(); strings.Contains(text, viewerSession) || strings.Contains(text, hexKey(viewerSession)) {
		t.Errorf("the log holds the session ID or its hash:\n%s", text)
	}
	// The first snapshot revokes nothing.
	revokeRemovedUsers(ctx, st, nil, policy.NewSnapshot([]*policy.Policy{after}), time.Now(), testr.New(t), audit.New(root))
	if n := len(logs.Audit("")); n != 1 {
		t.Errorf("%d audit events after the first snapshot, want still 1", n)
	}
}

// hexKey is how a session ID appears in the store and its revocations.
func hexKey(id string) string {
	k := store.KeyOf(id)
	return hex.EncodeToString(k[:])
}
