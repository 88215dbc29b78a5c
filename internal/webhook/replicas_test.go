package webhook_test

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/store/redistest"
	"github.com/authgate/authgate/internal/testenv"
	"github.com/authgate/authgate/internal/webhook"
)

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

// redisReplica starts a webhook on the samples with the Redis store at redisAddr, sharing keyFile
// with its sibling replicas.
func redisReplica(t *testing.T, redisAddr, keyFile string, extra ...string) replicaClient {
	t.Helper()
	args := append([]string{
		"--manifests", samples(t), "--http-addr", freeAddr(t), "--metrics-addr", freeAddr(t), "--grpc-addr", freeAddr(t), "--shutdown-timeout", "5s",
		"--store", "redis", "--redis-url", "redis://" + redisAddr, "--secret-key-file", keyFile,
		"--login-attempts-per-minute-ip", "100000", "--login-attempts-per-minute-account", "100000",
	}, extra...)
	opts, err := webhook.ParseFlags(args, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	r := startRun(t, opts)
	waitReady(t, r, opts.HTTPAddr)
	return replicaClient{base: "http://" + opts.HTTPAddr, http: &http.Client{Timeout: time.Minute}}
}

func sharedKey(t *testing.T) string {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// eventually polls cond until it holds, failing with what and cond's last state after d.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	testenv.Eventually(t, d, func() string {
		if ok, state := cond(); !ok {
			return what + ": " + state
		}
		return ""
	})
}

// TestReplicasShareRedis runs two webhooks against one real redis-server: what one does, the other
// knows at once.
func TestReplicasShareRedis(t *testing.T) {
	redis := redistest.StartServer(t)
	key := sharedKey(t)
	// No grace window, so that presenting a rotated refresh token again is a reuse at once.
	a := redisReplica(t, redis.Addr, key, "--refresh-grace", "0s")
	b := redisReplica(t, redis.Addr, key, "--refresh-grace", "0s")

	tk, err := a.login("admin@example.com", "admin-demo-password")
	if err != nil {
		t.Fatal(err)
	}
	session := map[string]string{"Cookie": "authgate_session=" + tk.SID}
	bearer := map[string]string{"Authorization": "Bearer " + tk.Access}
	for name, c := range map[string]replicaClient{"A": a, "B": b} {
		if status, err := c.check("/orders", session); err != nil || status != 200 {
			t.Fatalf("a login on A, session checked on %s: %d %v", name, status, err)
		}
		if status, err := c.check("/api/orders", bearer); err != nil || status != 200 {
			t.Fatalf("a login on A, token checked on %s: %d %v", name, status, err)
		}
	}

	// Logout on B denies on A, whose cache held the session.
	if status, err := b.logout(tk.SID, ""); err != nil || status != 200 {
		t.Fatalf("logout on B: %d %v", status, err)
	}
	eventually(t, 3*time.Second, "the session logged out on B denied on A", func() (bool, string) {
		status, err := a.check("/orders", session)
		return status == 401, fmt.Sprint(status, err)
	})

	// A rotated refresh token reused on A revokes the whole login on B.
	tk, err = b.login("editor@example.com", "editor-demo-password")
	if err != nil {
		t.Fatal(err)
	}
	bearer = map[string]string{"Authorization": "Bearer " + tk.Access}
	if status, err := b.check("/api/orders", bearer); err != nil || status != 200 {
		t.Fatalf("fresh token on B: %d %v", status, err)
	}
	status, next, err := a.refresh(tk.Refresh)
	if err != nil || status != 200 {
		t.Fatalf("refresh on A: %d %v", status, err)
	}
	if status, _, err := a.refresh(tk.Refresh); err != nil || status != 401 {
		t.Fatalf("reuse on A: %d %v, want 401", status, err)
	}
	eventually(t, 3*time.Second, "the token of a reused family denied on B", func() (bool, string) {
		status, err := b.check("/api/orders", bearer)
		return status == 401, fmt.Sprint(status, err)
	})
	if status, _, err := b.refresh(next.Refresh); err != nil || status != 401 {
		t.Fatalf("the successor of a reused token on B: %d %v, want 401", status, err)
	}
	nextBearer := map[string]string{"Authorization": "Bearer " + next.Access}
	if status, err := b.check("/api/orders", nextBearer); err != nil || status != 401 {
		t.Fatalf("the access token issued by the rotation, on B: %d %v, want 401", status, err)
	}
}

// TestReplicasStorm runs the storm across two replicas sharing Redis.
func TestReplicasStorm(t *testing.T) {
	redis := redistest.StartServer(t)
	key := sharedKey(t)
	a := redisReplica(t, redis.Addr, key)
	b := redisReplica(t, redis.Addr, key)
	runStorm(t, []replicaClient{a, b})
}

// TestRedisOutage stops Redis under a stream of checks and starts it again: decisions follow each
// policy's onStoreUnavailable, nothing panics, and the webhook recovers by itself.
func TestRedisOutage(t *testing.T) {
	// AOF, so that the sessions survive the restart as docs/redis.md advises.
	redis := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	c := redisReplica(t, redis.Addr, sharedKey(t), "--cache-max-staleness", "300ms", "--redis-timeout", "200ms")

	sessionOf := func(policy, cookie, email, password string) string {
		t.Helper()
		status, h, body, err := c.do("POST", "/auth/login?policy=default/"+policy,
			map[string]string{"Content-Type": "application/json"}, fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
		if err != nil || status != 200 {
			t.Fatalf("login to %s: %d %s %v", policy, status, body, err)
		}
		for _, sc := range h.Values("Set-Cookie") {
			if v, ok := strings.CutPrefix(sc, cookie+"="); ok {
				id, _, _ := strings.Cut(v, ";")
				return cookie + "=" + id
			}
		}
		t.Fatalf("login to %s set no %s", policy, cookie)
		return ""
	}
	check := func(policy, host, cookie string) int {
		status, _, _, err := c.do("GET", "/check/nginx?policy=default/"+policy, map[string]string{
			"X-Original-URL": "https://" + host + "/", "X-Original-Method": "GET", "Cookie": cookie}, "")
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		return status
	}
	// shop says Deny, dashboard says AllowCached.
	shopSeen := sessionOf("shop", "authgate_session", "admin@example.com", "admin-demo-password")
	shopUnseen := sessionOf("shop", "authgate_session", "admin@example.com", "admin-demo-password")
	dashSeen := sessionOf("dashboard", "dashboard_session", "admin@example.com", "admin-demo-password")
	dashUnseen := sessionOf("dashboard", "dashboard_session", "admin@example.com", "admin-demo-password")
	if check("shop", "shop.example.com", shopSeen) != 200 || check("dashboard", "dashboard.example.com", dashSeen) != 200 {
		t.Fatal("sessions refused before the outage")
	}

	redis.Kill()
	// Let the cached records grow older than the staleness limit: from now on every check needs
	// the store.
	time.Sleep(400 * time.Millisecond)
	want := map[string]int{"shop seen": 503, "shop unseen": 503, "dashboard seen": 200, "dashboard unseen": 503}
	for i := 0; i < 20; i++ {
		got := map[string]int{
			"shop seen":        check("shop", "shop.example.com", shopSeen),
			"shop unseen":      check("shop", "shop.example.com", shopUnseen),
			"dashboard seen":   check("dashboard", "dashboard.example.com", dashSeen),
			"dashboard unseen": check("dashboard", "dashboard.example.com", dashUnseen),
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("during the outage (check %d): %v, want %v", i, got, want)
		}
	}
	if status, _, body, _ := c.do("POST", "/auth/login?policy=default/shop", map[string]string{"Content-Type": "application/json"},
		`{"email":"admin@example.com","password":"admin-demo-password"}`); status != 503 || !strings.Contains(body, "unavailable") {
		t.Fatalf("login during the outage: %d %s, want 503", status, body)
	}

	// The login form says so on a page of its own, with 503.
	status, h, page, err := c.do("GET", "/auth/login?policy=default/shop", nil, "")
	if err != nil || status != 200 {
		t.Fatalf("login page during the outage: %d %v", status, err)
	}
	field := csrfField.FindStringSubmatch(page)
	var csrfCookie string
	for _, sc := range h.Values("Set-Cookie") {
		if v, ok := strings.CutPrefix(sc, "authgate_csrf="); ok {
			csrfCookie, _, _ = strings.Cut(v, ";")
		}
	}
	if field == nil || csrfCookie == "" {
		t.Fatalf("login page without its CSRF field or cookie: %v\n%s", h, page)
	}
	form := url.Values{"email": {"admin@example.com"}, "password": {"admin-demo-password"}, "csrf": {field[1]}}
	status, h, page, err = c.do("POST", "/auth/login?policy=default/shop", map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Cookie": "authgate_csrf=" + csrfCookie}, form.Encode())
	if err != nil || status != 503 || !strings.Contains(page, "Sign-in is unavailable right now") || strings.Contains(strings.Join(h.Values("Set-Cookie"), ";"), "authgate_session") {
		t.Fatalf("form login during the outage: %d %v %v\n%s", status, err, h, page)
	}

	redis.Start()
	eventually(t, 10*time.Second, "recovery after Redis came back", func() (bool, string) {
		got := []int{
			check("shop", "shop.example.com", shopSeen), check("shop", "shop.example.com", shopUnseen),
			check("dashboard", "dashboard.example.com", dashSeen), check("dashboard", "dashboard.example.com", dashUnseen),
		}
		return fmt.Sprint(got) == "[200 200 200 200]", fmt.Sprint(got)
	})
}
