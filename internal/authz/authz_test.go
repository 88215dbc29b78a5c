package authz_test

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/session"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/token"
)

// clock is a fake clock shared by the store, the session manager and the token verifier.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// world is an engine over the fixture policy with a memory store and a fake clock.
type world struct {
	t        *testing.T
	clock    *clock
	store    *store.Memory
	sessions *session.Manager
	engine   *authz.Engine
	policy   *policy.Policy
	denylist *authz.Denylist
}

func newWorld(t *testing.T, mutate func(p *authgatev1.AuthPolicy)) *world {
	t.Helper()
	c := &clock{now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	ap := fixture.AuthPolicy()
	if mutate != nil {
		mutate(ap)
	}
	p, err := policy.Compile(ap, fixture.Secrets())
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory(store.WithClock(c.Now))
	t.Cleanup(func() { st.Close() })
	deny, err := authz.NewDenylist(context.Background(), st, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(deny.Close)
	verifier := token.NewVerifier(token.WithClock(c.Now), token.WithDenylist(deny))
	t.Cleanup(verifier.Close)
	snaps := &authz.AtomicSnapshot{}
	snaps.Store(policy.NewSnapshot([]*policy.Policy{p}))
	sessions := session.NewManager(st, c.Now)
	return &world{t: t, clock: c, store: st, sessions: sessions, engine: authz.NewEngine(snaps, sessions, verifier), policy: p, denylist: deny}
}

func (w *world) user(email string) policy.User {
	u, ok := w.policy.Login().User(email)
	if !ok {
		w.t.Fatalf("no user %s", email)
	}
	return u
}

// login starts a session and returns its ID.
func (w *world) login(email string) string {
	id, _, err := w.sessions.Create(context.Background(), w.policy, w.user(email))
	if err != nil {
		w.t.Fatal(err)
	}
	return id
}

// token issues an access token of a new family.
func (w *world) token(email, sid string) string {
	raw, _, err := token.Issue(w.policy, w.user(email), sid, w.clock.Now())
	if err != nil {
		w.t.Fatal(err)
	}
	return raw
}

func (w *world) check(r authz.Request) authz.Decision {
	if r.Method == "" {
		r.Method = "GET"
	}
	if r.Scheme == "" {
		r.Scheme = "https"
	}
	if r.Host == "" {
		r.Host = "shop.example.com"
	}
	r.Protocol = authz.ProtocolNginx
	return w.engine.Check(context.Background(), &r)
}

func header(d authz.Decision, name string) (string, bool) {
	for _, h := range d.Headers {
		if h.Name == name {
			return h.Value, true
		}
	}
	return "", false
}

func TestModes(t *testing.T) {
	w := newWorld(t, nil)
	admin := w.login("admin@example.com")
	viewer := w.login("viewer@example.com")
	adminToken := w.token("admin@example.com", "fam-admin")
	viewerToken := w.token("viewer@example.com", "fam-viewer")

	cases := map[string]struct {
		req     authz.Request
		outcome authz.Outcome
		reason  string
		user    string
	}{
		"public prefix":                  {authz.Request{Path: "/static/app.css"}, authz.Allow, "public", ""},
		"public exact path":              {authz.Request{Path: "/healthz"}, authz.Allow, "public", ""},
		"session: none":                  {authz.Request{Path: "/orders", Accept: "text/html"}, authz.Unauthenticated, "no_credentials", ""},
		"session: valid":                 {authz.Request{Path: "/orders", Cookie: "shop_session=" + admin}, authz.Allow, "session", "admin@example.com"},
		"session: cookie among others":   {authz.Request{Path: "/", Cookie: "a=b; shop_session=" + viewer + "; c=d"}, authz.Allow, "session", "viewer@example.com"},
		"session: unknown id":            {authz.Request{Path: "/", Cookie: "shop_session=" + strings.Repeat("A", 43)}, authz.Unauthenticated, "no_session", ""},
		"session: junk":                  {authz.Request{Path: "/", Cookie: "shop_session=<script>"}, authz.Unauthenticated, "no_session", ""},
		"session: bearer is not enough":  {authz.Request{Path: "/", Authorization: "Bearer " + adminToken}, authz.Unauthenticated, "no_credentials", ""},
		"jwt: valid":                     {authz.Request{Path: "/api/orders", Authorization: "Bearer " + adminToken}, authz.Allow, "jwt", "admin@example.com"},
		"jwt: scheme case":               {authz.Request{Path: "/api/orders", Authorization: "bearer " + adminToken}, authz.Allow, "jwt", "admin@example.com"},
		"jwt: missing role":              {authz.Request{Path: "/api/orders", Authorization: "Bearer " + viewerToken}, authz.Forbidden, "missing_role", "viewer@example.com"},
		"jwt: no token":                  {authz.Request{Path: "/api/orders"}, authz.Unauthenticated, "no_credentials", ""},
		"jwt: garbage":                   {authz.Request{Path: "/api/orders", Authorization: "Bearer abc"}, authz.Unauthenticated, "token_malformed", ""},
		"jwt: session cookie not enough": {authz.Request{Path: "/api/orders", Cookie: "shop_session=" + admin}, authz.Unauthenticated, "no_credentials", ""},
		"jwt: method outside the rule":   {authz.Request{Path: "/api/orders", Method: "DELETE", Cookie: "shop_session=" + admin}, authz.Allow, "session", "admin@example.com"},
		"normalized onto a strict rule":  {authz.Request{Path: "/static/%2e%2e/api/orders", Cookie: "shop_session=" + admin}, authz.Unauthenticated, "no_credentials", ""},
		"encoded slash refused":          {authz.Request{Path: "/static%2F..%2Fapi"}, authz.BadRequest, "bad_path", ""},
		"bad host":                       {authz.Request{Host: "a b", Path: "/"}, authz.BadRequest, "bad_host", ""},
		"unknown host":                   {authz.Request{Host: "other.example.net", Path: "/"}, authz.Forbidden, "no_rule", ""},
		"unknown policy":                 {authz.Request{Policy: policy.Ref{Namespace: "x", Name: "y"}, Path: "/"}, authz.BadRequest, "unknown_policy", ""},
		"named policy, any host":         {authz.Request{Policy: policy.Ref{Namespace: "shop", Name: "shop"}, Host: "elsewhere.test", Path: "/static/x"}, authz.Allow, "public", ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d := w.check(tc.req)
			if d.Outcome != tc.outcome || d.Reason != tc.reason {
				t.Fatalf("decision %s/%s (%s), want %s/%s", d.Outcome, d.Reason, d.Detail, tc.outcome, tc.reason)
			}
			if tc.user == "" {
				if len(d.Headers) != 0 {
					t.Errorf("identity headers on an anonymous decision: %v", d.Headers)
				}
				if d.Policy != nil && len(d.Remove) != 3 {
					t.Errorf("Remove = %v, want every identity header of the policy", d.Remove)
				}
				return
			}
			if d.Identity == nil || d.Identity.Email != tc.user {
				t.Fatalf("identity %+v, want %s", d.Identity, tc.user)
			}
			if d.Outcome == authz.Allow {
				if v, _ := header(d, "X-User-Email"); v != tc.user {
					t.Errorf("X-User-Email = %q", v)
				}
				if v, _ := header(d, "X-User-Id"); v != tc.user {
					t.Errorf("X-User-Id = %q (the id defaults to the email)", v)
				}
				if len(d.Headers)+len(d.Remove) != 3 {
					t.Errorf("headers %v + removed %v: want each identity header once", d.Headers, d.Remove)
				}
			}
		})
	}
}

func TestRolesComeFromTheCurrentDirectory(t *testing.T) {
	w := newWorld(t, func(p *authgatev1.AuthPolicy) {
		p.Spec.Rules[3].RequireRoles = []authgatev1.Role{"editor"}
	})
	id := w.login("admin@example.com")
	d := w.check(authz.Request{Path: "/", Cookie: "shop_session=" + id})
	if d.Outcome != authz.Allow {
		t.Fatalf("admin (an editor) refused: %s", d.Reason)
	}
	if v, _ := header(d, "X-User-Role"); v != "admin,editor" {
		t.Errorf("X-User-Role = %q, want admin,editor", v)
	}
	viewer := w.login("viewer@example.com")
	if d := w.check(authz.Request{Path: "/", Cookie: "shop_session=" + viewer}); d.Outcome != authz.Forbidden || d.Reason != "missing_role" {
		t.Fatalf("viewer on an editor rule: %s/%s", d.Outcome, d.Reason)
	}
}

func TestLoginRedirectForBrowsers(t *testing.T) {
	w := newWorld(t, nil)
	d := w.check(authz.Request{Path: "/orders/7", Query: "tab=items&x=%20", Accept: "text/html,application/xhtml+xml"})
	if !d.Browser || d.Outcome != authz.Unauthenticated {
		t.Fatalf("a browser without a session: %+v", d)
	}
	u, err := url.Parse(d.LoginURL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != "auth.example.com" || u.Path != "/auth/login" || u.Query().Get("policy") != "shop/shop" ||
		u.Query().Get("rd") != "https://shop.example.com/orders/7?tab=items&x=%20" {
		t.Errorf("login URL %s", d.LoginURL)
	}
	api := w.check(authz.Request{Path: "/orders/7", Accept: "application/json"})
	if api.Browser || api.LoginURL != "" || api.Scheme != "Bearer" {
		t.Errorf("an API client got a login redirect: %+v", api)
	}
	jwtRule := w.check(authz.Request{Path: "/api/x", Accept: "text/html"})
	if jwtRule.Browser {
		t.Error("a JWT-only rule sent a browser to the login page")
	}
}

func TestSessionOfAnotherPolicyIsRefused(t *testing.T) {
	w := newWorld(t, nil)
	other := newWorld(t, func(p *authgatev1.AuthPolicy) { p.Name = "other" })
	// Both policies use the same cookie name; a session of one proves nothing to the other.
	id, _, err := w.sessions.Create(context.Background(), other.policy, other.user("admin@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if d := w.check(authz.Request{Path: "/", Cookie: "shop_session=" + id}); d.Outcome != authz.Unauthenticated {
		t.Fatalf("another policy's session: %s", d.Outcome)
	}
}

func TestSlidingExpiry(t *testing.T) {
	// ttl 168h, refreshThreshold 24h, maxLifetime 720h; idle timeout off.
	w := newWorld(t, func(p *authgatev1.AuthPolicy) { p.Spec.Session.IdleTimeout = "" })
	id := w.login("admin@example.com")
	check := func() authz.Decision { return w.check(authz.Request{Path: "/", Cookie: "shop_session=" + id}) }
	expiry := func() time.Time {
		s, err := w.store.GetSession(context.Background(), store.KeyOf(id))
		if err != nil {
			t.Fatal(err)
		}
		return s.ExpiresAt
	}
	start := w.clock.Now()

	// Exactly the threshold left: no extension (it extends when LESS remains).
	w.clock.Advance(144 * time.Hour)
	if d := check(); d.Outcome != authz.Allow || d.SetCookie != "" {
		t.Fatalf("at the threshold: %s, cookie %q", d.Outcome, d.SetCookie)
	}
	if !expiry().Equal(start.Add(168 * time.Hour)) {
		t.Fatalf("expiry moved at the threshold: %s", expiry())
	}
	// One second less than the threshold left: extended to ttl from now, cookie refreshed.
	w.clock.Advance(time.Second)
	d := check()
	want := w.clock.Now().Add(168 * time.Hour)
	if d.Outcome != authz.Allow || !expiry().Equal(want) {
		t.Fatalf("below the threshold: %s, expiry %s, want %s", d.Outcome, expiry(), want)
	}
	if !strings.Contains(d.SetCookie, "shop_session="+id) || !strings.Contains(d.SetCookie, "HttpOnly") ||
		!strings.Contains(d.SetCookie, "Secure") || !strings.Contains(d.SetCookie, "SameSite=Lax") || !strings.Contains(d.SetCookie, "Domain=example.com") {
		t.Errorf("refreshed cookie %q", d.SetCookie)
	}
	// The next check does not extend again.
	if d := check(); d.SetCookie != "" {
		t.Errorf("a second check extended again: %q", d.SetCookie)
	}
	// Keep sliding: never past maxLifetime (720h from login).
	for i := 0; w.clock.Now().Add(145 * time.Hour).Before(start.Add(720 * time.Hour)); i++ {
		w.clock.Advance(145 * time.Hour)
		if d := check(); d.Outcome != authz.Allow {
			t.Fatalf("slide %d: %s/%s at %s", i, d.Outcome, d.Reason, w.clock.Now().Sub(start))
		}
		if expiry().After(start.Add(720 * time.Hour)) {
			t.Fatalf("expiry %s is past the cap", expiry().Sub(start))
		}
	}
	w.clock.Advance(720*time.Hour - w.clock.Now().Sub(start))
	if d := check(); d.Outcome != authz.Unauthenticated {
		t.Fatalf("at maxLifetime: %s", d.Outcome)
	}
}

func TestIdleTimeout(t *testing.T) {
	w := newWorld(t, nil) // idleTimeout 2h
	id := w.login("admin@example.com")
	check := func() authz.Decision { return w.check(authz.Request{Path: "/", Cookie: "shop_session=" + id}) }
	for i := 0; i < 5; i++ {
		w.clock.Advance(90 * time.Minute)
		if d := check(); d.Outcome != authz.Allow {
			t.Fatalf("active session %d ended: %s", i, d.Reason)
		}
	}
	w.clock.Advance(2*time.Hour + time.Second)
	d := check()
	if d.Outcome != authz.Unauthenticated || !strings.Contains(d.SetCookie, "Max-Age=0") {
		t.Fatalf("idle session: %s, cookie %q (want a clearing cookie)", d.Outcome, d.SetCookie)
	}
	if _, err := w.store.GetSession(context.Background(), store.KeyOf(id)); err == nil {
		t.Error("the idle session is still stored")
	}
}

func TestLogoutAndRevocation(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	id := w.login("admin@example.com")
	if _, err := w.sessions.Delete(ctx, w.policy, id); err != nil {
		t.Fatal(err)
	}
	if d := w.check(authz.Request{Path: "/", Cookie: "shop_session=" + id}); d.Outcome != authz.Unauthenticated {
		t.Fatalf("after logout: %s", d.Outcome)
	}

	tok := w.token("admin@example.com", "family-1")
	if d := w.check(authz.Request{Path: "/api/x", Authorization: "Bearer " + tok}); d.Outcome != authz.Allow {
		t.Fatalf("fresh token: %s/%s", d.Outcome, d.Reason)
	}
	if err := w.store.RevokeFamily(ctx, "shop/shop", "family-1", w.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if d := w.check(authz.Request{Path: "/api/x", Authorization: "Bearer " + tok}); d.Outcome != authz.Unauthenticated || d.Reason != "token_revoked" {
		t.Fatalf("revoked family: %s/%s", d.Outcome, d.Reason)
	}

	// Log out everywhere: every session and every token issued before it.
	s1, s2 := w.login("admin@example.com"), w.login("admin@example.com")
	before := w.token("admin@example.com", "family-2")
	w.clock.Advance(time.Second)
	if _, err := w.store.RevokeUser(ctx, "shop/shop", "admin@example.com", w.clock.Now(), w.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{s1, s2} {
		if d := w.check(authz.Request{Path: "/", Cookie: "shop_session=" + s}); d.Outcome != authz.Unauthenticated {
			t.Errorf("a session survived log-out-everywhere: %s", d.Outcome)
		}
	}
	if d := w.check(authz.Request{Path: "/api/x", Authorization: "Bearer " + before}); d.Outcome != authz.Unauthenticated {
		t.Errorf("a token issued before log-out-everywhere passed: %s", d.Outcome)
	}
	w.clock.Advance(time.Second)
	after := w.token("admin@example.com", "family-3")
	if d := w.check(authz.Request{Path: "/api/x", Authorization: "Bearer " + after}); d.Outcome != authz.Allow {
		t.Errorf("a token issued after log-out-everywhere refused: %s/%s", d.Outcome, d.Reason)
	}
}

func TestEither(t *testing.T) {
	w := newWorld(t, func(p *authgatev1.AuthPolicy) { p.Spec.Rules[3].Mode = authgatev1.ModeEither })
	id := w.login("viewer@example.com")
	tok := w.token("admin@example.com", "f")
	if d := w.check(authz.Request{Path: "/", Cookie: "shop_session=" + id}); d.Outcome != authz.Allow || d.Identity.Source != "session" {
		t.Fatalf("cookie: %s", d.Outcome)
	}
	if d := w.check(authz.Request{Path: "/", Authorization: "Bearer " + tok}); d.Outcome != authz.Allow || d.Identity.Source != "jwt" {
		t.Fatalf("bearer: %s", d.Outcome)
	}
	// Both: the explicit Bearer token decides.
	if d := w.check(authz.Request{Path: "/", Cookie: "shop_session=" + id, Authorization: "Bearer " + tok}); d.Identity == nil || d.Identity.Email != "admin@example.com" {
		t.Fatalf("both: %+v", d.Identity)
	}
}

func TestUserRemovedEndsTheSession(t *testing.T) {
	w := newWorld(t, nil)
	id := w.login("viewer@example.com")
	// Recompile the policy without the viewer, as a Secret edit would.
	secrets := fixture.Secrets()
	users := string(secrets["shop-users"]["users.yaml"])
	users = users[:strings.Index(users, "- email: viewer@example.com")]
	secrets = map[string]map[string][]byte{"shop-users": {"users.yaml": []byte(users)}, "shop-jwt-keys": secrets["shop-jwt-keys"]}
	p, err := policy.Compile(fixture.AuthPolicy(), secrets)
	if err != nil {
		t.Fatal(err)
	}
	snaps := &authz.AtomicSnapshot{}
	snaps.Store(policy.NewSnapshot([]*policy.Policy{p}))
	engine := authz.NewEngine(snaps, w.sessions, token.NewVerifier())
	d := engine.Check(context.Background(), &authz.Request{Method: "GET", Scheme: "https", Host: "shop.example.com", Path: "/", Cookie: "shop_session=" + id})
	if d.Outcome != authz.Unauthenticated {
		t.Fatalf("a removed user's session passed: %s", d.Outcome)
	}
}

func TestNotReady(t *testing.T) {
	engine := authz.NewEngine(&authz.AtomicSnapshot{}, nil, nil)
	if d := engine.Check(context.Background(), &authz.Request{Method: "GET", Host: "a", Path: "/"}); d.Outcome != authz.Error || d.Reason != "not_ready" {
		t.Fatalf("before the first snapshot: %s/%s", d.Outcome, d.Reason)
	}
}

func TestIdentityHeaderValuesCannotSplitHeaders(t *testing.T) {
	secrets := fixture.Secrets()
	users := strings.Replace(string(secrets["shop-users"]["users.yaml"]), "roles: [viewer]", "roles: [viewer]\n  name: \"Viewer\\r\\nX-User-Role: admin\"", 1)
	ap := fixture.AuthPolicy()
	ap.Spec.IdentityHeaders["X-User-Name"] = "name"
	p, err := policy.Compile(ap, map[string]map[string][]byte{"shop-users": {"users.yaml": []byte(users)}, "shop-jwt-keys": secrets["shop-jwt-keys"]})
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory()
	sessions := session.NewManager(st, nil)
	u, _ := p.Login().User("viewer@example.com")
	if !strings.Contains(u.Name, "\r\n") {
		t.Fatalf("the fixture did not produce a hostile name: %q", u.Name)
	}
	id, _, err := sessions.Create(context.Background(), p, u)
	if err != nil {
		t.Fatal(err)
	}
	snaps := &authz.AtomicSnapshot{}
	snaps.Store(policy.NewSnapshot([]*policy.Policy{p}))
	d := authz.NewEngine(snaps, sessions, token.NewVerifier()).Check(context.Background(),
		&authz.Request{Method: "GET", Scheme: "https", Host: "shop.example.com", Path: "/", Cookie: "shop_session=" + id})
	if d.Outcome != authz.Allow {
		t.Fatalf("%s/%s", d.Outcome, d.Reason)
	}
	if v, ok := header(d, "X-User-Name"); ok {
		t.Fatalf("a value with CR LF was sent: %q", v)
	}
	removed := false
	for _, h := range d.Remove {
		removed = removed || h == "X-User-Name"
	}
	if !removed {
		t.Errorf("the unsafe header is neither set nor removed: %v", d.Remove)
	}
}
