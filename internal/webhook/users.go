package webhook

import (
	"context"
	"time"

	"github.com/go-logr/logr"

	"github.com/authgate/authgate/internal/audit"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/store"
)

// revokeRemovedUsers ends, at once and on every replica, what users removed from a policy's users
// Secret or disabled in it still hold. Sessions would fail their next check anyway (they read the
// current directory), but access tokens carry their identity until they expire; RevokeUser deletes
// the sessions and refresh tokens and puts the user's earlier tokens on every replica's denylist.
// Role changes need nothing: sessions read the roles on every check, and tokens carry theirs for at
// most accessTokenTTL. Every replica sees the same change and revokes too, which is harmless (and
// each records it in its audit log).
func revokeRemovedUsers(ctx context.Context, st store.Store, prev, next *policy.Snapshot, now time.Time, log logr.Logger, auditLog audit.Logger) {
	if prev == nil {
		return
	}
	for p := range next.Policies() {
		old, ok := prev.Get(p.Ref())
		if !ok || old.Login() == nil || p.Login() == nil {
			continue
		}
		for u := range old.Login().AllUsers() {
			if u.Disabled {
				continue
			}
			if cur, ok := p.Login().UserByID(u.ID); ok && !cur.Disabled {
				continue
			}
			n, err := st.RevokeUser(ctx, p.Name(), u.ID, now, now.Add(p.LongestLife()))
			if err != nil {
				log.Error(err, "Revoking a removed user's sessions and tokens", "policy", p.Name(), "sub", u.ID)
				continue
			}
			auditLog.Record("User removed or disabled: sessions and tokens revoked", audit.Event{
				Event: audit.EventRevocation, Policy: p.Name(), Subject: u.ID, Email: u.Email,
				Result: "revoked", Reason: "user_removed_or_disabled", Kind: string(store.RevokeUser), Sessions: n,
			})
		}
	}
}
