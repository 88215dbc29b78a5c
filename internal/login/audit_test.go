package login_test

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/authgate/authgate/internal/audit"
	"github.com/authgate/authgate/internal/audit/audittest"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/login"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/store/storetest"
)

// countingMetrics records what the service counts, as "<what> <policy> <result>".
type countingMetrics struct {
	mu     sync.Mutex
	counts map[string]int
}

func (m *countingMetrics) add(what, policy, result string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts == nil {
		m.counts = map[string]int{}
	}
	m.counts[what+" "+policy+" "+result]++
}

func (m *countingMetrics) Login(policy string, r login.Result) { m.add("login", policy, string(r)) }
func (m *countingMetrics) Logout(policy string, everywhere bool) {
	m.add("logout", policy, fmt.Sprint(everywhere))
}
func (m *countingMetrics) Refresh(policy string, r login.Result) { m.add("refresh", policy, string(r)) }
func (m *countingMetrics) RefreshReuse(policy string)            { m.add("reuse", policy, "") }

func (m *countingMetrics) get(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[key]
}

// auditEnv is an env whose service writes its logs and audit events to logs and counts into
// metrics.
func auditEnv(t *testing.T, configure func(*login.Config, *storetest.Clock)) (*env, *audittest.Log, *countingMetrics) {
	logs, root := audittest.New()
	metrics := &countingMetrics{}
	e := newEnv(t, func(c *login.Config, clock *storetest.Clock) {
		c.Log = root.WithName("login")
		c.Audit = audit.New(root)
		c.Metrics = metrics
		if configure != nil {
			configure(c, clock)
		}
	})
	return e, logs, metrics
}

// wantEvent fails unless exactly one audit entry of event has fields with these values (and, where
// a value is "", no such field), and returns it.
func wantEvent(t *testing.T, logs *audittest.Log, event string, fields map[string]any) map[string]any {
	t.Helper()
	var matching []map[string]any
	for _, e := range logs.Audit(event) {
		ok := true
		for k, v := range fields {
			got, present := e[k]
			if v == "" && present || v != "" && got != v {
				ok = false
			}
		}
		if ok {
			matching = append(matching, e)
		}
	}
	if len(matching) != 1 {
		t.Fatalf("%d audit entries of %s with %v, want 1; audit entries:\n%v", len(matching), event, fields, logs.Audit(""))
	}
	if e := matching[0]; e["logger"] != audit.LoggerName {
		t.Errorf("audit entry on logger %v, want %q", e["logger"], audit.LoggerName)
	}
	return matching[0]
}

// wantNoSecrets fails if the log holds any of secrets, or the hex of the store key of one.
func wantNoSecrets(t *testing.T, logs *audittest.Log, secrets ...string) {
	t.Helper()
	text := logs.Text()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		k := store.KeyOf(s)
		if strings.Contains(text, s) || strings.Contains(text, hex.EncodeToString(k[:])) {
			t.Errorf("the log holds a secret (%.12s...) or its hash:\n%s", s, text)
		}
	}
}

func TestAuditLogin(t *testing.T) {
	t.Parallel()
	e, logs, metrics := auditEnv(t, nil)

	ok := e.jsonLogin(admin, fixture.Password)
	ok.want(t, http.StatusOK)
	var pair tokenPair
	ok.decode(t, &pair)
	wantEvent(t, logs, audit.EventLogin, map[string]any{
		"result": "success", "policy": shopRef, "sub": e.user(admin).ID, "email": admin, "client": "127.0.0.1", "audit": true,
	})

	e.jsonLogin(admin, "not-the-password").want(t, http.StatusUnauthorized)
	wantEvent(t, logs, audit.EventLogin, map[string]any{"result": "failure", "reason": "wrong_password", "email": admin})

	// An unknown login name may be a password typed into the wrong field: it is not logged.
	const typo = "Correct-Horse-Battery"
	e.jsonLogin(typo, fixture.Password).want(t, http.StatusUnauthorized)
	wantEvent(t, logs, audit.EventLogin, map[string]any{"result": "failure", "reason": "unknown_user", "email": "", "sub": ""})

	// A malformed body is counted, not audited.
	e.do(request{method: "POST", path: "/auth/login?policy=" + shopRef, json: `{"user":"x"}`}).want(t, http.StatusBadRequest)

	for key, want := range map[string]int{
		"login shop/shop success": 1, "login shop/shop failure": 2, "login shop/shop invalid_request": 1,
	} {
		if got := metrics.get(key); got != want {
			t.Errorf("%s counted %d times, want %d (%v)", key, got, want, metrics.counts)
		}
	}
	if n := len(logs.Audit(audit.EventLogin)); n != 3 {
		t.Errorf("%d login audit entries, want 3", n)
	}
	wantNoSecrets(t, logs, fixture.Password, "not-the-password", strings.ToLower(typo), pair.AccessToken, pair.RefreshToken,
		ok.setCookie(sessionCookie).Value)
}

func TestAuditFormLogin(t *testing.T) {
	t.Parallel()
	e, logs, metrics := auditEnv(t, nil)
	pg := e.loginPage()
	r := e.formLogin(pg, admin, fixture.Password, "https://shop.example.com/orders")
	r.want(t, http.StatusSeeOther)
	wantEvent(t, logs, audit.EventLogin, map[string]any{"result": "success", "email": admin})
	// A forged CSRF token is refused and counted as an invalid request.
	forged := pg
	forged.field = "forged"
	e.formLogin(forged, admin, fixture.Password, "").want(t, http.StatusForbidden)
	if got := metrics.get("login shop/shop invalid_request"); got != 1 {
		t.Errorf("forged CSRF counted %d times as invalid_request, want 1", got)
	}
	// A refused return address is logged without the address, which may carry a token.
	e.formLogin(e.loginPage(), admin, fixture.Password, "https://user:hunter2@evil.example.net/?token=s3cr3t").want(t, http.StatusBadRequest)
	if got := metrics.get("login shop/shop invalid_request"); got != 2 {
		t.Errorf("refused return address counted %d times as invalid_request, want 2", got)
	}
	wantNoSecrets(t, logs, fixture.Password, pg.field, pg.csrf.Value, r.setCookie(sessionCookie).Value, "hunter2", "s3cr3t")
}

func TestAuditRateLimitedLogin(t *testing.T) {
	t.Parallel()
	e, logs, metrics := auditEnv(t, func(c *login.Config, clock *storetest.Clock) {
		c.Limiter = login.NewLimiter(login.LimiterConfig{PerIP: rate.Inf, PerAccount: rate.Every(time.Hour), AccountBurst: 1, Clock: clock.Now})
	})
	e.jsonLogin(admin, "guess").want(t, http.StatusUnauthorized)
	e.jsonLogin(admin, fixture.Password).want(t, http.StatusTooManyRequests)
	wantEvent(t, logs, audit.EventLogin, map[string]any{
		"result": "rate_limited", "reason": "too_many_attempts", "email": admin, "client": "127.0.0.1", "policy": shopRef,
	})
	if got := metrics.get("login shop/shop rate_limited"); got != 1 {
		t.Errorf("rate-limited login counted %d times, want 1", got)
	}
	wantNoSecrets(t, logs, fixture.Password, "guess")
}

func TestAuditLoginStoreUnavailable(t *testing.T) {
	t.Parallel()
	e, logs, metrics := auditEnv(t, nil)
	_ = e.store.Close() // every operation now fails as unavailable
	e.jsonLogin(admin, fixture.Password).want(t, http.StatusServiceUnavailable)
	wantEvent(t, logs, audit.EventLogin, map[string]any{"result": "error", "reason": "store_unavailable", "email": admin})
	if got := metrics.get("login shop/shop error"); got != 1 {
		t.Errorf("failed login counted %d times as error, want 1", got)
	}
}

func TestAuditLogout(t *testing.T) {
	t.Parallel()
	e, logs, metrics := auditEnv(t, nil)
	sid := e.newSession(admin)
	e.do(request{method: "POST", path: "/auth/logout?policy=" + shopRef, json: `{}`,
		cookies: []*http.Cookie{{Name: sessionCookie, Value: sid}}}).want(t, http.StatusOK)
	wantEvent(t, logs, audit.EventLogout, map[string]any{"result": "success", "sub": e.user(admin).ID, "everywhere": ""})

	other := e.newSession(admin)
	refresh, access := e.newFamily(admin)
	e.do(request{method: "POST", path: "/auth/logout?policy=" + shopRef, json: mustJSON(map[string]any{"everywhere": true, "refresh_token": refresh}),
		header: map[string]string{"Authorization": "Bearer " + access}}).want(t, http.StatusOK)
	ev := wantEvent(t, logs, audit.EventLogout, map[string]any{"result": "success", "sub": e.user(admin).ID, "everywhere": true})
	if ev["sessions"] != 1.0 {
		t.Errorf("logout everywhere ended %v sessions, want 1 (the other session)", ev["sessions"])
	}
	if e.sessionLive(other) {
		t.Error("the other session survived the logout everywhere")
	}

	// Nothing to end: still a logout, without a user.
	e.do(request{method: "POST", path: "/auth/logout?policy=" + shopRef, json: `{}`}).want(t, http.StatusOK)
	wantEvent(t, logs, audit.EventLogout, map[string]any{"reason": "no_identity", "sub": ""})

	for key, want := range map[string]int{"logout shop/shop false": 2, "logout shop/shop true": 1} {
		if got := metrics.get(key); got != want {
			t.Errorf("%s counted %d times, want %d", key, got, want)
		}
	}
	wantNoSecrets(t, logs, sid, other, refresh, access)
}

func TestAuditRefreshReuse(t *testing.T) {
	t.Parallel()
	e, logs, metrics := auditEnv(t, nil)
	refresh, _ := e.newFamily(admin)
	first := e.refresh(refresh)
	first.want(t, http.StatusOK)
	var pair tokenPair
	first.decode(t, &pair)
	e.clock.Advance(grace + time.Second)
	e.refresh(refresh).want(t, http.StatusUnauthorized)
	wantEvent(t, logs, audit.EventRefreshReuse, map[string]any{
		"result": "family_revoked", "reason": "refresh_token_reused", "sub": e.user(admin).ID, "policy": shopRef, "kind": "family",
	})
	e.refresh("no-such-token").want(t, http.StatusUnauthorized)
	for key, want := range map[string]int{
		"refresh shop/shop success": 1, "refresh shop/shop failure": 1, "reuse shop/shop ": 1, "refresh  failure": 1,
	} {
		if got := metrics.get(key); got != want {
			t.Errorf("%q counted %d times, want %d (%v)", key, got, want, metrics.counts)
		}
	}
	wantNoSecrets(t, logs, refresh, pair.RefreshToken, pair.AccessToken)
}

func TestAuditRevocationOfARemovedUser(t *testing.T) {
	t.Parallel()
	e, logs, _ := auditEnv(t, nil)
	refresh, _ := e.newFamily(viewer)
	e.publish(compileShop(t, func(users []userEntry) []userEntry {
		for i := range users {
			if users[i].Email == viewer {
				users[i].Disabled = true
			}
		}
		return users
	}))
	e.refresh(refresh).want(t, http.StatusUnauthorized)
	wantEvent(t, logs, audit.EventRevocation, map[string]any{
		"kind": "family", "reason": "user_removed_or_disabled", "sub": e.user(viewer).ID, "policy": shopRef,
	})
	wantNoSecrets(t, logs, refresh)
}
