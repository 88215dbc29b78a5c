package audit_test

import (
	"testing"

	"github.com/go-logr/logr"

	"github.com/authgate/authgate/internal/audit"
	"github.com/authgate/authgate/internal/audit/audittest"
)

func TestRecord(t *testing.T) {
	logs, root := audittest.New()
	a := audit.New(root)
	a.Record("Logged out everywhere", audit.Event{
		Event: audit.EventLogout, Policy: "shop/shop", Subject: "u1", Email: "u1@example.com", Client: "203.0.113.7",
		Result: "success", Everywhere: true, Sessions: 2,
	})
	a.Record("Login failed", audit.Event{Event: audit.EventLogin, Policy: "shop/shop", Result: "failure", Reason: "unknown_user"})
	got := logs.Entries()
	if len(got) != 2 {
		t.Fatalf("%d entries, want 2", len(got))
	}
	want := map[string]any{
		"logger": "audit", "msg": "Logged out everywhere", "audit": true, "event": "logout", "policy": "shop/shop",
		"sub": "u1", "email": "u1@example.com", "client": "203.0.113.7", "result": "success", "everywhere": true, "sessions": 2.0,
		"level": 0.0,
	}
	if len(got[0]) != len(want) {
		t.Errorf("entry %v, want exactly %v", got[0], want)
	}
	for k, v := range want {
		if got[0][k] != v {
			t.Errorf("%s = %v, want %v", k, got[0][k], v)
		}
	}
	// Empty fields are left out.
	for _, k := range []string{"sub", "email", "client", "kind", "everywhere", "sessions"} {
		if _, ok := got[1][k]; ok {
			t.Errorf("an empty %s is logged: %v", k, got[1])
		}
	}
	if got[1]["reason"] != "unknown_user" {
		t.Errorf("entry %v lacks the reason", got[1])
	}
}

// TestNamedFromTheRoot: made from a named logger, the audit logger's name is below it (funcr joins
// names with "/"), which is why the webhook makes it from the root, where it is plain "audit".
func TestNamedFromTheRoot(t *testing.T) {
	logs, root := audittest.New()
	audit.New(root.WithName("login")).Record("x", audit.Event{Event: audit.EventLogin})
	if e := logs.Entries(); len(e) != 1 || e[0]["logger"] != "login/audit" {
		t.Errorf("entries %v", e)
	}
}

func TestZeroLoggerDiscards(t *testing.T) {
	var a audit.Logger
	a.Record("nothing", audit.Event{Event: audit.EventLogin}) // must not panic
	audit.New(logr.Discard()).Record("nothing", audit.Event{Event: audit.EventLogin})
}
