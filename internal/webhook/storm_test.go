package webhook_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/webhook"
)

// replicaClient drives one webhook over HTTP as ingress-nginx and API clients would.
type replicaClient struct {
	base string
	http *http.Client
}

func (c replicaClient) do(method, path string, header map[string]string, body string) (int, http.Header, string, error) {
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, "", err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}

type tokens struct {
	SID     string
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
}

// login logs a demo user in with JSON under default/shop.
func (c replicaClient) login(email, password string) (tokens, error) {
	status, h, body, err := c.do("POST", "/auth/login?policy=default/shop",
		map[string]string{"Content-Type": "application/json"}, fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
	if err != nil {
		return tokens{}, err
	}
	if status != http.StatusOK {
		return tokens{}, fmt.Errorf("login: %d %s", status, body)
	}
	var t tokens
	if err := json.Unmarshal([]byte(body), &t); err != nil {
		return tokens{}, err
	}
	for _, sc := range h.Values("Set-Cookie") {
		if v, ok := strings.CutPrefix(sc, "authgate_session="); ok {
			t.SID, _, _ = strings.Cut(v, ";")
		}
	}
	if t.SID == "" || t.Access == "" || t.Refresh == "" {
		return tokens{}, fmt.Errorf("login answer without a session or tokens: %v %s", h, body)
	}
	return t, nil
}

// check asks /check/nginx about path, with extra client headers.
func (c replicaClient) check(path string, header map[string]string) (int, error) {
	h := map[string]string{"X-Original-URL": "https://shop.example.com" + path, "X-Original-Method": "GET"}
	for k, v := range header {
		h[k] = v
	}
	status, _, _, err := c.do("GET", "/check/nginx?policy=default/shop", h, "")
	return status, err
}

func (c replicaClient) refresh(rt string) (int, tokens, error) {
	status, _, body, err := c.do("POST", "/auth/refresh", map[string]string{"Content-Type": "application/json"}, fmt.Sprintf(`{"refresh_token":%q}`, rt))
	var t tokens
	if err == nil && status == http.StatusOK {
		err = json.Unmarshal([]byte(body), &t)
	}
	return status, t, err
}

func (c replicaClient) logout(sid, rt string) (int, error) {
	status, _, _, err := c.do("POST", "/auth/logout?policy=default/shop",
		map[string]string{"Content-Type": "application/json", "Cookie": "authgate_session=" + sid}, fmt.Sprintf(`{"refresh_token":%q}`, rt))
	return status, err
}

func stormOptions(t *testing.T) webhook.Options {
	t.Helper()
	opts := options(t, samples(t))
	opts.LoginsPerMinuteIP, opts.LoginsPerMinuteAccount = 100_000, 100_000
	return opts
}

// TestStorm has many clients log in, check, refresh (with concurrent duplicates), and log out at
// once against one webhook. Every answer must be the one its client's own history calls for; run
// under -race it also shows the data plane shares nothing unsafely.
func TestStorm(t *testing.T) {
	opts := stormOptions(t)
	r := startRun(t, opts)
	waitReady(t, r, opts.HTTPAddr)
	c := replicaClient{base: "http://" + opts.HTTPAddr, http: &http.Client{Timeout: time.Minute}}
	runStorm(t, []replicaClient{c})
}

// runStorm runs the storm with clients spread over replicas: client i logs in on one replica and
// acts on the next, so that with several replicas every step crosses them.
func runStorm(t *testing.T, replicas []replicaClient) {
	t.Helper()
	// Each round costs a bcrypt comparison, slow under -race on a busy 2-core machine: enough clients
	// to overlap every step, few enough to stay well inside the timeouts.
	const clients, rounds = 8, 2
	users := [][2]string{{"admin@example.com", "admin-demo-password"}, {"editor@example.com", "editor-demo-password"}}
	var wg sync.WaitGroup
	errs := make(chan error, clients*rounds)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, b := replicas[i%len(replicas)], replicas[(i+1)%len(replicas)]
			u := users[i%len(users)]
			for round := 0; round < rounds; round++ {
				if err := stormRound(a, b, u); err != nil {
					errs <- fmt.Errorf("client %d round %d: %w", i, round, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// within retries f until it succeeds or d has passed, and returns its last error.
func within(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func stormRound(a, b replicaClient, u [2]string) error {
	tk, err := a.login(u[0], u[1])
	if err != nil {
		return err
	}
	expect := func(what string, got int, err error, want int) error {
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if got != want {
			return fmt.Errorf("%s: status %d, want %d", what, got, want)
		}
		return nil
	}
	status, err := b.check("/orders", map[string]string{"Cookie": "authgate_session=" + tk.SID})
	if err := expect("session check", status, err, 200); err != nil {
		return err
	}
	status, err = b.check("/api/orders", map[string]string{"Authorization": "Bearer " + tk.Access})
	if err := expect("bearer check", status, err, 200); err != nil {
		return err
	}
	// Two refreshes of one token at once: both succeed with the same successor.
	var wg sync.WaitGroup
	var s1, s2 int
	var t1, t2 tokens
	var e1, e2 error
	wg.Add(2)
	go func() { defer wg.Done(); s1, t1, e1 = a.refresh(tk.Refresh) }()
	go func() { defer wg.Done(); s2, t2, e2 = b.refresh(tk.Refresh) }()
	wg.Wait()
	if err := expect("refresh", s1, e1, 200); err != nil {
		return err
	}
	if err := expect("duplicate refresh", s2, e2, 200); err != nil {
		return err
	}
	if t1.Refresh != t2.Refresh {
		return fmt.Errorf("concurrent refreshes got different successors")
	}
	status, err = a.logout(tk.SID, t1.Refresh)
	if err := expect("logout", status, err, 200); err != nil {
		return err
	}
	// Another replica learns of the logout through the store's revocation feed: allow it the
	// propagation time (milliseconds; docs/redis.md reports it).
	if err := within(3*time.Second, func() error {
		status, err := b.check("/orders", map[string]string{"Cookie": "authgate_session=" + tk.SID})
		return expect("session check after logout", status, err, 401)
	}); err != nil {
		return err
	}
	if err := within(3*time.Second, func() error {
		status, err := b.check("/api/orders", map[string]string{"Authorization": "Bearer " + t1.Access})
		return expect("bearer check after logout", status, err, 401)
	}); err != nil {
		return err
	}
	status, _, err = b.refresh(t1.Refresh)
	return expect("refresh after logout", status, err, 401)
}
