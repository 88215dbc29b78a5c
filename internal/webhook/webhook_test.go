package webhook_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/internal/webhook"
)

func TestParseFlagsDefaults(t *testing.T) {
	var out bytes.Buffer
	got, err := webhook.ParseFlags([]string{"--manifests", "/etc/authgate"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	want := webhook.Options{
		HTTPAddr:               ":8080",
		GRPCAddr:               ":9001",
		MetricsAddr:            ":9090",
		Manifests:              "/etc/authgate",
		DefaultNamespace:       "default",
		Store:                  "memory",
		RefreshGrace:           10 * time.Second,
		CacheSize:              100_000,
		MaxStaleness:           30 * time.Second,
		StoreCheckTimeout:      150 * time.Millisecond,
		LoginsPerMinuteIP:      10,
		LoginsPerMinuteAccount: 5,
		ShutdownTimeout:        15 * time.Second,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseFlags = %+v\nwant          %+v", got, want)
	}
	if out.Len() != 0 {
		t.Errorf("ParseFlags wrote %q", out.String())
	}
}

func TestParseFlagsReadsEveryFlag(t *testing.T) {
	got, err := webhook.ParseFlags([]string{
		"--http-addr", "127.0.0.1:1", "--grpc-addr", "", "--metrics-addr", "", "--manifests", "m", "--default-namespace", "ns",
		"--store", "memory", "--secret-key-file", "/k", "--trust-forwarded-for", "--refresh-grace", "1m",
		"--shutdown-timeout", "3s", "--log-development", "--cache-size", "7", "--cache-max-staleness", "5s",
		"--store-check-timeout", "80ms", "--otlp-endpoint", "http://otel-collector:4317",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := webhook.Options{
		HTTPAddr: "127.0.0.1:1", GRPCAddr: "", MetricsAddr: "", Manifests: "m", DefaultNamespace: "ns", Store: "memory",
		SecretKeyFile: "/k", TrustForwarded: true, RefreshGrace: time.Minute, ShutdownTimeout: 3 * time.Second,
		LogDevelopment: true, CacheSize: 7, MaxStaleness: 5 * time.Second, StoreCheckTimeout: 80 * time.Millisecond,
		LoginsPerMinuteIP: 10, LoginsPerMinuteAccount: 5, OTLPEndpoint: "http://otel-collector:4317",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseFlags = %+v\nwant          %+v", got, want)
	}
}

// TestParseFlagsClusterMode: without --manifests, policies come from the cluster.
func TestParseFlagsClusterMode(t *testing.T) {
	cases := map[string]struct {
		args       []string
		kubeconfig string
	}{
		"no flags":     {nil, ""},
		"--kubeconfig": {[]string{"--kubeconfig", "/etc/kube/config"}, "/etc/kube/config"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := webhook.ParseFlags(tc.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if got.Manifests != "" || got.Kubeconfig != tc.kubeconfig {
				t.Errorf("Manifests %q, Kubeconfig %q; want none and %q", got.Manifests, got.Kubeconfig, tc.kubeconfig)
			}
		})
	}
}

func TestParseFlagsRefuses(t *testing.T) {
	cases := map[string]struct {
		args []string
		// want are substrings of the error.
		want []string
	}{
		"kubeconfig and folder":  {[]string{"--manifests", "m", "--kubeconfig", "k"}, []string{"--manifests and --kubeconfig exclude each other"}},
		"redis without a server": {[]string{"--manifests", "m", "--store", "redis"}, []string{"--store redis needs --redis-url or --redis-addrs"}},
		"redis URL and addrs":    {[]string{"--manifests", "m", "--store", "redis", "--redis-url", "redis://127.0.0.1:1", "--redis-addrs", "127.0.0.1:2"}, []string{"--store redis"}},
		"TLS key without cert":   {[]string{"--manifests", "m", "--grpc-tls-key-file", "k"}, []string{"--grpc-tls-cert-file and --grpc-tls-key-file go together"}},
		"unknown store":          {[]string{"--manifests", "m", "--store", "etcd"}, []string{`--store "etcd"`, "memory or redis"}},
		"grace above a minute":   {[]string{"--manifests", "m", "--refresh-grace", "2m"}, []string{"--refresh-grace", "2m0s", "between 0s and 1m"}},
		"negative cache size":    {[]string{"--manifests", "m", "--cache-size", "-1"}, []string{"--cache-size -1", "must not be negative"}},
		"zero staleness":         {[]string{"--manifests", "m", "--cache-max-staleness", "0s"}, []string{"--cache-max-staleness 0s", "more than 0s"}},
		"zero store timeout":     {[]string{"--manifests", "m", "--store-check-timeout", "0s"}, []string{"--store-check-timeout 0s", "between 1ms and 10s"}},
		"negative grace":         {[]string{"--manifests", "m", "--refresh-grace", "-1s"}, []string{"--refresh-grace", "-1s"}},
		"grace not a duration":   {[]string{"--manifests", "m", "--refresh-grace", "ten"}, []string{"refresh-grace", "ten"}},
		"unexpected argument":    {[]string{"--manifests", "m", "serve"}, []string{"unexpected arguments", "serve"}},
		"argument before flags":  {[]string{"serve", "--manifests", "m"}, []string{"unexpected arguments", "serve"}},
		"unknown flag":           {[]string{"--manifests", "m", "--redis-addr", "x"}, []string{"redis-addr"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := webhook.ParseFlags(tc.args, io.Discard)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestMainExitCodes(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := webhook.Main([]string{"--manifests", "m", "--store", "etcd"}, strings.NewReader(""), &out, &errOut); code != 2 {
		t.Errorf("bad flags: exit %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), `--store "etcd"`) {
		t.Errorf("bad flags: stderr %q does not say why", errOut.String())
	}

	out.Reset()
	errOut.Reset()
	if code := webhook.Main([]string{"-h"}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Errorf("-h: exit %d, want 0", code)
	}
	if !strings.Contains(errOut.String()+out.String(), "-manifests") {
		t.Errorf("-h printed no usage: %q", errOut.String()+out.String())
	}
}

func TestHashPassword(t *testing.T) {
	var out, errOut bytes.Buffer
	code := webhook.Main([]string{"hash-password"}, strings.NewReader("s3cret\n"), &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	hash, ok := strings.CutSuffix(out.String(), "\n")
	if !ok || strings.Contains(hash, "\n") {
		t.Fatalf("stdout %q, want one line", out.String())
	}
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil || cost != 12 {
		t.Errorf("cost %d (%v), want 12", cost, err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("s3cret")); err != nil {
		t.Errorf("the hash does not match the password: %v", err)
	}
	// The line end is not part of the password.
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte("s3cret\n")) == nil {
		t.Error("the hash includes the newline")
	}
	if errOut.Len() != 0 {
		t.Errorf("stderr %q", errOut.String())
	}
}

func TestHashPasswordRefuses(t *testing.T) {
	cases := map[string]struct {
		stdin string
		want  string
	}{
		"empty stdin":        {"", "no password"},
		"only a newline":     {"\n", "no password"},
		"longer than 72":     {strings.Repeat("p", 73) + "\n", "72"},
		"far longer than 72": {strings.Repeat("p", 4096), "72"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := webhook.Main([]string{"hash-password"}, strings.NewReader(tc.stdin), &out, &errOut); code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("stderr %q does not mention %q", errOut.String(), tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("stdout %q, want nothing", out.String())
			}
		})
	}
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// samples copies config/samples into a new folder and returns it.
func samples(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	const from = "../../config/samples"
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("no manifests in %s", from)
	}
	return dir
}

// run is webhook.Run in a goroutine.
type run struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func startRun(t testing.TB, opts webhook.Options) *run {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = webhook.Run(ctx, opts)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(opts.ShutdownTimeout + 5*time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	return r
}

// wait returns Run's error, failing the test if Run does not return within d.
func (r *run) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(d):
		t.Fatalf("Run did not return within %v", d)
		return nil
	}
}

func options(t *testing.T, dir string) webhook.Options {
	t.Helper()
	opts, err := webhook.ParseFlags([]string{
		"--manifests", dir, "--http-addr", freeAddr(t), "--metrics-addr", freeAddr(t), "--grpc-addr", freeAddr(t), "--shutdown-timeout", "5s",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

// client talks to the webhook without keeping connections, so that each request shows whether the
// server still accepts them.
var client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func get(t testing.TB, url string, header map[string]string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// waitReady polls /readyz until it answers 200.
func waitReady(t *testing.T, r *run, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, _, err := get(t, "http://"+addr+"/readyz", nil)
		if err == nil && resp.StatusCode == http.StatusOK {
			return
		}
		select {
		case <-r.done:
			t.Fatalf("Run returned before it was ready: %v", r.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not ready after 10s: %v %v", resp, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metricSample returns the value of the sample of name whose labels include every one of labels
// (`key="value"`), or "" when there is none.
func metricSample(body, name string, labels ...string) string {
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name+"{")
		if !ok {
			continue
		}
		set, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		all := true
		for _, l := range labels {
			if !strings.Contains(","+set+",", ","+l+",") {
				all = false
			}
		}
		if all {
			return value
		}
	}
	return ""
}

func TestRun(t *testing.T) {
	opts := options(t, samples(t))
	r := startRun(t, opts)
	base := "http://" + opts.HTTPAddr
	waitReady(t, r, opts.HTTPAddr)

	resp, body, err := get(t, base+"/healthz", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %v %v %q", resp, err, body)
	}

	// The status sample is Public: anyone passes, and the answer is an nginx allow.
	resp, body, err = get(t, base+"/check/nginx?policy=default/status", map[string]string{
		"X-Original-URL": "https://status.example.com/incidents?x=1", "X-Original-Method": "GET",
	})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("nginx check of default/status: %v %v %q", resp, err, body)
	}
	// A Session rule without a session is a 401 for nginx to turn into the login redirect.
	resp, body, err = get(t, base+"/check/nginx?policy=default/shop", map[string]string{
		"X-Original-URL": "https://shop.example.com/orders", "X-Original-Method": "GET",
	})
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("nginx check of default/shop without a session: %v %v %q", resp, err, body)
	}
	// The login endpoints are served too.
	resp, _, err = get(t, base+"/auth/login?policy=default/shop", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("login page: %v %v", resp, err)
	}

	resp, metrics, err := get(t, "http://"+opts.MetricsAddr+"/metrics", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %v %v", resp, err)
	}
	if v := metricSample(metrics, "authgate_decisions_total", `policy="default/status"`, `protocol="nginx"`, `outcome="allow"`, `mode="Public"`); v != "1" {
		t.Errorf("authgate_decisions_total for the status check = %q, want 1; metrics:\n%s", v, grepLines(metrics, "authgate_"))
	}
	if v := metricSample(metrics, "authgate_decisions_total", `policy="default/shop"`, `outcome="unauthenticated"`, `mode="Session"`); v != "1" {
		t.Errorf("authgate_decisions_total for the shop check = %q, want 1", v)
	}
	if v := metricSample(metrics, "authgate_check_duration_seconds_count", `protocol="nginx"`); v != "2" {
		t.Errorf("authgate_check_duration_seconds_count = %q, want 2", v)
	}

	r.cancel()
	if err := r.wait(t, opts.ShutdownTimeout+2*time.Second); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if resp, _, err := get(t, base+"/readyz", nil); err == nil {
		t.Errorf("/readyz still answers after Run returned: %d", resp.StatusCode)
	}
	if resp, _, err := get(t, "http://"+opts.MetricsAddr+"/metrics", nil); err == nil {
		t.Errorf("/metrics still answers after Run returned: %d", resp.StatusCode)
	}
}

const brokenPolicy = `apiVersion: authgate.dev/v1
kind: AuthPolicy
metadata:
  name: broken
spec:
  hosts: [broken.example.com]
  rules:
  - name: everything
    mode: Cookie
`

func TestRunRefusesABrokenPolicy(t *testing.T) {
	dir := samples(t)
	if err := os.WriteFile(filepath.Join(dir, "zz-broken.yaml"), []byte(brokenPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := options(t, dir)
	err := startRun(t, opts).wait(t, 10*time.Second)
	if err == nil {
		t.Fatal("Run accepted a folder with a broken policy")
	}
	for _, want := range []string{"zz-broken.yaml", "spec.rules[0].mode"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if _, _, err := get(t, "http://"+opts.HTTPAddr+"/healthz", nil); err == nil {
		t.Error("a Run that failed left its HTTP server answering")
	}
}

func TestRunRefusesAMissingFolder(t *testing.T) {
	opts := options(t, filepath.Join(t.TempDir(), "nope"))
	if err := startRun(t, opts).wait(t, 10*time.Second); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("Run on a missing folder: %v", err)
	}
}

// TestRunReleasesItsListenersWhenOneFails: when Run returns an error, nothing it started may keep
// serving (the store it served from is closed by then, and the port stays taken).
func TestRunReleasesItsListenersWhenOneFails(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	opts := options(t, samples(t))
	opts.MetricsAddr = busy.Addr().String()
	err = startRun(t, opts).wait(t, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Fatalf("Run with a metrics address in use: %v, want an error naming it", err)
	}
	if resp, _, err := get(t, "http://"+opts.HTTPAddr+"/healthz", nil); err == nil {
		t.Errorf("Run returned %q but left its HTTP server on %s answering (%d)", "listening on "+opts.MetricsAddr, opts.HTTPAddr, resp.StatusCode)
	}
}

func grepLines(s, substr string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if strings.Contains(line, substr) {
			b.WriteString(line)
		}
	}
	return b.String()
}
