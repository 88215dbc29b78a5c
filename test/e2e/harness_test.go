package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"golang.org/x/net/html"

	"github.com/authgate/authgate/internal/webhook"
)

// The names the tests use. The nginx configuration and the policy name them too.
const (
	appHost   = "shop.example.com" // the application, behind nginx
	loginHost = "auth.example.com" // the login host: the webhook itself
	policyRef = "shop/shop"        // what the nginx configuration passes in ?policy=

	sessionCookie = "authgate_session"
	csrfCookie    = "authgate_csrf"

	adminEmail     = "admin@example.com"
	adminPassword  = "admin-demo-password"
	viewerEmail    = "viewer@example.com"
	viewerPassword = "viewer-demo-password"

	// browserAccept is what Chromium sends on a navigation.
	browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
)

// identityHeaders are the headers the policy sends upstream (identityHeaders) and nginx forwards
// (auth-response-headers).
var identityHeaders = []string{"X-User-Id", "X-User-Email", "X-User-Role"}

// adminIdentity is what the upstream must see for admin@example.com (config/samples demo users).
var adminIdentity = map[string]string{
	"X-User-Id":    "admin",
	"X-User-Email": adminEmail,
	"X-User-Role":  "admin,editor",
}

// The programs the tests run, and the Debian packages that provide them (hack/deps.sh installs them).
const (
	nginxBin      = "/usr/sbin/nginx"
	setMiscModule = "/usr/lib/nginx/modules/ngx_http_set_misc_module.so"
	ndkModule     = "/usr/lib/nginx/modules/ndk_http_module.so"
	chromiumBin   = "/usr/bin/chromium"
)

// requireFile fails the test, naming the Debian package to install, when path does not exist. The
// tests never skip: a missing server is an environment to fix, not a test to leave out.
func requireFile(t *testing.T, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is missing (%v): install the Debian package %s (`make deps` does it as root, "+
			"or: sudo apt-get install -y %s)", path, err, pkg, pkg)
	}
}

// sessionTimes are the policy's session.ttl and session.refreshThreshold.
type sessionTimes struct{ ttl, refreshThreshold string }

var (
	// stableSession never slides during a test: a check extends the session only when less than 5m
	// of its hour remains.
	stableSession = sessionTimes{ttl: "1h", refreshThreshold: "5m"}
	// slidingSession slides on every check that comes at least one second after the login or the
	// last extension: then less than 59m59s of the hour remains.
	slidingSession = sessionTimes{ttl: "1h", refreshThreshold: "59m59s"}
)

// env is one test's world: the webhook, a counting proxy in front of its checks, the upstream
// application and nginx. Each test gets its own, so tests share no sessions, cache entries or rate
// limits and can run in parallel.
type env struct {
	t *testing.T

	webhookAddr string // 127.0.0.1:port of the webhook (logins, and direct checks)
	webhookPort string
	nginxAddr   string // 127.0.0.1:port nginx listens on
	nginxPort   string
	nginxDir    string // nginx's prefix: configuration, logs, cache

	upstream *upstream
	checks   *checkRecorder
	logs     *lockedBuffer // the webhook's log lines

	requestIDs atomic.Int64
}

// newEnv starts everything and registers its shutdown with t.Cleanup.
func newEnv(t *testing.T, times sessionTimes) *env {
	t.Helper()
	requireFile(t, nginxBin, "nginx-light")
	requireFile(t, ndkModule, "libnginx-mod-http-set-misc")
	requireFile(t, setMiscModule, "libnginx-mod-http-set-misc")

	e := &env{t: t, logs: &lockedBuffer{}}
	e.upstream = newUpstream(t)
	e.startWebhook(times)
	e.checks = newCheckRecorder(t, e.webhookAddr)
	e.startNginx()

	// Cleanups run last-registered first: the checks' invariants, then the diagnostics, then the
	// shutdown registered above.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error.log:\n%s", e.errorLog())
			t.Logf("check requests nginx sent to the webhook:\n%s", e.checks.String())
			t.Logf("webhook log:\n%s", e.logs.String())
		}
	})
	t.Cleanup(func() { e.checks.verifyInvariants(t) })
	return e
}

// appURL is an absolute URL of the application, through nginx.
func (e *env) appURL(pathAndQuery string) string {
	return "http://" + appHost + ":" + e.nginxPort + pathAndQuery
}

// authURL is an absolute URL on the login host, the webhook.
func (e *env) authURL(pathAndQuery string) string {
	return "http://" + loginHost + ":" + e.webhookPort + pathAndQuery
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago. Servers that take an address
// rather than a listener (nginx, webhook.Run) get it; the small window in which another process can
// take it is covered by retrying with another port when the bind fails.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

const bindAttempts = 3

// startWebhook runs webhook.Run in-process on a free port, with a manifests folder holding the shop
// policy and its Secrets, and waits until /readyz answers 200.
func (e *env) startWebhook(times sessionTimes) {
	t := e.t
	t.Helper()
	manifests := t.TempDir()
	for _, name := range []string{"secret_demo-users.yaml", "secret_shop-jwt-keys.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", "manifests", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(manifests, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	policyTemplate, err := os.ReadFile(filepath.Join("testdata", "manifests", "shop.yaml"))
	if err != nil {
		t.Fatal(err)
	}

	log := funcr.New(func(prefix, args string) {
		e.logs.WriteString(time.Now().Format("15:04:05.000") + " " + prefix + " " + args + "\n")
	}, funcr.Options{})

	var lastErr error
	for range bindAttempts {
		port := freePort(t)
		policy := fill(t, string(policyTemplate), map[string]string{
			"LOGIN_URL":                 "http://" + loginHost + ":" + port + "/auth/login",
			"SESSION_TTL":               times.ttl,
			"SESSION_REFRESH_THRESHOLD": times.refreshThreshold,
		})
		if err := os.WriteFile(filepath.Join(manifests, "shop.yaml"), []byte(policy), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), log))
		done := make(chan error, 1)
		go func() {
			done <- webhook.Run(ctx, webhook.Options{
				HTTPAddr:         "127.0.0.1:" + port,
				MetricsAddr:      "", // off
				Manifests:        manifests,
				DefaultNamespace: "shop", // the Secrets are verbatim copies of config/samples, without a namespace
				Store:            "memory",
				RefreshGrace:     10 * time.Second,
				ShutdownTimeout:  5 * time.Second,
			})
		}()
		err := waitReady(ctx, "http://127.0.0.1:"+port+"/readyz", done)
		if err == nil {
			e.webhookPort, e.webhookAddr = port, "127.0.0.1:"+port
			t.Cleanup(func() {
				cancel()
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("the webhook stopped with an error: %v", err)
					}
				case <-time.After(10 * time.Second):
					t.Errorf("the webhook did not stop within 10s of its context's end")
				}
			})
			return
		}
		cancel()
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("starting the webhook: %v\nwebhook log:\n%s", lastErr, e.logs.String())
}

// waitReady polls url until it answers 200, Run returns (its error is the answer), or 10s pass.
func waitReady(ctx context.Context, url string, done <-chan error) error {
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last := "no answer yet"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err != nil {
			last = err.Error()
		} else {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		}
		select {
		case err := <-done:
			if err == nil {
				err = errors.New("webhook.Run returned before it was ready")
			}
			return err
		case <-deadline.C:
			return fmt.Errorf("%s did not answer 200 within 10s (last: %s)", url, last)
		case <-tick.C:
		}
	}
}

// fill replaces the ${NAME} placeholders of a template and fails the test if any is left.
func fill(t *testing.T, template string, values map[string]string) string {
	t.Helper()
	var pairs []string
	for k, v := range values {
		pairs = append(pairs, "${"+k+"}", v)
	}
	out := strings.NewReplacer(pairs...).Replace(template)
	if left := placeholder.FindString(out); left != "" {
		t.Fatalf("the placeholder %s is left unfilled", left)
	}
	return out
}

// placeholder is a ${NAME} the templates in testdata hold ("${...}" in their comments is not one).
var placeholder = regexp.MustCompile(`\$\{[A-Z_]+\}`)

// startNginx writes testdata/ingress-nginx-auth.conf, filled in, into a fresh prefix directory,
// checks it with nginx -t and runs nginx until the test ends.
func (e *env) startNginx() {
	t := e.t
	t.Helper()
	template, err := os.ReadFile(filepath.Join("testdata", "ingress-nginx-auth.conf"))
	if err != nil {
		t.Fatal(err)
	}
	// As root, nginx runs its workers as "nobody" (the configuration, like the controller's, has no
	// user directive). The master creates the cache and temporary directories inside the prefix and
	// hands them to nobody, but nobody must be able to reach them: t.TempDir's directories are
	// private (0700), so the prefix is a directory of its own, open for traversal.
	dir, err := os.MkdirTemp("", "authgate-e2e-nginx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e.nginxDir = dir
	_, checkPort, _ := net.SplitHostPort(e.checks.addr)

	var lastErr error
	for range bindAttempts {
		port := freePort(t)
		conf := fill(t, string(template), map[string]string{
			"LISTEN_ADDR":   "127.0.0.1:" + port,
			"APP_HOST":      appHost,
			"AUTHGATE_HOST": "127.0.0.1",
			"AUTHGATE_PORT": checkPort, // the counting proxy, which forwards to the webhook
			"LOGIN_HOST":    loginHost + ":" + e.webhookPort,
			"UPSTREAM_ADDR": e.upstream.addr,
		})
		confPath := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"-p", dir + "/", "-c", confPath, "-e", filepath.Join(dir, "error.log")}
		if out, err := exec.Command(nginxBin, append([]string{"-t"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("nginx -t refused the configuration (%v):\n%s\nconfiguration:\n%s", err, out, conf)
		}
		p, err := startProcess(exec.Command(nginxBin, args...))
		if err != nil {
			t.Fatalf("starting nginx: %v", err)
		}
		addr := "127.0.0.1:" + port
		if err = waitListening(addr, p); err == nil {
			e.nginxAddr, e.nginxPort = addr, port
			t.Cleanup(func() {
				if err := p.stop(5 * time.Second); err != nil {
					t.Errorf("stopping nginx: %v", err)
				}
			})
			return
		}
		_ = p.stop(5 * time.Second)
		lastErr = fmt.Errorf("%w\nnginx output:\n%s", err, p.output.String())
		if !strings.Contains(e.errorLog(), "Address already in use") {
			break
		}
	}
	t.Fatalf("starting nginx: %v\nerror.log:\n%s", lastErr, e.errorLog())
}

// errorLog returns nginx's error.log.
func (e *env) errorLog() string {
	if e.nginxDir == "" {
		return "(nginx was not started)"
	}
	b, err := os.ReadFile(filepath.Join(e.nginxDir, "error.log"))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return string(b)
}

// waitListening polls addr until it accepts connections, the process exits, or 10s pass.
func waitListening(addr string, p *process) error {
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("nginx exited before listening on %s: %v", addr, p.err)
		case <-deadline.C:
			return fmt.Errorf("nothing listens on %s after 10s", addr)
		case <-tick.C:
		}
	}
}

// process is a child process (nginx) that dies with the test binary.
type process struct {
	cmd    *exec.Cmd
	output *lockedBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's error, valid once done is closed
}

// startProcess starts cmd in a process group of its own, with SIGTERM as its parent-death signal so
// that a test binary that dies (a panic, a timeout) takes nginx with it. Linux sends that signal when
// the thread that started the process exits, not the process, so the process is started and waited
// for by one goroutine locked to its thread (as chromedp starts Chromium).
func startProcess(cmd *exec.Cmd) (*process, error) {
	p := &process{cmd: cmd, output: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.output, p.output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// stop asks nginx to stop (SIGTERM: fast shutdown of the master and its workers) and kills its
// process group if it has not exited within grace.
func (p *process) stop(grace time.Duration) error {
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL) // the group: the master and its workers, all ours
	<-p.done
	return fmt.Errorf("nginx (pid %d) ignored SIGTERM for %s and was killed", pid, grace)
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ---- the upstream application ----

// seenRequest is a request the upstream received, as it echoes it.
type seenRequest struct {
	Method  string      `json:"method"`
	URI     string      `json:"uri"` // the request URI, raw
	Host    string      `json:"host"`
	Headers http.Header `json:"headers"`
}

// upstream is the application behind nginx: it answers every request with a JSON echo of the
// method, URI, host and headers it received, and records them.
type upstream struct {
	addr string
	mu   sync.Mutex
	seen []seenRequest
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := seenRequest{Method: r.Method, URI: r.RequestURI, Host: r.Host, Headers: r.Header.Clone()}
		u.mu.Lock()
		u.seen = append(u.seen, rec)
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rec)
	}))
	t.Cleanup(srv.Close)
	u.addr = srv.Listener.Addr().String()
	return u
}

// byRequestID returns the requests the upstream received with this X-Request-ID.
func (u *upstream) byRequestID(id string) []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []seenRequest
	for _, r := range u.seen {
		if r.Headers.Get("X-Request-ID") == id {
			out = append(out, r)
		}
	}
	return out
}

// ---- the counting proxy between nginx and the webhook ----

// checkRecord is one check request nginx sent to the webhook, and the webhook's answer.
type checkRecord struct {
	OriginalURL string
	RequestID   string
	Status      int
	Header      http.Header // the answer's headers
}

// checkRecorder is a reverse proxy between nginx's auth-url and the webhook that records every
// check: a test sees how many checks reached the webhook (what nginx's auth cache kept away) and
// the exact headers of each answer.
type checkRecorder struct {
	addr    string
	mu      sync.Mutex
	records []checkRecord
}

func newCheckRecorder(t *testing.T, webhookAddr string) *checkRecorder {
	c := &checkRecorder{}
	target := &url.URL{Scheme: "http", Host: webhookAddr}
	transport := &http.Transport{Proxy: nil}
	proxy := &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// Forward what nginx sent, untouched: Rewrite starts without these.
			pr.Out.Host = pr.In.Host
			for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v, ok := pr.In.Header[h]; ok {
					pr.Out.Header[h] = v
				}
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.records = append(c.records, checkRecord{
				OriginalURL: resp.Request.Header.Get("X-Original-URL"),
				RequestID:   resp.Request.Header.Get("X-Request-ID"),
				Status:      resp.StatusCode,
				Header:      resp.Header.Clone(),
			})
			return nil
		},
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(func() {
		srv.Close()
		transport.CloseIdleConnections()
	})
	c.addr = srv.Listener.Addr().String()
	return c
}

// all returns a copy of the records so far.
func (c *checkRecorder) all() []checkRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.records)
}

// count returns how many checks of paths under prefix reached the webhook.
func (c *checkRecorder) count(e *env, prefix string) int {
	n := 0
	for _, r := range c.all() {
		if strings.HasPrefix(r.OriginalURL, e.appURL(prefix)) {
			n++
		}
	}
	return n
}

// byRequestID returns the checks made for the request with this X-Request-ID.
func (c *checkRecorder) byRequestID(id string) []checkRecord {
	var out []checkRecord
	for _, r := range c.all() {
		if r.RequestID == id {
			out = append(out, r)
		}
	}
	return out
}

func (c *checkRecorder) String() string {
	var b strings.Builder
	for i, r := range c.all() {
		fmt.Fprintf(&b, "  #%d %s (request id %s) -> %d", i, r.OriginalURL, r.RequestID, r.Status)
		for _, k := range []string{"Cache-Control", "Set-Cookie", "WWW-Authenticate", "X-User-Id", "X-User-Email", "X-User-Role"} {
			for _, v := range r.Header.Values(k) {
				if k == "Set-Cookie" {
					v = redactCookie(v)
				}
				fmt.Fprintf(&b, "; %s: %s", k, v)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// redactCookie hides a Set-Cookie value's secret, keeping its name and attributes.
func redactCookie(v string) string {
	name, rest, ok := strings.Cut(v, "=")
	if !ok {
		return v
	}
	value, attrs, _ := strings.Cut(rest, ";")
	if value != "" {
		value = "<" + strconv.Itoa(len(value)) + " bytes>"
	}
	return name + "=" + value + ";" + attrs
}

// verifyInvariants checks what PROTOCOLS.md requires of every answer to nginx, whatever the test
// did: never a 5xx for a decision; Cache-Control: no-store on every denial and on every answer that
// sets a cookie, so that nginx's auth cache never keeps them; at most one Set-Cookie (nginx 1.22
// keeps the first, 1.23+ joins several into one broken header); each identity header at most once.
func (c *checkRecorder) verifyInvariants(t *testing.T) {
	for i, r := range c.all() {
		what := fmt.Sprintf("check answer #%d (%s -> %d)", i, r.OriginalURL, r.Status)
		if r.Status >= 500 {
			t.Errorf("%s: a decision must never be a 5xx", what)
		}
		noStore := slices.ContainsFunc(r.Header.Values("Cache-Control"), func(v string) bool {
			return strings.Contains(strings.ToLower(v), "no-store")
		})
		if r.Status != http.StatusOK && !noStore {
			t.Errorf("%s: a denial without Cache-Control: no-store (got %q)", what, r.Header.Values("Cache-Control"))
		}
		cookies := r.Header.Values("Set-Cookie")
		if len(cookies) > 0 && !noStore {
			t.Errorf("%s: an answer with Set-Cookie without Cache-Control: no-store (got %q)", what, r.Header.Values("Cache-Control"))
		}
		if len(cookies) > 1 {
			t.Errorf("%s: %d Set-Cookie headers; nginx mode allows one", what, len(cookies))
		}
		for _, h := range identityHeaders {
			if n := len(r.Header.Values(h)); n > 1 {
				t.Errorf("%s: %s sent %d times; it must be sent at most once", what, h, n)
			}
		}
	}
}

// ---- HTTP clients ----

// newClient returns a client that reaches shop.example.com at nginx and auth.example.com at the
// webhook, whatever DNS says, and nothing else; it never follows redirects (tests follow them by
// hand and check each hop). With jar, it keeps cookies as a browser does.
func (e *env) newClient(jar bool) *http.Client {
	transport := &http.Transport{
		Proxy:             nil,
		DialContext:       e.dial,
		ForceAttemptHTTP2: false,
	}
	e.t.Cleanup(transport.CloseIdleConnections)
	c := &http.Client{
		Transport:     transport,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if jar {
		// No public suffix list is needed: example.com is not a public suffix, and a nil list lets
		// the jar accept Domain=example.com from auth.example.com, as a browser does.
		j, err := cookiejar.New(nil)
		if err != nil {
			e.t.Fatal(err)
		}
		c.Jar = j
	}
	return c
}

// dial sends shop.example.com to nginx and auth.example.com to the webhook, and refuses the rest.
func (e *env) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var target string
	switch {
	case host == appHost && port == e.nginxPort:
		target = e.nginxAddr
	case host == loginHost && port == e.webhookPort:
		target = e.webhookAddr
	default:
		return nil, fmt.Errorf("e2e: refusing to dial %s: the test knows only %s:%s and %s:%s",
			addr, appHost, e.nginxPort, loginHost, e.webhookPort)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, target)
}

// response is an answer with its body read.
type response struct {
	*http.Response
	Body string
}

// newRequestID returns a fresh X-Request-ID. nginx passes a client's X-Request-ID on to the check
// and to the upstream, which lets a test find both.
func (e *env) newRequestID() string {
	name := strings.NewReplacer("/", "-", " ", "_").Replace(e.t.Name())
	return fmt.Sprintf("e2e-%s-%d", name, e.requestIDs.Add(1))
}

// do sends req and reads the answer. Transport errors fail the test.
func (e *env) do(c *http.Client, req *http.Request) response {
	e.t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return response{Response: resp, Body: string(body)}
}

// get sends a GET with the headers given as name, value pairs, and an X-Request-ID, which it
// returns with the answer.
func (e *env) get(c *http.Client, u string, headerPairs ...string) (response, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(headerPairs); i += 2 {
		req.Header.Add(headerPairs[i], headerPairs[i+1])
	}
	id := e.newRequestID()
	req.Header.Set("X-Request-ID", id)
	return e.do(c, req), id
}

// post sends a POST with a body of the given content type.
func (e *env) post(c *http.Client, u, contentType, body string, headerPairs ...string) response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(headerPairs); i += 2 {
		req.Header.Add(headerPairs[i], headerPairs[i+1])
	}
	return e.do(c, req)
}

// expectStatus fails the test unless r has the status.
func (e *env) expectStatus(r response, want int, what string) {
	e.t.Helper()
	if r.StatusCode != want {
		e.t.Fatalf("%s: got %s, want %d %s\nheaders: %v\nbody: %.2000s", what, r.Status, want,
			http.StatusText(want), r.Header, r.Body)
	}
}

// ---- logging in ----

// loginForm is the login page's form.
type loginForm struct {
	title  string
	h1     string
	action string     // the form's action, resolved against the page's URL
	fields url.Values // every input with a name, with its value
}

// parseLoginForm reads the login page's title, heading and form.
func parseLoginForm(pageURL, body string) (loginForm, error) {
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		return loginForm{}, err
	}
	f := loginForm{fields: url.Values{}}
	forms := 0
	var walk func(n *html.Node, inForm bool)
	walk = func(n *html.Node, inForm bool) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "title":
				f.title = textOf(n)
			case "h1":
				f.h1 = textOf(n)
			case "form":
				forms++
				inForm = true
				f.action = attr(n, "action")
			case "input":
				if name := attr(n, "name"); inForm && name != "" {
					f.fields.Set(name, attr(n, "value"))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inForm)
		}
	}
	walk(doc, false)
	if forms != 1 {
		return f, fmt.Errorf("want one form on the login page, found %d", forms)
	}
	base, err := url.Parse(pageURL)
	if err != nil {
		return f, err
	}
	action, err := base.Parse(f.action)
	if err != nil {
		return f, fmt.Errorf("form action %q: %w", f.action, err)
	}
	f.action = action.String()
	return f, nil
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}

// openLoginPage GETs the login page at loginURL with c (which keeps its CSRF cookie) and returns
// its form.
func (e *env) openLoginPage(c *http.Client, loginURL string) (response, loginForm) {
	e.t.Helper()
	page, _ := e.get(c, loginURL, "Accept", browserAccept)
	e.expectStatus(page, http.StatusOK, "GET the login page")
	form, err := parseLoginForm(loginURL, page.Body)
	if err != nil {
		e.t.Fatalf("the login page: %v\n%s", err, page.Body)
	}
	return page, form
}

// submitLogin posts the login form with an email and a password, keeping its hidden fields.
func (e *env) submitLogin(c *http.Client, form loginForm, email, password string) response {
	e.t.Helper()
	values := url.Values{}
	for k, v := range form.fields {
		values[k] = slices.Clone(v)
	}
	values.Set("email", email)
	values.Set("password", password)
	return e.post(c, form.action, "application/x-www-form-urlencoded", values.Encode())
}

// browserLogin logs in as a browser does, through nginx: the application redirects to the login
// page, the form is posted, and the login redirects back. It returns the session cookie, which c's
// jar also holds.
func (e *env) browserLogin(c *http.Client, email, password string) *http.Cookie {
	e.t.Helper()
	original := e.appURL("/orders")
	r, _ := e.get(c, original, "Accept", browserAccept)
	e.expectStatus(r, http.StatusFound, "GET "+original+" without a session")
	_, form := e.openLoginPage(c, r.Header.Get("Location"))
	login := e.submitLogin(c, form, email, password)
	e.expectStatus(login, http.StatusSeeOther, "POST the login form")
	if loc := login.Header.Get("Location"); loc != original {
		e.t.Fatalf("the login redirects to %q, want %q", loc, original)
	}
	return e.sessionCookieOf(login.Response)
}

// sessionCookieOf returns the session cookie an answer sets, failing the test if there is none.
func (e *env) sessionCookieOf(resp *http.Response) *http.Cookie {
	e.t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	e.t.Fatalf("no %s cookie in %q", sessionCookie, resp.Header.Values("Set-Cookie"))
	return nil
}

// tokenAnswer is the JSON answer of a login with JSON.
type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// apiLogin logs in with JSON at the login host and returns the tokens.
func (e *env) apiLogin(email, password string) tokenAnswer {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	r := e.post(e.newClient(false), e.authURL("/auth/login?policy="+policyRef), "application/json", string(body))
	e.expectStatus(r, http.StatusOK, "POST /auth/login with JSON")
	var a tokenAnswer
	if err := json.Unmarshal([]byte(r.Body), &a); err != nil {
		e.t.Fatalf("the JSON login's answer: %v\n%s", err, r.Body)
	}
	if a.AccessToken == "" || a.RefreshToken == "" || a.TokenType != "Bearer" {
		e.t.Fatalf("the JSON login's answer lacks tokens: %s", r.Body)
	}
	return a
}

// apiLogout logs out with JSON at the login host: body is the JSON body, cookie a Cookie header
// (or "").
func (e *env) apiLogout(body, cookie string) response {
	e.t.Helper()
	var headers []string
	if cookie != "" {
		headers = append(headers, "Cookie", cookie)
	}
	r := e.post(e.newClient(false), e.authURL("/auth/logout?policy="+policyRef), "application/json", body, headers...)
	e.expectStatus(r, http.StatusOK, "POST /auth/logout with JSON")
	return r
}

// ---- assertions ----

// expectIdentity fails the test unless the headers hold each identity header exactly once with the
// wanted value, and none of the identity headers want leaves out.
func expectIdentity(t *testing.T, what string, h http.Header, want map[string]string) {
	t.Helper()
	for _, name := range identityHeaders {
		got := h.Values(name)
		if w, ok := want[name]; ok {
			if len(got) != 1 || got[0] != w {
				t.Errorf("%s: %s = %q, want exactly [%q]", what, name, got, w)
			}
		} else if len(got) != 0 {
			t.Errorf("%s: %s = %q, want none", what, name, got)
		}
	}
}

// upstreamSaw returns the one request the upstream received with this request id.
func (e *env) upstreamSaw(id string) seenRequest {
	e.t.Helper()
	seen := e.upstream.byRequestID(id)
	if len(seen) != 1 {
		e.t.Fatalf("the upstream received %d requests with X-Request-ID %s, want 1", len(seen), id)
	}
	return seen[0]
}

// pollUntil calls cond every interval until it reports done, and reports false if timeout passes
// first. It is how tests wait: never a bare sleep.
func pollUntil(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
	return true
}
