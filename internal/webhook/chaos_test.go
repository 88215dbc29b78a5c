package webhook_test

// Chaos under load: each test keeps a stream of requests going against real webhooks on loopback
// while something breaks or changes underneath (Redis killed and restarted, signing keys rotated,
// the policy rewritten, the process told to stop), and judges every single answer of the stream.
// Each test is bounded: its phases end on counts of requests, with deadlines that fail the test.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/session"
	"github.com/authgate/authgate/internal/signingkey"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/store/redistest"
	"github.com/authgate/authgate/internal/webhook"
)

// serverWriteTimeout is the webhook's HTTP servers' WriteTimeout (newServer).
const serverWriteTimeout = 10 * time.Second

const (
	demoEmail    = "admin@example.com"
	demoPassword = "admin-demo-password"
	demoUserID   = "admin"
)

// stream runs workers until stop is called or the test ends.
type stream struct {
	stopped atomic.Bool
	wg      sync.WaitGroup
	once    sync.Once
}

// startStream runs work(i) in n goroutines; each calls running() before every request and returns
// once it reports false. The stream is stopped before the webhooks the test started earlier.
func startStream(t *testing.T, n int, work func(i int, running func() bool)) *stream {
	t.Helper()
	s := &stream{}
	running := func() bool { return !s.stopped.Load() }
	for i := range n {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			work(i, running)
		}()
	}
	t.Cleanup(s.stop)
	return s
}

func (s *stream) stop() {
	s.once.Do(func() {
		s.stopped.Store(true)
		s.wg.Wait()
	})
}

// tally counts outcomes by name, safely from any goroutine.
type tally struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *tally) add(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[key]++
}

func (c *tally) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.n {
		n += v
	}
	return n
}

func (c *tally) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.n))
	for k := range c.n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n    %-48s %6d", k, c.n[k])
	}
	return b.String()
}

// problems collects what went wrong in a stream, keeping the first few messages.
type problems struct {
	mu    sync.Mutex
	count int
	first []string
}

func (p *problems) addf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.count++
	if len(p.first) < 15 {
		p.first = append(p.first, fmt.Sprintf(format, args...))
	}
}

func (p *problems) report(t *testing.T, what string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count > 0 {
		t.Errorf("%d %s; the first:\n  %s", p.count, what, strings.Join(p.first, "\n  "))
	}
}

// keepAliveClient is an HTTP client that keeps connections open, as a proxy does to its upstreams.
func keepAliveClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: time.Minute}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: time.Minute, Transport: tr}
}

// nginxAsk asks /check/nginx about url (under policy, when not empty) with extra client headers.
func nginxAsk(c replicaClient, policy, url string, header map[string]string) (int, http.Header, string, error) {
	h := map[string]string{"X-Original-URL": url, "X-Original-Method": "GET"}
	for k, v := range header {
		h[k] = v
	}
	path := "/check/nginx"
	if policy != "" {
		path += "?policy=" + policy
	}
	return c.do("GET", path, h, "")
}

// loginAs logs the demo admin in to policy with JSON and returns the cookie the answer set as
// "name=value" ("" when none) and the tokens of its body (none for a session-only policy).
func loginAs(c replicaClient, policy, cookie string) (string, tokens, int, string, error) {
	status, h, body, err := c.do("POST", "/auth/login?policy="+policy,
		map[string]string{"Content-Type": "application/json"}, fmt.Sprintf(`{"email":%q,"password":%q}`, demoEmail, demoPassword))
	if err != nil || status != http.StatusOK {
		return "", tokens{}, status, body, err
	}
	var tk tokens
	if strings.Contains(body, "access_token") {
		if err := json.Unmarshal([]byte(body), &tk); err != nil {
			return "", tokens{}, status, body, err
		}
	}
	set := ""
	if cookie != "" {
		for _, sc := range h.Values("Set-Cookie") {
			if v, ok := strings.CutPrefix(sc, cookie+"="); ok {
				id, _, _ := strings.Cut(v, ";")
				set = cookie + "=" + id
			}
		}
		if set == "" {
			return "", tokens{}, status, body, fmt.Errorf("the login to %s set no %s cookie: %v", policy, cookie, h)
		}
	}
	return set, tk, status, body, nil
}

// waitFor polls cond every 5 ms until it returns "", failing the test with its last answer after d.
// It returns how long that took.
func waitFor(t *testing.T, d time.Duration, what string, cond func() string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		msg := cond()
		if msg == "" {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v: %s", what, d, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// writeFileAtomically replaces dir/name in one rename, as the kubelet updates mounted Secrets and
// ConfigMaps: a reader sees the old file or the new one, never a half-written one.
func writeFileAtomically(t *testing.T, dir, name string, content []byte) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// copyDemoUsers puts the demo users Secret of config/samples into dir.
func copyDemoUsers(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile("../../config/samples/secret_demo-users.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.yaml"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// folderReplica runs a webhook in standalone mode on dir with extra flags and returns a client of
// it, with connections kept open.
func folderReplica(t *testing.T, dir string, extra ...string) (replicaClient, *run, webhook.Options) {
	t.Helper()
	args := append([]string{
		"--manifests", dir, "--http-addr", freeAddr(t), "--metrics-addr", "", "--grpc-addr", "", "--shutdown-timeout", "5s",
		"--login-attempts-per-minute-ip", "100000", "--login-attempts-per-minute-account", "100000",
	}, extra...)
	opts, err := webhook.ParseFlags(args, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	r := startRun(t, opts)
	// As waitReady, with room for a start-up on a loaded machine.
	waitFor(t, 30*time.Second, "/readyz", func() string {
		select {
		case <-r.done:
			t.Fatalf("Run returned before it was ready: %v", r.err)
		default:
		}
		resp, _, err := get(t, "http://"+opts.HTTPAddr+"/readyz", nil)
		if err != nil {
			return err.Error()
		}
		if resp.StatusCode != http.StatusOK {
			return resp.Status
		}
		return ""
	})
	return replicaClient{base: "http://" + opts.HTTPAddr, http: keepAliveClient(t)}, r, opts
}

// jwtParts returns the kid of a compact JWS's header and the exp of its payload.
func jwtParts(raw string) (kid string, exp time.Time, err error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", time.Time{}, fmt.Errorf("not a compact JWS: %d parts", len(parts))
	}
	var header struct {
		Kid string `json:"kid"`
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	for i, into := range []any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return "", time.Time{}, err
		}
		if err := json.Unmarshal(b, into); err != nil {
			return "", time.Time{}, err
		}
	}
	return header.Kid, time.Unix(claims.Exp, 0), nil
}

// forged returns raw with one character of its signature changed.
func forged(raw string) string {
	i := strings.LastIndexByte(raw, '.') + 5
	c := byte('A')
	if raw[i] == 'A' {
		c = 'B'
	}
	return raw[:i] + string(c) + raw[i+1:]
}

// latencyTable formats the median and maximum of each series, by name.
func latencyTable(series map[string][]time.Duration) string {
	names := make([]string, 0, len(series))
	for name := range series {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		d := slices.Clone(series[name])
		slices.Sort(d)
		fmt.Fprintf(&b, "\n    %-72s %8v %8v", name, d[len(d)/2].Round(time.Microsecond*100), d[len(d)-1].Round(time.Microsecond*100))
	}
	return b.String()
}

// --- 1. Redis killed and restarted under a stream of checks, logins and refreshes -----------------

// outageRecord is one request of TestChaosRedisKilledMidStream.
type outageRecord struct {
	kind       string
	start, end time.Time
	status     int
	body       string
	err        error
}

// Kinds of requests of TestChaosRedisKilledMidStream, and their answer when the store works.
const (
	kindShopSession    = "session check, shop (Deny)"
	kindDashCached     = "session check, dashboard (AllowCached), cached"
	kindDashUnseen     = "session check, dashboard (AllowCached), never checked"
	kindBearer         = "JWT check"
	kindForged         = "JWT check, forged signature"
	kindRefresh        = "refresh"
	kindLoginShop      = "login, shop"
	kindLoginDashboard = "login, dashboard"
	phaseBefore        = "before the kill"
	phaseOutage        = "outage"
	phaseTransition    = "transition"
	phaseAfter         = "after recovery"
)

var normalAnswer = map[string]int{
	kindShopSession: 200, kindDashCached: 200, kindDashUnseen: 200, kindBearer: 200, kindForged: 401,
	kindRefresh: 200, kindLoginShop: 200, kindLoginDashboard: 200,
}

// outageAnswer is what docs/operations.md ("When the store is unavailable", "Redis outages") says
// each kind gets while Redis is down, once the replica has noticed.
var outageAnswer = map[string]int{
	kindShopSession: 503, kindDashCached: 200, kindDashUnseen: 503, kindBearer: 200, kindForged: 401,
	kindRefresh: 503, kindLoginShop: 503, kindLoginDashboard: 503,
}

// TestChaosRedisKilledMidStream kills Redis (SIGKILL, AOF with fsync always) under concurrent
// session checks of a Deny and an AllowCached policy, JWT checks, refreshes and logins, keeps the
// stream going through the outage, starts Redis again on the same port and data directory, and
// judges every answer by when it was asked: before the kill, the normal answer; during the
// outage, what the policy's onStoreUnavailable says (JWT checks as usual); across a transition,
// either; after recovery, the normal answer again. Recovery must come without restarting the
// webhook, and every session created before the kill must still be valid (and in Redis) after.
func TestChaosRedisKilledMidStream(t *testing.T) {
	redis := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	// A short staleness limit, so that the Deny policy's cached sessions need the store soon after
	// the kill even if the replica did not notice it; a grace window longer than the test, so that a
	// refresh whose answer was lost in the kill can be presented again.
	const staleness = 300 * time.Millisecond
	c := redisReplica(t, redis.Addr, sharedKey(t), "--cache-max-staleness", staleness.String(), "--redis-timeout", "200ms", "--refresh-grace", "1m")
	c.http = keepAliveClient(t)

	// Sessions and tokens made before the stream (bcrypt makes logins slow under -race, so few):
	// a shop login (session, access and refresh token), a dashboard session the workers check
	// from the start, and one no one checks before the outage. The check workers share them;
	// worker 0 also refreshes, and every worker checks the latest access token.
	const workers = 3
	shop, first, status, body, err := loginAs(c, "default/shop", "authgate_session")
	if err != nil || status != 200 {
		t.Fatalf("shop login: %d %q %v", status, body, err)
	}
	dash, _, status, body, err := loginAs(c, "default/dashboard", "dashboard_session")
	if err != nil || status != 200 {
		t.Fatalf("dashboard login: %d %q %v", status, body, err)
	}
	unseen, _, status, body, err := loginAs(c, "default/dashboard", "dashboard_session")
	if err != nil || status != 200 {
		t.Fatalf("dashboard login: %d %q %v", status, body, err)
	}
	var access atomic.Value
	access.Store(first.Access)
	refresh := first.Refresh
	recs := make([][]outageRecord, workers)

	shopCheck := func(cookie string) (int, http.Header, string, error) {
		return nginxAsk(c, "default/shop", "https://shop.example.com/orders", map[string]string{"Cookie": cookie})
	}
	dashCheck := func(cookie string) (int, http.Header, string, error) {
		return nginxAsk(c, "default/dashboard", "https://dashboard.example.com/", map[string]string{"Cookie": cookie})
	}
	bearerCheck := func(token string) (int, http.Header, string, error) {
		return nginxAsk(c, "default/shop", "https://shop.example.com/api/orders", map[string]string{"Authorization": "Bearer " + token})
	}

	// phase: 0 before the kill, 1 Redis down, 2 Redis started again, 3 recovered.
	var phase atomic.Int32
	var iterations [4]atomic.Int64
	var loginsDone, loginsOK [4]atomic.Int64
	type madeSession struct {
		cookie, policy string
		end            time.Time
	}
	var loginRecs []outageRecord
	var made []madeSession

	s := startStream(t, workers+1, func(i int, running func() bool) {
		if i == workers {
			// The login worker: logins alternate between the two policies all along.
			for n := 0; running(); n++ {
				policy, cookie, kind := "default/shop", "authgate_session", kindLoginShop
				if n%2 == 1 {
					policy, cookie, kind = "default/dashboard", "dashboard_session", kindLoginDashboard
				}
				p := phase.Load()
				start := time.Now()
				set, _, status, body, err := loginAs(c, policy, cookie)
				end := time.Now()
				loginRecs = append(loginRecs, outageRecord{kind: kind, start: start, end: end, status: status, body: body, err: err})
				if err == nil && status == 200 {
					made = append(made, madeSession{cookie: set, policy: policy, end: end})
					loginsOK[p].Add(1)
				}
				loginsDone[p].Add(1)
			}
			return
		}
		ask := func(kind string, f func() (int, http.Header, string, error)) {
			start := time.Now()
			status, _, body, err := f()
			recs[i] = append(recs[i], outageRecord{kind: kind, start: start, end: time.Now(), status: status, body: body, err: err})
		}
		for n := 0; running(); n++ {
			p := phase.Load()
			token := access.Load().(string)
			ask(kindShopSession, func() (int, http.Header, string, error) { return shopCheck(shop) })
			ask(kindDashCached, func() (int, http.Header, string, error) { return dashCheck(dash) })
			ask(kindBearer, func() (int, http.Header, string, error) { return bearerCheck(token) })
			ask(kindForged, func() (int, http.Header, string, error) { return bearerCheck(forged(token)) })
			if p >= 1 {
				ask(kindDashUnseen, func() (int, http.Header, string, error) { return dashCheck(unseen) })
			}
			if i == 0 {
				var next tokens
				ask(kindRefresh, func() (int, http.Header, string, error) {
					status, h, body, err := c.do("POST", "/auth/refresh", map[string]string{"Content-Type": "application/json"},
						fmt.Sprintf(`{"refresh_token":%q}`, refresh))
					if err == nil && status == 200 {
						err = json.Unmarshal([]byte(body), &next)
					}
					return status, h, body, err
				})
				if next.Refresh != "" {
					refresh = next.Refresh
					access.Store(next.Access)
				}
			}
			iterations[p].Add(1)
		}
	})

	// enough reports whether phase p has had perWorker check iterations per worker and a login: any
	// while Redis is down, a successful one after recovery (none is needed before the kill).
	enough := func(p int, perWorker int64) func() string {
		return func() string {
			if n := iterations[p].Load(); n < workers*perWorker {
				return fmt.Sprintf("%d check iterations", n)
			}
			switch {
			case p == 1 && loginsDone[p].Load() == 0:
				return "no login yet"
			case p == 3 && loginsOK[p].Load() == 0:
				return "no successful login yet"
			}
			return ""
		}
	}
	waitFor(t, 30*time.Second, "load before the kill", enough(0, 30))

	killAt := time.Now()
	redis.Kill()
	killedAt := time.Now()
	phase.Store(1)
	// The outage lasts until every kind of request was asked while Redis was down, one login
	// (slow: bcrypt) included. Checks that need the store take up to their 150 ms budget now.
	waitFor(t, 30*time.Second, "load during the outage", enough(1, 8))

	restartAt := time.Now()
	redis.Start()
	phase.Store(2)
	recovery := waitFor(t, 10*time.Second, "recovery after Redis came back", func() string {
		var got []int
		for _, f := range []func() (int, http.Header, string, error){
			func() (int, http.Header, string, error) { return shopCheck(shop) },
			func() (int, http.Header, string, error) { return dashCheck(dash) },
			func() (int, http.Header, string, error) { return dashCheck(unseen) },
		} {
			status, _, _, _ := f()
			got = append(got, status)
		}
		if fmt.Sprint(got) != "[200 200 200]" {
			return fmt.Sprint("session checks answer ", got)
		}
		return ""
	})
	recoveredAt := time.Now()
	phase.Store(3)
	waitFor(t, 30*time.Second, "load after recovery", enough(3, 30))
	s.stop()

	// Judge every answer by the phase it was asked in.
	var all []outageRecord
	for _, r := range recs {
		all = append(all, r...)
	}
	all = append(all, loginRecs...)
	// The replica noticed the outage at the first Deny session check that got the store's error.
	var noticed time.Time
	for _, r := range all {
		if r.kind == kindShopSession && r.status == 503 && r.end.After(killAt) && (noticed.IsZero() || r.end.Before(noticed)) {
			noticed = r.end
		}
	}
	if noticed.IsZero() {
		t.Fatal("no session check of the Deny policy answered 503 while Redis was down")
	}
	// From then on, and in any case once the cached records are older than the staleness limit,
	// the Deny policy's sessions need the store.
	denyFrom := killedAt.Add(staleness)
	if noticed.Before(denyFrom) {
		denyFrom = noticed
	}
	counts := &tally{}
	bad := &problems{}
	latencies := map[string][]time.Duration{}
	for _, r := range all {
		var ph string
		switch {
		case r.end.Before(killAt):
			ph = phaseBefore
		case r.start.After(killedAt) && r.end.Before(restartAt):
			ph = phaseOutage
		case r.start.After(recoveredAt):
			ph = phaseAfter
		default:
			ph = phaseTransition
		}
		counts.add(fmt.Sprintf("%-16s %s: %d", ph, r.kind, r.status))
		latencies[ph+" "+r.kind] = append(latencies[ph+" "+r.kind], r.end.Sub(r.start))
		if r.err != nil {
			if errors.Is(r.err, io.EOF) && r.end.Sub(r.start) >= serverWriteTimeout {
				// The server closes a connection whose answer takes longer than its write
				// timeout: a login (bcrypt under -race) on a starved machine.
				counts.add(fmt.Sprintf("%-16s %s: closed after the server's write timeout", ph, r.kind))
				continue
			}
			bad.addf("%s, %s: %v", ph, r.kind, r.err)
			continue
		}
		if r.status >= 500 {
			// The one 5xx allowed is the documented answer of a store that cannot be reached.
			want := "unavailable: store_unavailable"
			if r.kind == kindRefresh || r.kind == kindLoginShop || r.kind == kindLoginDashboard {
				want = "unavailable"
			}
			if r.status != 503 || !strings.Contains(r.body, want) {
				bad.addf("%s, %s: %d %q, a 5xx other than the store-unavailable answer", ph, r.kind, r.status, r.body)
				continue
			}
		}
		ok := false
		switch ph {
		case phaseBefore, phaseAfter:
			ok = r.status == normalAnswer[r.kind]
			if !ok && r.status == 503 && r.kind != kindBearer && r.kind != kindForged && r.end.Sub(r.start) >= session.DefaultCheckTimeout {
				// Redis did not answer within the check's budget: on a loaded machine, a working
				// Redis can be that slow, and the answer is then the documented one.
				ok = true
				counts.add(fmt.Sprintf("%-16s %s: 503 after %v or more (slow store)", ph, r.kind, session.DefaultCheckTimeout))
			}
		case phaseOutage:
			ok = r.status == outageAnswer[r.kind]
			if r.kind == kindShopSession && !r.start.After(denyFrom) {
				// Until the replica notices, a cached session is still fresh.
				ok = r.status == 200 || r.status == 503
			}
		case phaseTransition:
			ok = r.status == normalAnswer[r.kind] || r.status == outageAnswer[r.kind]
			if r.kind == kindDashCached && r.end.After(restartAt) {
				// Once Redis is back, the revocation feed may return before commands do (go-redis
				// probes a refused server once a second); the replica then drops its cache, as
				// docs/operations.md says, and a cached session has nothing to fall back on.
				ok = ok || r.status == 503
			}
		}
		if !ok {
			bad.addf("%s, %s (asked %v after the kill): %d %q", ph, r.kind, r.start.Sub(killedAt).Round(time.Millisecond), r.status, r.body)
		}
	}
	t.Logf("%d requests; Redis down for %v; the Deny policy's checks failed %v after the kill; recovered %v after Redis was back. Answers by phase, kind and status:%s\n  latency (median, max):%s",
		len(all), restartAt.Sub(killedAt).Round(time.Millisecond), noticed.Sub(killedAt).Round(time.Millisecond), recovery.Round(time.Millisecond), counts, latencyTable(latencies))
	bad.report(t, "answers broke the contract")

	// No session is lost: each one created before the kill is still in Redis and still valid.
	type earlier struct{ cookie, policy string }
	sessions := []earlier{{shop, "default/shop"}, {dash, "default/dashboard"}, {unseen, "default/dashboard"}}
	for _, m := range made {
		if m.end.Before(killAt) {
			sessions = append(sessions, earlier{m.cookie, m.policy})
		}
	}
	for _, s := range sessions {
		_, id, _ := strings.Cut(s.cookie, "=")
		key := store.KeyOf(id)
		if n, err := redistest.Command(redis.Addr, "EXISTS", "authgate:s:"+hex.EncodeToString(key[:])); err != nil || n != "1" {
			t.Errorf("a %s session created before the kill is not in Redis after the restart: %q %v", s.policy, n, err)
		}
		f := shopCheck
		if s.policy == "default/dashboard" {
			f = dashCheck
		}
		if status, _, body, err := f(s.cookie); err != nil || status != 200 {
			t.Errorf("a %s session created before the kill, checked after the restart: %d %q %v", s.policy, status, body, err)
		}
	}
	t.Logf("%d sessions created before the kill checked after the restart", len(sessions))
}

// --- 2. Signing keys rotated under a stream of token issuance and checks --------------------------

// keyRing is a signing-key Secret as the operator keeps it (internal/controller/keyring.go): an
// active key that signs, a next key published before it signs, and retired keys reduced to their
// public half until every token they signed has expired.
type keyRing struct {
	active, next string
	private      map[string][]byte    // kid -> PEM private key
	public       map[string][]byte    // kid -> PEM public key of a retired key
	retired      map[string]time.Time // kid -> when it stopped signing (zero until confirmed)
}

func newKeyRing(t *testing.T) *keyRing {
	t.Helper()
	k := &keyRing{private: map[string][]byte{}, public: map[string][]byte{}, retired: map[string]time.Time{}}
	k.active = k.generate(t)
	k.next = k.generate(t)
	return k
}

func (k *keyRing) generate(t *testing.T) string {
	t.Helper()
	kid, data, err := signingkey.Generate(authgatev1.AlgorithmES256, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	k.private[kid] = data[kid+authgatev1.SigningKeyPrivateSuffix]
	return kid
}

// rotate makes the next key sign, retires the active one keeping its public half, and adds a new
// next key. The retired key's clock starts at confirm.
func (k *keyRing) rotate(t *testing.T) {
	t.Helper()
	pub, err := signingkey.PublicPEM(k.private[k.active])
	if err != nil {
		t.Fatal(err)
	}
	delete(k.private, k.active)
	k.public[k.active] = pub
	k.retired[k.active] = time.Time{}
	k.active = k.next
	k.next = k.generate(t)
}

// confirm records that every replica has stopped signing with the keys retired so far.
func (k *keyRing) confirm(now time.Time) {
	for kid, at := range k.retired {
		if at.IsZero() {
			k.retired[kid] = now
		}
	}
}

// prune removes the retired keys whose tokens have all expired (retired at least keep ago) and
// returns how many.
func (k *keyRing) prune(now time.Time, keep time.Duration) int {
	n := 0
	for kid, at := range k.retired {
		if !at.IsZero() && now.Sub(at) >= keep {
			delete(k.retired, kid)
			delete(k.public, kid)
			n++
		}
	}
	return n
}

// kids returns every key ID the Secret holds, sorted: what the JWKS publishes.
func (k *keyRing) kids() []string {
	var out []string
	for kid := range k.private {
		out = append(out, kid)
	}
	for kid := range k.public {
		out = append(out, kid)
	}
	sort.Strings(out)
	return out
}

func (k *keyRing) manifest(name string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\ntype: Opaque\ndata:\n", name)
	fmt.Fprintf(&b, "  %s: %s\n", authgatev1.SigningKeyActiveKey, base64.StdEncoding.EncodeToString([]byte(k.active)))
	for _, kid := range k.kids() {
		if pem, ok := k.private[kid]; ok {
			fmt.Fprintf(&b, "  %q: %s\n", kid+authgatev1.SigningKeyPrivateSuffix, base64.StdEncoding.EncodeToString(pem))
		} else {
			fmt.Fprintf(&b, "  %q: %s\n", kid+authgatev1.SigningKeyPublicSuffix, base64.StdEncoding.EncodeToString(k.public[kid]))
		}
	}
	return b.Bytes()
}

// rotationPolicy is a JWT policy with short-lived tokens, so that retired keys can be pruned
// within the test as the operator prunes them: accessTokenTTL plus clockSkew after retirement.
const rotationPolicy = `apiVersion: authgate.dev/v1
kind: AuthPolicy
metadata:
  name: rotate
spec:
  hosts: [rotate.example.com]
  rules:
  - name: api
    match: {pathPrefix: /}
    mode: JWT
  jwt:
    issuer: https://auth.example.com
    audiences: [rotate]
    algorithm: ES256
    signingKeySecretRef: {name: rotate-keys}
    accessTokenTTL: 2s
    clockSkew: 2s
    refreshTokenTTL: 1h
  login:
    usersSecretRef: {name: demo-users}
`

// issuedToken is an access token a replica issued during TestChaosKeyRotationMidStream.
type issuedToken struct {
	raw, kid string
	exp      time.Time
}

// TestChaosKeyRotationMidStream rotates the signing keys of a policy, step by step as the operator
// does, in the Secret manifest of a folder that two replicas watch, while each replica issues
// access tokens without pause (a login, then refreshes: bcrypt makes logins slow under -race) and
// every token is checked at once on both replicas and again later at random. Zero valid tokens
// may be refused: a token is valid until its exp (the webhook even allows clockSkew more). Tokens
// signed by a new key must pass on both replicas from the first one, including on the replica
// that has not reloaded yet: the key was published as the next key one rotation earlier. A
// rotation is made only once both replicas publish the current key set, as the operator's
// rotation period guarantees in a cluster. Retired keys are pruned accessTokenTTL plus clockSkew
// after both replicas stopped signing with them: the operator counts from the rotation itself and
// relies on clockSkew (30s by default) to cover the replicas' reload, which this test's 2s does
// not on a loaded machine.
func TestChaosKeyRotationMidStream(t *testing.T) {
	// As in rotationPolicy.
	const ttl, skew = 2 * time.Second, 2 * time.Second
	dir := t.TempDir()
	copyDemoUsers(t, dir)
	ring := newKeyRing(t)
	writeFileAtomically(t, dir, "keys.yaml", ring.manifest("rotate-keys"))
	writeFileAtomically(t, dir, "policy.yaml", []byte(rotationPolicy))
	var replicas []replicaClient
	for range 2 {
		c, _, _ := folderReplica(t, dir)
		replicas = append(replicas, c)
	}

	check := func(c replicaClient, token string) (int, string, error) {
		status, _, body, err := nginxAsk(c, "default/rotate", "https://rotate.example.com/v1/items", map[string]string{"Authorization": "Bearer " + token})
		return status, body, err
	}
	jwksKids := func(c replicaClient) ([]string, error) {
		status, _, body, err := c.do("GET", "/.well-known/jwks.json", nil, "")
		if err != nil || status != 200 {
			return nil, fmt.Errorf("JWKS: %d %v", status, err)
		}
		var set struct {
			Keys []struct {
				Kid string `json:"kid"`
			} `json:"keys"`
		}
		if err := json.Unmarshal([]byte(body), &set); err != nil {
			return nil, err
		}
		var kids []string
		for _, k := range set.Keys {
			kids = append(kids, k.Kid)
		}
		sort.Strings(kids)
		return kids, nil
	}

	counts := &tally{}
	rejected := &problems{} // valid tokens refused
	broken := &problems{}   // anything else that went wrong
	// Reported once the stream has stopped, however the test ends.
	t.Cleanup(func() {
		rejected.report(t, "valid tokens were refused")
		broken.report(t, "other failures")
	})
	var poolMu sync.Mutex
	var pool []issuedToken
	// lastKid[r] is the kid of the last token replica r issued that passed on both replicas.
	var lastKid [2]atomic.Value
	var issuedCount, laterChecks atomic.Int64

	// judge checks a token's answer: valid tokens must pass, tokens past exp plus clockSkew must
	// not; in between (the webhook's leeway) either is right.
	judge := func(what string, tok issuedToken, start, end time.Time, status int, body string, err error) bool {
		switch {
		case err != nil:
			broken.addf("%s: %v", what, err)
			return false
		case status == 401 && strings.Contains(body, "token_expired") && !end.Before(tok.exp.Add(skew)):
			// Expired while the request waited (a loaded machine): the webhook was right.
			counts.add(what + ", token expired during the request: 401")
		case start.Before(tok.exp):
			counts.add(what + ", valid token: " + strconv.Itoa(status))
			if status != 200 {
				rejected.addf("%s: a token of key %s, %v before its exp, answered %d %q", what, tok.kid, tok.exp.Sub(start).Round(time.Millisecond), status, body)
				return false
			}
		case !start.Before(tok.exp.Add(skew)):
			counts.add(what + ", expired token: " + strconv.Itoa(status))
			if status != 401 {
				broken.addf("%s: a token %v past exp plus clockSkew answered %d", what, start.Sub(tok.exp).Round(time.Millisecond), status)
				return false
			}
		default:
			counts.add(what + ", token within clockSkew after exp: " + strconv.Itoa(status))
		}
		return true
	}

	firstOfKey := &tally{}
	const issuers, checkers = 2, 1
	s := startStream(t, issuers+checkers, func(i int, running func() bool) {
		if i >= issuers {
			// Checkers: tokens issued earlier, on a replica picked at random.
			for running() {
				poolMu.Lock()
				if len(pool) == 0 {
					poolMu.Unlock()
					time.Sleep(time.Millisecond)
					continue
				}
				tok := pool[mrand.IntN(len(pool))]
				poolMu.Unlock()
				r := mrand.IntN(len(replicas))
				start := time.Now()
				status, body, err := check(replicas[r], tok.raw)
				judge(fmt.Sprintf("later check on replica %d", r), tok, start, time.Now(), status, body, err)
				laterChecks.Add(1)
			}
			return
		}
		c := replicas[i]
		var refresh string
		seen := map[string]bool{}
		for n := 0; running(); n++ {
			var status int
			var tk tokens
			var body string
			var err error
			if n == 0 {
				_, tk, status, body, err = loginAs(c, "default/rotate", "")
			} else {
				status, tk, err = c.refresh(refresh)
			}
			if err != nil || status != 200 || tk.Access == "" {
				broken.addf("replica %d issuing a token (request %d): %d %q %v", i, n, status, body, err)
				return
			}
			refresh = tk.Refresh
			kid, exp, err := jwtParts(tk.Access)
			if err != nil {
				broken.addf("replica %d issued %q: %v", i, tk.Access, err)
				return
			}
			tok := issuedToken{raw: tk.Access, kid: kid, exp: exp}
			issuedCount.Add(1)
			first := !seen[kid]
			seen[kid] = true
			passed := true
			for r, other := range replicas {
				start := time.Now()
				status, body, err := check(other, tok.raw)
				what := "immediate check on the other replica"
				if r == i {
					what = "immediate check on the issuing replica"
				}
				if first {
					firstOfKey.add(fmt.Sprintf("%s: %d", what, status))
				}
				passed = judge(what, tok, start, time.Now(), status, body, err) && passed
			}
			if passed {
				lastKid[i].Store(kid)
			}
			// Every fifth token is kept for later checks, so that the pool spans longer than a
			// token lives and a retired key is kept: later checks meet expired tokens and tokens
			// of retired and pruned keys too.
			if n%5 == 0 {
				poolMu.Lock()
				pool = append(pool, tok)
				if len(pool) > 400 {
					pool = slices.Delete(pool, 0, 100)
				}
				poolMu.Unlock()
			}
		}
	})

	// bothServe waits until both replicas publish the ring's keys and have issued a token signed by
	// its active key that passed on both.
	bothServe := func(what string) {
		want := ring.kids()
		waitFor(t, 10*time.Second, what, func() string {
			for r, c := range replicas {
				got, err := jwksKids(c)
				if err != nil || !slices.Equal(got, want) {
					return fmt.Sprintf("replica %d publishes %v (%v), want %v", r, got, err, want)
				}
			}
			for r := range replicas {
				if kid, _ := lastKid[r].Load().(string); kid != ring.active {
					return fmt.Sprintf("replica %d last issued a token of key %q, want %q", r, kid, ring.active)
				}
			}
			return ""
		})
	}
	rotations, pruned := 0, 0
	deadline := time.Now().Add(30 * time.Second)
	start := time.Now()
	for rotations < 6 || pruned < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d rotations and %d prunes in 30s", rotations, pruned)
		}
		bothServe(fmt.Sprintf("rotation %d", rotations))
		now := time.Now()
		ring.confirm(now)
		pruned += ring.prune(now, ttl+skew)
		ring.rotate(t)
		writeFileAtomically(t, dir, "keys.yaml", ring.manifest("rotate-keys"))
		rotations++
	}
	bothServe("the last rotation")
	// Keep the stream going until the tokens of the last rotation have been checked again later.
	checked := laterChecks.Load()
	waitFor(t, 10*time.Second, "later checks after the last rotation", func() string {
		if n := laterChecks.Load() - checked; n < 200 {
			return fmt.Sprintf("%d later checks", n)
		}
		return ""
	})
	s.stop()

	t.Logf("%d rotations and %d retired keys pruned in %v; %d tokens issued, %d later checks; rejected valid tokens: %d. Answers:%s\n  first token of each key per issuing replica:%s",
		rotations, pruned, time.Since(start).Round(time.Millisecond), issuedCount.Load(), laterChecks.Load(), rejected.count, counts, firstOfKey)
	// Every key signed on both replicas, and its first token was checked on both at once.
	if got, want := firstOfKey.total(), issuers*len(replicas)*(rotations+1); got != want {
		t.Errorf("%d immediate checks of a key's first token, want %d (%d keys, each first issued by %d replicas, checked on %d)",
			got, want, rotations+1, issuers, len(replicas))
	}
}

// --- 3. The policy rewritten under a stream of checks ---------------------------------------------

// editPolicy is generation gen of the policy TestChaosPolicyEditsMidStream rewrites. Even
// generations are version A: /x/ Public, /y/ Session, identity header X-A-User. Odd ones are
// version B: /x/ Session, /y/ Public, identity headers X-B-User and X-B-Email. Each generation also
// sends X-Gen-<gen>, so that an allowed session names the very file it was decided by. Any mix of
// the two versions answers something neither gives: identity headers of one version on the
// Session rule of the other, a rule or a header missing, the policy missing.
func editPolicy(gen int) []byte {
	xMode, yMode := "Public", "Session"
	headers := fmt.Sprintf("    X-A-User: sub\n    X-Gen-%d: sub\n", gen)
	if gen%2 == 1 {
		xMode, yMode = "Session", "Public"
		headers = fmt.Sprintf("    X-B-User: sub\n    X-B-Email: email\n    X-Gen-%d: sub\n", gen)
	}
	return fmt.Appendf(nil, `apiVersion: authgate.dev/v1
kind: AuthPolicy
metadata:
  name: edit
spec:
  hosts: [edit.example.com]
  rules:
  - name: rule-x
    match: {pathPrefix: /x/}
    mode: %s
  - name: rule-y
    match: {pathPrefix: /y/}
    mode: %s
  session:
    cookie: {name: edit_session}
  login:
    usersSecretRef: {name: demo-users}
  identityHeaders:
%s`, xMode, yMode, headers)
}

// editAnswer reads which generation of editPolicy answered a check of path ("x" or "y"), with or
// without a session: its version ('A' or 'B'), and its generation when the answer names it (-1
// otherwise). An answer no single generation gives is an error.
func editAnswer(path string, session bool, status int, h http.Header) (version byte, gen int, err error) {
	identity := map[string]string{}
	gen = -1
	for name, v := range h {
		if strings.HasPrefix(name, "X-A-") || strings.HasPrefix(name, "X-B-") || strings.HasPrefix(name, "X-Gen-") {
			identity[name] = strings.Join(v, ",")
		}
		if n, ok := strings.CutPrefix(name, "X-Gen-"); ok {
			gen, _ = strconv.Atoi(n)
		}
	}
	// Which version makes path a Session rule.
	sessionVersion := byte('A')
	if path == "x" {
		sessionVersion = 'B'
	}
	publicVersion := 'A' + 'B' - sessionVersion
	switch {
	case status == 200 && len(identity) == 0:
		// A Public rule: anonymous or not, no identity is sent.
		return publicVersion, -1, nil
	case status == 401 && !session && len(identity) == 0:
		return sessionVersion, -1, nil
	case status == 200 && session && gen >= 0 && gen%2 == int(sessionVersion-'A'):
		want := map[string]string{fmt.Sprintf("X-Gen-%d", gen): demoUserID}
		if sessionVersion == 'A' {
			want["X-A-User"] = demoUserID
		} else {
			want["X-B-User"], want["X-B-Email"] = demoUserID, demoEmail
		}
		if fmt.Sprint(identity) == fmt.Sprint(want) {
			return sessionVersion, gen, nil
		}
	}
	return 0, -1, fmt.Errorf("no generation answers %d with identity headers %v", status, identity)
}

// TestChaosPolicyAnswersTellGenerationsApart checks the judge of TestChaosPolicyEditsMidStream:
// the answers of a mix of the two versions are refused, those of each generation read right.
func TestChaosPolicyAnswersTellGenerationsApart(t *testing.T) {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	cases := map[string]struct {
		path    string
		session bool
		status  int
		header  http.Header
		version byte // 0: no generation gives this answer
		gen     int
	}{
		"A, public /x/":                   {"x", false, 200, nil, 'A', -1},
		"A, session /y/":                  {"y", true, 200, h("X-A-User", "admin", "X-Gen-4", "admin"), 'A', 4},
		"A, anonymous /y/":                {"y", false, 401, nil, 'A', -1},
		"B, session /x/":                  {"x", true, 200, h("X-B-User", "admin", "X-B-Email", demoEmail, "X-Gen-7", "admin"), 'B', 7},
		"B, anonymous /x/":                {"x", false, 401, nil, 'B', -1},
		"B, public /y/ with a session":    {"y", true, 200, nil, 'B', -1},
		"B's headers on A's Session rule": {"y", true, 200, h("X-B-User", "admin", "X-B-Email", demoEmail, "X-Gen-7", "admin"), 0, -1},
		"A's headers on B's Session rule": {"x", true, 200, h("X-A-User", "admin", "X-Gen-4", "admin"), 0, -1},
		"A's rule, B's generation":        {"y", true, 200, h("X-A-User", "admin", "X-Gen-7", "admin"), 0, -1},
		"no generation header":            {"y", true, 200, h("X-A-User", "admin"), 0, -1},
		"a header missing":                {"x", true, 200, h("X-B-User", "admin", "X-Gen-7", "admin"), 0, -1},
		"a session refused":               {"y", true, 401, nil, 0, -1},
		"no rule":                         {"x", false, 403, nil, 0, -1},
		"no policy":                       {"x", false, 400, nil, 0, -1},
		"an error":                        {"y", false, 503, nil, 0, -1},
	}
	for name, tc := range cases {
		version, gen, err := editAnswer(tc.path, tc.session, tc.status, tc.header)
		if tc.version == 0 {
			if err == nil {
				t.Errorf("%s: read as version %c generation %d", name, version, gen)
			}
			continue
		}
		if err != nil || version != tc.version || gen != tc.gen {
			t.Errorf("%s: version %c generation %d (%v), want %c %d", name, version, gen, err, tc.version, tc.gen)
		}
	}
}

// TestChaosPolicyEditsMidStream rewrites a policy again and again between two versions, one edit at
// a time and in bursts, by rename and in place, while three clients check it without pause (by
// policy name and by host). Every answer must come from exactly one generation of the file (no
// half-built or mixed policy, no missing policy, no 5xx), a client never sees an older generation
// after a newer one, and the last edit is enforced within a bound.
func TestChaosPolicyEditsMidStream(t *testing.T) {
	dir := t.TempDir()
	copyDemoUsers(t, dir)
	gen := 0
	write := func() {
		// Half the edits replace the file by rename (as the kubelet does), half rewrite it in place
		// (as many editors do).
		if gen%4 < 2 {
			writeFileAtomically(t, dir, "policy.yaml", editPolicy(gen))
		} else if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), editPolicy(gen), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write()
	c, _, _ := folderReplica(t, dir)
	sessionCookie, _, status, body, err := loginAs(c, "default/edit", "edit_session")
	if err != nil || status != 200 {
		t.Fatalf("login: %d %q %v", status, body, err)
	}

	type ask struct {
		path    string
		session bool
		byHost  bool
	}
	asks := []ask{{"x", true, false}, {"y", true, false}, {"x", false, false}, {"y", false, false},
		{"x", true, true}, {"y", true, true}, {"x", false, true}, {"y", false, true}}
	// do asks one question and returns the answer's version and generation.
	do := func(a ask) (version byte, gen int, err error) {
		header := map[string]string{}
		if a.session {
			header["Cookie"] = sessionCookie
		}
		policy := "default/edit"
		if a.byHost {
			policy = ""
		}
		status, h, body, err := nginxAsk(c, policy, "https://edit.example.com/"+a.path+"/1", header)
		if err != nil {
			return 0, -1, err
		}
		version, gen, err = editAnswer(a.path, a.session, status, h)
		if err != nil {
			return 0, -1, fmt.Errorf("%w (body %q)", err, body)
		}
		return version, gen, nil
	}

	type editRecord struct {
		start   time.Time
		version byte
		gen     int
	}
	counts := &tally{}
	bad := &problems{}
	// Reported once the stream has stopped, however the test ends.
	t.Cleanup(func() { bad.report(t, "answers of no single generation, or out of order") })
	const workers = 3
	recs := make([][]editRecord, workers)
	var requests atomic.Int64
	s := startStream(t, workers, func(i int, running func() bool) {
		newest := -1
		for n := i; running(); n++ {
			a := asks[n%len(asks)]
			start := time.Now()
			version, gen, err := do(a)
			requests.Add(1)
			what := fmt.Sprintf("/%s/, session %t, by host %t", a.path, a.session, a.byHost)
			if err != nil {
				bad.addf("client %d, %s: %v", i, what, err)
				continue
			}
			counts.add(fmt.Sprintf("%s: version %c", what, version))
			if gen >= 0 {
				if gen < newest {
					bad.addf("client %d, %s: generation %d after generation %d", i, what, gen, newest)
				}
				newest = max(newest, gen)
			}
			recs[i] = append(recs[i], editRecord{start: start, version: version, gen: gen})
		}
	})

	// enforced waits until the checks answer by generation gen and returns how long that took
	// from the edit.
	enforced := func(edited time.Time) time.Duration {
		want := gen
		waitFor(t, 10*time.Second, fmt.Sprintf("generation %d enforced", want), func() string {
			var answers []string
			for _, a := range asks[:2] {
				version, got, err := do(a)
				if err == nil && got == want {
					return ""
				}
				answers = append(answers, fmt.Sprintf("/%s/: version %c generation %d %v", a.path, version, got, err))
			}
			return strings.Join(answers, "; ")
		})
		return time.Since(edited)
	}
	var lat []time.Duration
	for range 12 {
		gen++
		edited := time.Now()
		write()
		lat = append(lat, enforced(edited))
	}
	bursts := 0
	for range 3 {
		for range 7 {
			gen++
			write()
		}
		enforced(time.Now())
		bursts++
	}
	// The last edit: a single one after the bursts settled.
	gen++
	last := time.Now()
	write()
	lastLatency := enforced(last)
	lat = append(lat, lastLatency)
	enforcedAt := time.Now()
	final := byte('A' + gen%2)
	from := requests.Load()
	waitFor(t, 10*time.Second, "checks after the last edit", func() string {
		if n := requests.Load() - from; n < 300 {
			return fmt.Sprintf("%d checks", n)
		}
		return ""
	})
	s.stop()

	after := 0
	for i := range recs {
		for _, r := range recs[i] {
			if !r.start.After(enforcedAt) {
				continue
			}
			after++
			if r.version != final || (r.gen >= 0 && r.gen != gen) {
				bad.addf("client %d: version %c generation %d after the last edit (generation %d) was enforced", i, r.version, r.gen, gen)
			}
		}
	}
	slices.Sort(lat)
	t.Logf("%d edits (%d one at a time, %d in %d bursts), %d checks, %d after the last edit; an edit was enforced in %v at the median, %v at most; the last one in %v. Answers:%s",
		gen, len(lat), gen-len(lat), bursts, requests.Load(), after, lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), lastLatency.Round(time.Millisecond), counts)
	// The folder is reloaded 100 ms after the last change; the bound leaves room for a loaded
	// machine.
	if lastLatency > 5*time.Second {
		t.Errorf("the last edit took %v to be enforced, want at most 5s", lastLatency)
	}
}

// --- 4. Shutdown (SIGTERM) under a stream of checks -----------------------------------------------

// idp is an external identity provider: an ES256 key whose JWKS it serves at /free/<n>, and at
// /hold/<n> only once release is closed. Each /hold/ request is counted in held as it arrives.
type idp struct {
	key     *ecdsa.PrivateKey
	srv     *httptest.Server
	held    atomic.Int64
	release chan struct{}
}

func startIDP(t *testing.T) *idp {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	point, err := key.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	jwks := fmt.Appendf(nil, `{"keys":[{"kty":"EC","crv":"P-256","kid":"idp-1","use":"sig","alg":"ES256","x":%q,"y":%q}]}`,
		b64(point[1:33]), b64(point[33:]))
	p := &idp{key: key, release: make(chan struct{})}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/hold/") {
			p.held.Add(1)
			select {
			case <-p.release:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	}))
	t.Cleanup(func() {
		p.unhold()
		p.srv.Close()
	})
	return p
}

func (p *idp) unhold() {
	select {
	case <-p.release:
	default:
		close(p.release)
	}
}

// token returns an access token of issuer https://idp<n>.example.com for audience ext.
func (p *idp) token(t *testing.T, n int) string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	now := time.Now().Unix()
	input := b64([]byte(`{"alg":"ES256","kid":"idp-1","typ":"JWT"}`)) + "." +
		b64(fmt.Appendf(nil, `{"iss":"https://idp%d.example.com","sub":"robot-%d","aud":"ext","iat":%d,"exp":%d}`, n, n, now, now+3600))
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, p.key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64(sig)
}

// extPolicy trusts issuers idp0 to idp<n-1>, whose JWKS are fetched from base + "/<kind>/<i>";
// kind is "free" or "hold" for each issuer.
func extPolicy(base string, kinds []string) []byte {
	var b bytes.Buffer
	b.WriteString("apiVersion: authgate.dev/v1\nkind: AuthPolicy\nmetadata:\n  name: ext\nspec:\n  hosts: [ext.example.com]\n" +
		"  rules:\n  - name: api\n    match: {pathPrefix: /}\n    mode: JWT\n  jwt:\n    audiences: [ext]\n    trustedIssuers:\n")
	for i, kind := range kinds {
		fmt.Fprintf(&b, "    - issuer: https://idp%d.example.com\n      jwksURL: %s/%s/%d\n", i, base, kind, i)
	}
	return b.Bytes()
}

// failover sends a check to one replica and, when that fails without an answer (refused, reset,
// closed before the response), to the next: what nginx does with proxy_next_upstream error. A 5xx
// answer is an answer, not retried.
type failover struct {
	bases   []string
	clients []*http.Client
}

func (f failover) check(first int, policy, url string, header map[string]string) (status int, tries int, err error) {
	for try := range len(f.bases) {
		i := (first + try) % len(f.bases)
		req, rerr := http.NewRequest("GET", f.bases[i]+"/check/nginx?policy="+policy, nil)
		if rerr != nil {
			return 0, try + 1, rerr
		}
		req.Header.Set("X-Original-URL", url)
		req.Header.Set("X-Original-Method", "GET")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, derr := f.clients[i].Do(req)
		if derr != nil {
			err = derr
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, try + 1, nil
	}
	return 0, len(f.bases), err
}

// TestChaosShutdownMidStream stops one of two replicas, as SIGTERM does (kube.Run cancels Run's
// context), while clients check through both with nginx's failover, and while three checks are
// provably inside the stopping replica: each waits for the JWKS of a trusted issuer, which the test
// holds back until the replica has stopped accepting connections. The held checks must then end
// with their real answer, the replica must refuse new connections from the moment it stops (and
// /readyz must never answer 200 again once it has answered anything else), Run must return
// without error, and the clients must see zero failed checks.
func TestChaosShutdownMidStream(t *testing.T) {
	redis := redistest.StartServer(t)
	key := sharedKey(t)
	provider := startIDP(t)
	const heldChecks = 3
	// Each replica reads the samples plus a policy trusting 1 + heldChecks issuers. Replica A
	// fetches the JWKS of issuers 1 to heldChecks from /hold/, B from /free/.
	var bases []string
	var runs []*run
	var optsA webhook.Options
	for r, kind := range []string{"hold", "free"} {
		dir := samples(t)
		kinds := []string{"free"}
		for range heldChecks {
			kinds = append(kinds, kind)
		}
		if err := os.WriteFile(filepath.Join(dir, "ext.yaml"), extPolicy(provider.srv.URL, kinds), 0o600); err != nil {
			t.Fatal(err)
		}
		c, run, opts := folderReplica(t, dir, "--store", "redis", "--redis-url", "redis://"+redis.Addr, "--secret-key-file", key)
		bases = append(bases, c.base)
		runs = append(runs, run)
		if r == 0 {
			optsA = opts
		}
	}
	a := replicaClient{base: bases[0], http: keepAliveClient(t)}
	sessionCookie, tk, status, body, err := loginAs(a, "default/shop", "authgate_session")
	if err != nil || status != 200 {
		t.Fatalf("login: %d %q %v", status, body, err)
	}
	extToken := provider.token(t, 0)

	type kind struct {
		name, policy, url string
		header            map[string]string
		want              int
	}
	kinds := []kind{
		{"session", "default/shop", "https://shop.example.com/orders", map[string]string{"Cookie": sessionCookie}, 200},
		{"bearer", "default/shop", "https://shop.example.com/api/orders", map[string]string{"Authorization": "Bearer " + tk.Access}, 200},
		{"anonymous", "default/shop", "https://shop.example.com/orders", nil, 401},
		{"public", "default/status", "https://status.example.com/", nil, 200},
		{"trusted issuer", "default/ext", "https://ext.example.com/v1", map[string]string{"Authorization": "Bearer " + extToken}, 200},
	}
	counts := &tally{}
	failed := &problems{}
	t.Cleanup(func() { failed.report(t, "checks failed") })
	var checks atomic.Int64
	const workers = 3
	s := startStream(t, workers, func(i int, running func() bool) {
		f := failover{bases: bases, clients: []*http.Client{keepAliveClient(t), keepAliveClient(t)}}
		for n := i; running(); n++ {
			k := kinds[n%len(kinds)]
			// Round robin over the replicas, as nginx balances its upstreams.
			status, tries, err := f.check(n%2, k.policy, k.url, k.header)
			checks.Add(1)
			counts.add(fmt.Sprintf("%s: %d after %d tries", k.name, status, tries))
			if err != nil || status != k.want {
				failed.addf("%s: %d after %d tries, want %d: %v", k.name, status, tries, k.want, err)
			}
		}
	})
	waitFor(t, 10*time.Second, "checks before the shutdown", func() string {
		if n := checks.Load(); n < 200 {
			return fmt.Sprintf("%d checks", n)
		}
		return ""
	})

	// /readyz of A, each time on a new connection, from before the shutdown until it refuses.
	var readyz []string
	var readyzAnswers atomic.Int64
	readyzDone := make(chan struct{})
	go func() {
		defer close(readyzDone)
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			resp, _, err := get(t, bases[0]+"/readyz", nil)
			if err != nil {
				readyz = append(readyz, "refused")
				return
			}
			readyz = append(readyz, strconv.Itoa(resp.StatusCode))
			readyzAnswers.Add(1)
		}
	}()
	waitFor(t, 5*time.Second, "/readyz polled before the shutdown", func() string {
		if readyzAnswers.Load() < 5 {
			return "fewer than 5 answers"
		}
		return ""
	})

	// The held checks: each is inside replica A once its JWKS request has arrived.
	type answer struct {
		status int
		body   string
		err    error
	}
	held := make(chan answer, heldChecks)
	for i := 1; i <= heldChecks; i++ {
		token := provider.token(t, i)
		go func() {
			c := replicaClient{base: bases[0], http: &http.Client{Timeout: 20 * time.Second}}
			status, _, body, err := nginxAsk(c, "default/ext", "https://ext.example.com/v1", map[string]string{"Authorization": "Bearer " + token})
			held <- answer{status, body, err}
		}()
	}
	waitFor(t, 10*time.Second, "held checks inside replica A", func() string {
		if n := provider.held.Load(); n < heldChecks {
			return fmt.Sprintf("%d JWKS requests held", n)
		}
		return ""
	})

	stopping := time.Now()
	runs[0].cancel() // what SIGTERM does through kube.Run
	refusedAfter := waitFor(t, 5*time.Second, "replica A refusing new connections", func() string {
		conn, err := net.DialTimeout("tcp", optsA.HTTPAddr, time.Second)
		if err != nil {
			return ""
		}
		conn.Close()
		return "a new connection was accepted"
	})
	select {
	case a := <-held:
		t.Fatalf("a held check ended before its JWKS was released: %d %q %v", a.status, a.body, a.err)
	default:
	}
	select {
	case <-runs[0].done:
		t.Fatalf("Run returned while checks were still in flight: %v", runs[0].err)
	default:
	}
	<-readyzDone
	provider.unhold()
	heldOK := 0
	for range heldChecks {
		select {
		case a := <-held:
			if a.err != nil || a.status != 200 {
				t.Errorf("a check in flight during the shutdown: %d %q %v, want 200", a.status, a.body, a.err)
				continue
			}
			heldOK++
		case <-time.After(10 * time.Second):
			t.Fatal("a check in flight during the shutdown got no answer")
		}
	}
	if err := runs[0].wait(t, 10*time.Second); err != nil {
		t.Errorf("Run after the shutdown: %v", err)
	}
	stopped := time.Since(stopping)
	if conn, err := net.DialTimeout("tcp", optsA.HTTPAddr, time.Second); err == nil {
		conn.Close()
		t.Error("replica A accepts connections after Run returned")
	}
	from := checks.Load()
	waitFor(t, 10*time.Second, "checks after the shutdown", func() string {
		if n := checks.Load() - from; n < 200 {
			return fmt.Sprintf("%d checks", n)
		}
		return ""
	})
	s.stop()

	// /readyz: 200 while serving, then (if ever seen) 503, then refused; never 200 again.
	seq := strings.Join(readyz, " ")
	if i := slices.IndexFunc(readyz, func(s string) bool { return s != "200" }); i >= 0 && slices.Contains(readyz[i:], "200") {
		t.Errorf("/readyz answered 200 after %s: %s", readyz[i], seq)
	}
	if readyz[0] != "200" || readyz[len(readyz)-1] != "refused" {
		t.Errorf("/readyz of A, from before the shutdown to its end: %s; want 200 first and refused last", seq)
	}
	readyzCounts := &tally{}
	for _, s := range readyz {
		readyzCounts.add(s)
	}
	t.Logf("%d checks through failover (%d after replica A stopped), %d failed; %d of %d held checks answered 200; A refused new connections %v after the cancel and Run returned %v after it. /readyz of A:%s\n  checks by kind, answer and tries:%s",
		checks.Load(), checks.Load()-from, failed.count, heldOK, heldChecks, refusedAfter.Round(time.Millisecond), stopped.Round(time.Millisecond), readyzCounts, counts)
}
