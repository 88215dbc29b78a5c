package webhook_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/authgate/authgate/internal/audit/audittest"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/webhook"
)

// startRunLogging is startRun with log as the logger Run finds in its context.
func startRunLogging(t *testing.T, opts webhook.Options, log logr.Logger) *run {
	t.Helper()
	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), log))
	r := &run{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = webhook.Run(ctx, opts)
	}()
	t.Cleanup(func() {
		cancel()
		if err := r.wait(t, opts.ShutdownTimeout+5*time.Second); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

// TestRunMetricsAndAudit drives a webhook through logins, checks, a refresh, a refresh-token reuse
// and a logout, then reads /metrics: every series these moved has moved, by as much as they should.
// The log of the whole run holds the audit events and none of the secrets that went by.
func TestRunMetricsAndAudit(t *testing.T) {
	logs, root := audittest.New()
	opts := options(t, samples(t))
	// Two attempts a minute per account, so that the third is rate-limited; no grace, so that a
	// refresh token presented twice is a reuse at once.
	opts.LoginsPerMinuteAccount, opts.RefreshGrace = 2, 0
	r := startRunLogging(t, opts, root)
	waitReady(t, r, opts.HTTPAddr)
	c := replicaClient{base: "http://" + opts.HTTPAddr, http: client}

	const admin, password = "admin@example.com", "admin-demo-password"
	tk, err := c.login(admin, password)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.login(admin, "wrong-password-x"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("a wrong password: %v, want a 401", err)
	}
	if _, err := c.login(admin, password); err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("a third attempt within the minute: %v, want a 429", err)
	}
	// Sessions: the first check reads the store, the second is answered from the cache (and so is
	// the logout's, which finds out whose session it ends).
	session := map[string]string{"Cookie": "authgate_session=" + tk.SID}
	bearer := map[string]string{"Authorization": "Bearer " + tk.Access}
	for _, step := range []struct {
		path   string
		header map[string]string
	}{{"/orders", session}, {"/orders", session}, {"/api/orders", bearer}, {"/api/orders", bearer}} {
		if status, err := c.check(step.path, step.header); err != nil || status != http.StatusOK {
			t.Fatalf("check %s: %d %v", step.path, status, err)
		}
	}
	status, next, err := c.refresh(tk.Refresh)
	if err != nil || status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, err)
	}
	if status, _, err := c.refresh(tk.Refresh); err != nil || status != http.StatusUnauthorized {
		t.Fatalf("the used refresh token again: %d %v, want 401", status, err)
	}
	if status, err := c.logout(tk.SID, next.Refresh); err != nil || status != http.StatusOK {
		t.Fatalf("logout: %d %v", status, err)
	}

	metricsURL := "http://" + opts.MetricsAddr + "/metrics"
	var body string
	// Revocations reach the feed's subscribers synchronously with the memory store; the wait is
	// for nothing but safety.
	eventually(t, 5*time.Second, "the logout counted as received", func() (bool, string) {
		resp, b, err := get(t, metricsURL, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			return false, fmt.Sprintf("scraping /metrics: %v %v", resp, err)
		}
		body = b
		v := metricSample(body, "authgate_revocations_total", `kind="session"`, `source="channel"`)
		return v == "1", "authgate_revocations_total{kind=session,source=channel} = " + v
	})
	for _, want := range []struct {
		name   string
		labels []string
		value  string // "" means any value above zero
	}{
		{"authgate_logins_total", []string{`policy="default/shop"`, `result="success"`}, "1"},
		{"authgate_logins_total", []string{`policy="default/shop"`, `result="failure"`}, "1"},
		{"authgate_logins_total", []string{`policy="default/shop"`, `result="rate_limited"`}, "1"},
		{"authgate_cache_requests_total", []string{`cache="session"`, `result="miss"`}, "1"},
		{"authgate_cache_requests_total", []string{`cache="session"`, `result="hit"`}, "2"},
		{"authgate_cache_requests_total", []string{`cache="token"`, `result="miss"`}, "1"},
		{"authgate_cache_requests_total", []string{`cache="token"`, `result="hit"`}, "1"},
		{"authgate_refreshes_total", []string{`policy="default/shop"`, `result="success"`}, "1"},
		{"authgate_refreshes_total", []string{`policy="default/shop"`, `result="failure"`}, "1"},
		{"authgate_refresh_reuse_total", []string{`policy="default/shop"`}, "1"},
		{"authgate_logouts_total", []string{`policy="default/shop"`, `everywhere="false"`}, "1"},
		// The reuse revoked the login's family (so the logout found no refresh token left to
		// revoke), and the logout deleted the session.
		{"authgate_revocations_total", []string{`kind="family"`, `source="local"`}, "1"},
		{"authgate_revocations_total", []string{`kind="family"`, `source="channel"`}, "1"},
		{"authgate_revocations_total", []string{`kind="session"`, `source="local"`}, "1"},
		{"authgate_revocations_total", []string{`kind="user"`, `source="local"`}, "0"},
		{"authgate_denylist_entries", []string{`kind="family"`}, "1"},
		{"authgate_denylist_entries", []string{`kind="user"`}, "0"},
		{"authgate_store_operation_duration_seconds_count", []string{`store="memory"`, `operation="create_session"`}, "1"},
		{"authgate_store_operation_duration_seconds_count", []string{`store="memory"`, `operation="get_session"`}, ""},
		{"authgate_store_operation_duration_seconds_count", []string{`store="memory"`, `operation="rotate_refresh_token"`}, "2"},
		{"authgate_store_operation_duration_seconds_count", []string{`store="memory"`, `operation="revocations"`}, "1"},
		{"authgate_store_errors_total", []string{`store="memory"`, `operation="get_session"`}, "0"},
		{"authgate_decisions_total", []string{`policy="default/shop"`, `mode="JWT"`, `outcome="allow"`}, "2"},
		{"authgate_check_duration_seconds_count", []string{`protocol="nginx"`}, "4"},
	} {
		got := metricSample(body, want.name, want.labels...)
		if want.value == "" {
			if n, err := strconv.ParseFloat(got, 64); err != nil || n <= 0 {
				t.Errorf("%s%v = %q, want more than 0", want.name, want.labels, got)
			}
			continue
		}
		if got != want.value {
			t.Errorf("%s%v = %q, want %s", want.name, want.labels, got, want.value)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", grepLines(body, "authgate_"))
	}

	// The audit trail of the run, on the logger named "audit".
	for _, want := range []struct{ event, result string }{
		{"login", "success"}, {"login", "failure"}, {"login", "rate_limited"}, {"refresh_reuse", "family_revoked"}, {"logout", "success"},
	} {
		found := false
		for _, e := range logs.Audit(want.event) {
			if e["result"] == want.result && e["logger"] == "audit" && e["policy"] == "default/shop" && e["sub"] == "admin" {
				found = true
			}
		}
		if !found {
			t.Errorf("no audit entry %s/%s for admin; audit entries: %v", want.event, want.result, logs.Audit(""))
		}
	}
	text := logs.Text()
	for _, secret := range []string{password, "wrong-password-x", tk.SID, tk.Access, tk.Refresh, next.Access, next.Refresh} {
		k := store.KeyOf(secret)
		if strings.Contains(text, secret) || strings.Contains(text, hex.EncodeToString(k[:])) {
			t.Errorf("the log holds a secret (%.10s...) or its hash", secret)
		}
	}
}
