package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/store/redistest"
	"github.com/authgate/authgate/internal/testenv"
	"github.com/authgate/authgate/test/harness"
)

// sigtermConf is nginx in front of two webhook replicas, as an ingress controller reaches the
// endpoints of the webhook's Service: a check that cannot be sent to one replica (connection
// refused or reset) goes to the other, as nginx's proxy_next_upstream does.
const sigtermConf = `
worker_processes 1;
pid ${DIR}/nginx.pid;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${DIR}/body;
  proxy_temp_path ${DIR}/proxy;
  upstream authgate {
    server 127.0.0.1:${A} max_fails=0;
    server 127.0.0.1:${B} max_fails=0;
  }
  server {
    listen 127.0.0.1:${PORT};
    location = /_auth {
      internal;
      proxy_pass http://authgate/check/nginx?policy=default/shop;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URL https://$http_host$request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_next_upstream error timeout;
      proxy_next_upstream_tries 2;
      proxy_connect_timeout 2s;
    }
    location / {
      auth_request /_auth;
      proxy_pass http://127.0.0.1:${APP};
    }
  }
}
`

// TestSIGTERMBehindNginx sends SIGTERM to one of two webhook processes (the real binary, on a
// shared Redis) while clients stream guarded requests through a real nginx: nginx sees zero failed
// checks, the stopped replica exits cleanly, and the other carries on alone.
func TestSIGTERMBehindNginx(t *testing.T) {
	harness.RequireFile(t, harness.NginxBin, "nginx-light")
	dir := t.TempDir()
	bin := filepath.Join(dir, "webhook")
	build := exec.Command("go", "build", "-o", bin, "./cmd/webhook")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the webhook: %v\n%s", err, out)
	}
	redis := redistest.StartServer(t)
	key := filepath.Join(dir, "secret-key")
	if err := os.WriteFile(key, bytes.Repeat([]byte("k"), 48), 0o600); err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "app") }))
	defer app.Close()

	type replica struct {
		addr    string
		cmd     *exec.Cmd
		log     bytes.Buffer
		exited  chan error
		metrics string
	}
	start := func() *replica {
		r := &replica{addr: "127.0.0.1:" + harness.FreePort(t), metrics: "127.0.0.1:" + harness.FreePort(t), exited: make(chan error, 1)}
		r.cmd = exec.Command(bin, "--manifests", filepath.Join("..", "..", "config", "samples"), "--http-addr", r.addr,
			"--grpc-addr", "", "--metrics-addr", r.metrics, "--store", "redis", "--redis-addrs", redis.Addr,
			"--secret-key-file", key, "--shutdown-timeout", "5s")
		r.cmd.Stdout, r.cmd.Stderr = &r.log, &r.log
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { r.exited <- r.cmd.Wait() }()
		t.Cleanup(func() {
			_ = r.cmd.Process.Kill()
			if t.Failed() {
				t.Logf("webhook %s log:\n%s", r.addr, r.log.String())
			}
		})
		testenv.Eventually(t, 30*time.Second, func() string {
			resp, err := http.Get("http://" + r.addr + "/readyz")
			if err != nil {
				return err.Error()
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return "readyz " + resp.Status
			}
			return ""
		})
		return r
	}
	a, b := start(), start()

	nginxDir := filepath.Join(dir, "nginx")
	for _, sub := range []string{"body", "proxy"} {
		if err := os.MkdirAll(filepath.Join(nginxDir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	port := harness.FreePort(t)
	conf := harness.Fill(t, sigtermConf, map[string]string{"DIR": nginxDir, "A": portOf(a.addr), "B": portOf(b.addr),
		"PORT": port, "APP": portOf(strings.TrimPrefix(app.URL, "http://"))})
	confPath := filepath.Join(nginxDir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	nginx := exec.Command(harness.NginxBin, "-p", nginxDir+"/", "-c", confPath, "-e", filepath.Join(nginxDir, "error.log"), "-g", "daemon off;")
	var nginxOut bytes.Buffer
	nginx.Stdout, nginx.Stderr = &nginxOut, &nginxOut
	if err := nginx.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = nginx.Process.Signal(syscall.SIGQUIT)
		_ = nginx.Wait()
		if t.Failed() {
			errLog, _ := os.ReadFile(filepath.Join(nginxDir, "error.log"))
			t.Logf("nginx: %s\nerror.log:\n%s", nginxOut.String(), errLog)
		}
	})

	// A session, made on replica B: both replicas share it through Redis.
	resp, err := http.Post("http://"+b.addr+"/auth/login?policy=default/shop", "application/json",
		strings.NewReader(fmt.Sprintf(`{"email":%q,"password":%q}`, harness.AdminEmail, harness.AdminPassword)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == harness.SessionCookie {
			cookie = c.Name + "=" + c.Value
		}
	}
	if resp.StatusCode != http.StatusOK || cookie == "" {
		t.Fatalf("login: %s, cookie %q", resp.Status, cookie)
	}
	get := func(c *http.Client, withCookie bool) (int, error) {
		req, _ := http.NewRequest("GET", "http://127.0.0.1:"+port+"/orders", nil)
		req.Host = harness.AppHost
		if withCookie {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	client := &http.Client{Timeout: 30 * time.Second}
	testenv.Eventually(t, 30*time.Second, func() string {
		if status, err := get(client, true); err != nil || status != http.StatusOK {
			return fmt.Sprintf("nginx is not passing the session: %d %v", status, err)
		}
		return ""
	})
	if status, err := get(client, false); err != nil || status != http.StatusUnauthorized {
		t.Fatalf("without the session nginx answered %d %v, want 401: the checks do not decide", status, err)
	}

	// The stream: four clients, each request a check on one of the replicas.
	var stop atomic.Bool
	var total, before atomic.Int64
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c := &http.Client{Timeout: 30 * time.Second}
			for !stop.Load() {
				status, err := get(c, true)
				total.Add(1)
				if err != nil || status != http.StatusOK {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%d %v", status, err))
					mu.Unlock()
				}
			}
		})
	}
	testenv.Eventually(t, 60*time.Second, func() string {
		if n := total.Load(); n < 300 || decisions(t, a.metrics) == 0 {
			return fmt.Sprintf("%d requests so far, replica A decided %v", n, decisions(t, a.metrics))
		}
		return ""
	})
	decidedByA := decisions(t, a.metrics)
	before.Store(total.Load())
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-a.exited:
		if err != nil {
			t.Errorf("replica A exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("replica A did not exit within 30s of SIGTERM")
	}
	target := total.Load() + 300
	testenv.Eventually(t, 60*time.Second, func() string {
		if n := total.Load(); n < target {
			return fmt.Sprintf("%d requests, waiting for %d", n, target)
		}
		return ""
	})
	stop.Store(true)
	wg.Wait()
	t.Logf("%d guarded requests through nginx (%d before SIGTERM; replica A decided %v checks), %d failed",
		total.Load(), before.Load(), decidedByA, len(failures))
	if len(failures) > 0 {
		t.Errorf("nginx saw %d failed checks around the SIGTERM, first: %s", len(failures), failures[0])
	}
}

func portOf(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		panic(err)
	}
	return port
}

// decisions is the number of checks a replica has decided, from its /metrics.
func decisions(t *testing.T, metricsAddr string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "authgate_decisions_total{") {
			fields := strings.Fields(line)
			v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
			if err == nil {
				sum += v
			}
		}
	}
	return sum
}
