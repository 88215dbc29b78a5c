// Package audit records security events (logins, logouts, refresh-token reuse, revocations) as log
// entries of their own: on a logger named "audit", each marked "audit"=true, so that a log pipeline
// can route them apart from operational logs and keep them longer.
//
// An Event has a fixed set of fields, and none of them may hold a secret: users are named by their
// id (the "sub" claim) and, where it names a real account, their login email; never by a password,
// a token, a cookie, a session ID or the hash of one. The package does not decide what is worth
// recording; the login endpoints and the webhook do.
package audit

import "github.com/go-logr/logr"

// LoggerName is the name of the audit logger, whatever the logger it is made from.
const LoggerName = "audit"

// Event names.
const (
	EventLogin        = "login"
	EventLogout       = "logout"
	EventRefreshReuse = "refresh_reuse"
	EventRevocation   = "revocation"
)

// Event is one security event. Empty fields are left out of the entry.
type Event struct {
	// Event is what happened: EventLogin, EventLogout, EventRefreshReuse or EventRevocation.
	Event string
	// Policy is the policy's "<namespace>/<name>".
	Policy string
	// Subject is the user's id (the "sub" claim).
	Subject string
	// Email is the login name; set only when it names an account of the policy, so that a
	// password typed into the email field by mistake never reaches the log.
	Email string
	// Client is the client's address as the login rate limit sees it.
	Client string
	// Result is how it ended: success, failure, rate_limited, error, or what the event defines.
	Result string
	// Reason says why, in a few words of snake_case.
	Reason string
	// Kind is what a revocation revoked: session, family or user.
	Kind string
	// Everywhere is set on a logout that ended every session and token of the user.
	Everywhere bool
	// Sessions counts the sessions a logout everywhere or a revocation ended.
	Sessions int
}

// Logger writes audit events. Its zero value discards them.
type Logger struct{ log logr.Logger }

// New returns a Logger writing through log, named LoggerName below log's root: call it with the
// process's root logger for the name to be exactly "audit".
func New(log logr.Logger) Logger {
	return Logger{log: log.WithName(LoggerName).WithValues("audit", true)}
}

// Record writes e with msg, a sentence for people reading the log.
func (l Logger) Record(msg string, e Event) {
	if l.log.GetSink() == nil {
		return
	}
	kv := make([]any, 0, 20)
	add := func(k, v string) {
		if v != "" {
			kv = append(kv, k, v)
		}
	}
	add("event", e.Event)
	add("policy", e.Policy)
	add("sub", e.Subject)
	add("email", e.Email)
	add("client", e.Client)
	add("result", e.Result)
	add("reason", e.Reason)
	add("kind", e.Kind)
	if e.Everywhere {
		kv = append(kv, "everywhere", true)
	}
	if e.Sessions > 0 {
		kv = append(kv, "sessions", e.Sessions)
	}
	l.log.Info(msg, kv...)
}
