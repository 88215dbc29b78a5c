// Package authz is the decision core: it takes a normalized Request, finds the policy and rule that
// apply, checks the credentials the rule's mode accepts, and returns a Decision. Every protocol
// adapter (nginx, Traefik, Envoy HTTP and gRPC) builds the same Request and translates the same
// Decision, so the answer to a request never depends on which proxy asked.
//
// The package holds no HTTP or gRPC types and writes no responses. It does not choose status
// codes either: a Decision says what happened (allowed, no credentials, forbidden, malformed request,
// store failure) and the adapters say it in their proxy's terms, as PROTOCOLS.md prescribes.
package authz

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/session"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/token"
)

// Protocol names the proxy convention a request arrived in.
type Protocol string

// The protocols authgate answers.
const (
	ProtocolNginx     Protocol = "nginx"
	ProtocolTraefik   Protocol = "traefik"
	ProtocolEnvoyHTTP Protocol = "envoy-http"
	ProtocolEnvoyGRPC Protocol = "envoy-grpc"
)

// Request is a check request, as every adapter reports it.
type Request struct {
	Protocol Protocol
	// Policy is the policy the proxy named (?policy= or context_extensions); the zero Ref means the
	// policy is found by host and path.
	Policy policy.Ref
	Method string
	// Scheme is "http" or "https", as the client used it.
	Scheme string
	// Host is the Host (or :authority) the client sent, port included if any.
	Host string
	// Path is the raw, percent-encoded path, without the query.
	Path string
	// Query is the raw query, without "?".
	Query string
	// ClientIP is the client's address as the proxy reports it.
	ClientIP string
	// Cookie is the client's Cookie header; several are joined with "; ".
	Cookie string
	// Authorization is the client's Authorization header.
	Authorization string
	// Accept is the client's Accept header, which tells browsers from API clients.
	Accept string
	// RequestID is the proxy's request id, for logs.
	RequestID string
}

// Outcome is what a check concluded.
type Outcome int

const (
	// Allow: the request may pass.
	Allow Outcome = iota
	// Unauthenticated: the rule needs an identity and the request proved none.
	Unauthenticated
	// Forbidden: the identity lacks the roles the rule needs, or no rule matches.
	Forbidden
	// BadRequest: the request itself is malformed (a path that cannot be normalized, an unknown
	// policy named by the proxy): a client or configuration error, never an allow.
	BadRequest
	// Error: the decision could not be made (the session store failed and the policy says Deny).
	// Proxies turn it into their error behaviour; it is never a silent allow.
	Error
)

var outcomeNames = [...]string{"allow", "unauthenticated", "forbidden", "bad_request", "error"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Decision is the answer to a Request.
type Decision struct {
	Outcome Outcome
	// Reason is a stable, short word for logs and metrics ("session", "no_credentials", ...).
	Reason string
	// Detail explains the outcome to an operator; it never holds credentials.
	Detail string
	// Policy and Rule are what applied; nil when none did.
	Policy *policy.Policy
	Rule   *policy.Rule
	// Identity is who the request proved to be; nil for anonymous requests.
	Identity *Identity
	// Headers are the identity headers to send upstream, each exactly once, on Allow.
	Headers []Header
	// Remove are the policy's identity headers the decision does not set: proxies must drop the
	// client's copies of them, so a client can never pose as someone.
	Remove []string
	// SetCookie is at most one Set-Cookie value to send to the client (a slid session's refreshed
	// cookie, or one clearing a dead session cookie).
	SetCookie string
	// Browser is true when an Unauthenticated request comes from a browser that should log in
	// rather than get a 401 (the rule accepts sessions and the client is not an API client).
	Browser bool
	// LoginURL is, for Browser decisions of policies with a login page, the absolute login URL
	// carrying the original URL in "rd".
	LoginURL string
	// Scheme is the authentication scheme for WWW-Authenticate on Unauthenticated ("Bearer").
	Scheme string
}

// Header is an identity header.
type Header struct {
	Name  string
	Value string
}

// Snapshots gives the current policy snapshot; the webhook swaps it atomically on reloads.
type Snapshots interface {
	Load() *policy.Snapshot
}

// AtomicSnapshot is a Snapshots whose value is replaced with one atomic store.
type AtomicSnapshot struct {
	p atomic.Pointer[policy.Snapshot]
}

// Load returns the current snapshot, or nil before the first one.
func (a *AtomicSnapshot) Load() *policy.Snapshot { return a.p.Load() }

// Store publishes a new snapshot; checks that started on the old one finish with it.
func (a *AtomicSnapshot) Store(s *policy.Snapshot) { a.p.Store(s) }

// Engine makes decisions.
type Engine struct {
	snapshots Snapshots
	sessions  *session.Manager
	tokens    *token.Verifier
}

// NewEngine returns an Engine reading policies from snapshots, sessions through sessions and
// verifying tokens with tokens.
func NewEngine(snapshots Snapshots, sessions *session.Manager, tokens *token.Verifier) *Engine {
	return &Engine{snapshots: snapshots, sessions: sessions, tokens: tokens}
}

// Check decides a request.
func (e *Engine) Check(ctx context.Context, r *Request) Decision {
	snap := e.snapshots.Load()
	if snap == nil {
		// Not ready: denied, never guessed. /readyz keeps traffic away until the first snapshot.
		return Decision{Outcome: Error, Reason: "not_ready", Detail: "no policies loaded yet"}
	}
	path, err := policy.NormalizePath(r.Path)
	if err != nil {
		return Decision{Outcome: BadRequest, Reason: "bad_path", Detail: err.Error()}
	}
	host, err := policy.NormalizeHost(r.Host)
	if err != nil {
		return Decision{Outcome: BadRequest, Reason: "bad_host", Detail: err.Error()}
	}
	var p *policy.Policy
	var rule *policy.Rule
	if r.Policy != (policy.Ref{}) {
		var ok bool
		if p, ok = snap.Get(r.Policy); !ok {
			return Decision{Outcome: BadRequest, Reason: "unknown_policy", Detail: "the proxy named policy " + r.Policy.String() + ", which is not loaded (or not Ready)"}
		}
		if rule, ok = p.Match(r.Method, path); !ok {
			return denyAll(p, nil, Forbidden, "no_rule", "no rule of "+p.Name()+" matches "+r.Method+" "+path)
		}
	} else {
		var ok bool
		if p, rule, ok = snap.Route(host, r.Method, path); !ok {
			return Decision{Outcome: Forbidden, Reason: "no_rule", Detail: "no policy rule matches host " + host + " and " + r.Method + " " + path}
		}
	}

	if rule.Mode() == authgatev1.ModePublic {
		return denyAll(p, rule, Allow, "public", "")
	}
	id, d := e.authenticate(ctx, r, p, rule)
	if d != nil {
		return *d
	}
	if !rule.Allows(id.Roles) {
		dec := denyAll(p, rule, Forbidden, "missing_role", "identity "+id.Subject+" holds none of the roles rule "+rule.Name()+" requires")
		dec.Identity = id
		return dec
	}
	dec := Decision{Outcome: Allow, Reason: id.Source, Policy: p, Rule: rule, Identity: id, SetCookie: id.setCookie}
	if id.degraded {
		// Allowed on this replica's cached record while the store is down (AllowCached).
		dec.Reason = "session_cached"
	}
	dec.Headers = make([]Header, 0, p.IdentityHeaderCount())
	for h := range p.IdentityHeaders() {
		if v, ok := id.Claim(h.Claim); ok {
			dec.Headers = append(dec.Headers, Header{Name: h.Name, Value: v})
		} else {
			dec.Remove = append(dec.Remove, h.Name)
		}
	}
	return dec
}

// denyAll is a decision that sets no identity header and so removes them all.
func denyAll(p *policy.Policy, rule *policy.Rule, outcome Outcome, reason, detail string) Decision {
	d := Decision{Outcome: outcome, Reason: reason, Detail: detail, Policy: p, Rule: rule}
	for h := range p.IdentityHeaders() {
		d.Remove = append(d.Remove, h.Name)
	}
	return d
}

// authenticate finds the identity a request proves under the rule's mode. It returns a decision
// instead when the request proves none or the check fails.
func (e *Engine) authenticate(ctx context.Context, r *Request, p *policy.Policy, rule *policy.Rule) (*Identity, *Decision) {
	mode := rule.Mode()
	bearer, hasBearer := BearerToken(r.Authorization)
	var sessionCookie, tokenCookie string
	if s, ok := p.Session(); ok && mode.UsesSession() {
		sessionCookie, _ = cookieValue(r.Cookie, s.CookieName)
	}
	if j := p.JWT(); j != nil && mode.UsesJWT() && j.AccessTokenCookie != "" {
		tokenCookie, _ = cookieValue(r.Cookie, j.AccessTokenCookie)
	}

	// An explicit Bearer token is tried first: it is what an API client means to present.
	if mode.UsesJWT() && hasBearer {
		return e.checkToken(ctx, r, p, rule, bearer)
	}
	if mode.UsesSession() && sessionCookie != "" {
		res, err := e.sessions.Check(ctx, p, sessionCookie)
		switch {
		case err == nil:
			return sessionIdentity(res), nil
		case errors.Is(err, session.ErrNoSession):
			if tokenCookie == "" {
				d := e.unauthenticated(r, p, rule, "no_session", "the session cookie names no live session")
				// Clear the dead cookie so that the browser stops sending it.
				s, _ := p.Session()
				d.SetCookie = session.ClearCookie(s)
				return nil, &d
			}
		case errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded):
			// Whether cached sessions may pass during an outage is decided by the store's cache
			// (onStoreUnavailable: AllowCached); reaching here means there was none.
			d := denyAll(p, rule, Error, "store_unavailable", err.Error())
			return nil, &d
		default:
			d := denyAll(p, rule, Error, "store_error", err.Error())
			return nil, &d
		}
	}
	if mode.UsesJWT() && tokenCookie != "" {
		return e.checkToken(ctx, r, p, rule, tokenCookie)
	}
	d := e.unauthenticated(r, p, rule, "no_credentials", "the request carries no credentials this rule accepts")
	return nil, &d
}

func (e *Engine) checkToken(ctx context.Context, r *Request, p *policy.Policy, rule *policy.Rule, raw string) (*Identity, *Decision) {
	claims, err := e.tokens.Verify(ctx, p, raw)
	if err != nil {
		var te *token.Error
		if errors.As(err, &te) && te.Reason == token.Unavailable {
			d := denyAll(p, rule, Error, "jwks_unavailable", te.Detail)
			return nil, &d
		}
		reason, detail := "invalid_token", err.Error()
		if errors.As(err, &te) {
			reason = "token_" + strings.ToLower(string(te.Reason))
		}
		d := e.unauthenticated(r, p, rule, reason, detail)
		return nil, &d
	}
	return tokenIdentity(claims), nil
}

// unauthenticated builds the decision for a request that proved no identity: a 401 for API
// clients, or for browsers on rules that accept sessions a login (the adapter decides between a
// 401 that nginx's auth-signin turns into a redirect and a 302 of its own).
func (e *Engine) unauthenticated(r *Request, p *policy.Policy, rule *policy.Rule, reason, detail string) Decision {
	d := denyAll(p, rule, Unauthenticated, reason, detail)
	d.Scheme = "Bearer"
	if rule.Mode().UsesSession() && isBrowser(r) {
		d.Browser = true
		if l := p.Login(); l != nil && l.URL != "" {
			d.LoginURL = loginURL(l.URL, p, r)
		}
	}
	return d
}

// isBrowser tells a browser navigation from an API client: an API client sends Authorization or
// asks for JSON.
func isBrowser(r *Request) bool {
	if r.Authorization != "" {
		return false
	}
	accept := strings.ToLower(r.Accept)
	return !strings.Contains(accept, "application/json") || strings.Contains(accept, "text/html")
}

// loginURL is the policy's login page with the policy and the original URL ("rd") in its query.
// The original URL is rebuilt from the request's own scheme, host and raw path: it is the address
// the browser asked for, and the login handler validates it again before redirecting.
func loginURL(login string, p *policy.Policy, r *Request) string {
	u, err := url.Parse(login)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Set("policy", p.Name())
	original := r.Scheme + "://" + r.Host + r.Path
	if r.Query != "" {
		original += "?" + r.Query
	}
	q.Set("rd", original)
	u.RawQuery = q.Encode()
	return u.String()
}

// Identity is who a request proved to be.
type Identity struct {
	// Subject is the stable user id ("sub").
	Subject string
	Email   string
	Name    string
	Roles   []string
	// SessionID is the token's "sid" (the login family) for JWTs; empty for sessions.
	SessionID string
	// Source is "session" or "jwt".
	Source string
	// ExpiresAt is when the credential expires.
	ExpiresAt time.Time

	claims    *token.Claims
	setCookie string
	degraded  bool
}

// Claim returns the identity's value for a claim name as a header value: lists are joined with ",".
func (i *Identity) Claim(name string) (string, bool) { return i.claims.Claim(name) }

func sessionIdentity(res session.Result) *Identity {
	id := &Identity{
		Subject: res.User.ID, Email: res.User.Email, Name: res.User.Name, Roles: res.User.Roles(),
		Source: "session", ExpiresAt: res.Session.ExpiresAt, setCookie: res.SetCookie, degraded: res.Degraded,
	}
	// A session's claims are the user's, read through the same Claim as a token's (which refuses
	// values that could split a header). They live apart from the Identity so that a token's
	// Identity, which points at its cached claims, stays small.
	id.claims = &token.Claims{Subject: id.Subject, Email: id.Email, Name: id.Name, Roles: id.Roles}
	return id
}

func tokenIdentity(c *token.Claims) *Identity {
	return &Identity{
		Subject: c.Subject, Email: c.Email, Name: c.Name, Roles: c.Roles, SessionID: c.SessionID,
		Source: "jwt", ExpiresAt: c.ExpiresAt, claims: c,
	}
}

// BearerToken extracts the token of an "Authorization: Bearer <token>" header (scheme compared
// case-insensitively, as RFC 9110 requires).
func BearerToken(h string) (string, bool) {
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	t := strings.TrimSpace(h[len(prefix):])
	return t, t != ""
}

// cookieValue returns the value of the first cookie called name in a Cookie header. It parses
// nothing else: the header is attacker-controlled and only one cookie matters.
func cookieValue(header, name string) (string, bool) {
	for header != "" {
		var part string
		part, header, _ = strings.Cut(header, ";")
		part = strings.TrimSpace(part)
		k, v, ok := strings.Cut(part, "=")
		if !ok || k != name {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		return v, true
	}
	return "", false
}
