package harness

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// startNginx writes the reference configuration of o, filled in, into a fresh prefix directory,
// checks it with nginx -t and runs nginx until the test ends.
func (e *Env) startNginx(o Options) {
	t := e.t
	t.Helper()
	b, err := os.ReadFile(o.NginxConfig)
	if err != nil {
		t.Fatal(err)
	}
	template := string(b)
	if len(o.AuthResponseHeaders) > 0 {
		if template, err = RenderAuthResponseHeaders(template, o.AuthResponseHeaders); err != nil {
			t.Fatalf("%s: %v", o.NginxConfig, err)
		}
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
	_, checkPort, _ := net.SplitHostPort(e.Checks.Addr)

	var lastErr error
	for range bindAttempts {
		port := FreePort(t)
		conf := Fill(t, template, map[string]string{
			"LISTEN_ADDR":   "127.0.0.1:" + port,
			"APP_HOST":      AppHost,
			"AUTHGATE_HOST": "127.0.0.1",
			"AUTHGATE_PORT": checkPort, // the recording proxy, which forwards to the webhook
			"LOGIN_HOST":    LoginHost + ":" + e.WebhookPort,
			"UPSTREAM_ADDR": e.Upstream.Addr,
		})
		confPath := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"-p", dir + "/", "-c", confPath, "-e", filepath.Join(dir, "error.log")}
		if out, err := exec.Command(NginxBin, append([]string{"-t"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("nginx -t refused the configuration (%v):\n%s\nconfiguration:\n%s", err, out, conf)
		}
		p, err := startProcess(exec.Command(NginxBin, args...))
		if err != nil {
			t.Fatalf("starting nginx: %v", err)
		}
		addr := "127.0.0.1:" + port
		if err = waitListening(addr, p); err == nil {
			e.NginxAddr, e.NginxPort = addr, port
			t.Cleanup(func() {
				if err := p.stop(5 * time.Second); err != nil {
					t.Errorf("stopping nginx: %v", err)
				}
			})
			return
		}
		_ = p.stop(5 * time.Second)
		lastErr = fmt.Errorf("%w\nnginx output:\n%s", err, p.output.String())
		if !strings.Contains(e.ErrorLog(), "Address already in use") {
			break
		}
	}
	t.Fatalf("starting nginx: %v\nerror.log:\n%s", lastErr, e.ErrorLog())
}

// RenderAuthResponseHeaders adds headers to the auth-response-headers of the reference
// configuration's "/" and "/api/" locations, as the ingress-nginx controller renders a longer
// annotation: for the i-th header an auth_request_set of $authHeader<i> from the check answer's
// header, and a proxy_set_header that always sets it (an empty value removes the client's copy).
// The headers are added after the reference configuration's three (X-User-Id, X-User-Email,
// X-User-Role); it fails unless both locations have them.
func RenderAuthResponseHeaders(conf string, headers []string) (string, error) {
	const anchor = "proxy_set_header    'X-User-Role' $authHeader2;\n"
	if n := strings.Count(conf, anchor); n != 2 {
		return "", fmt.Errorf("want the X-User-Role line of auth-response-headers in 2 locations, found %d", n)
	}
	var b strings.Builder
	b.WriteString(anchor)
	for i, h := range headers {
		v := "$authHeader" + strconv.Itoa(3+i)
		variable := "$upstream_http_" + strings.ReplaceAll(strings.ToLower(h), "-", "_")
		fmt.Fprintf(&b, "            auth_request_set    %s %s;\n", v, variable)
		fmt.Fprintf(&b, "            proxy_set_header    '%s' %s;\n", h, v)
	}
	return strings.ReplaceAll(conf, anchor, b.String()), nil
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
	output *LockedBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's error, valid once done is closed
}

// startProcess starts cmd in a process group of its own, with SIGTERM as its parent-death signal so
// that a test binary that dies (a panic, a timeout) takes nginx with it. Linux sends that signal when
// the thread that started the process exits, not the process, so the process is started and waited
// for by one goroutine locked to its thread (as chromedp starts Chromium).
func startProcess(cmd *exec.Cmd) (*process, error) {
	p := &process{cmd: cmd, output: &LockedBuffer{}, done: make(chan struct{})}
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

// LockedBuffer is a bytes.Buffer safe for concurrent writers.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// WriteString appends s.
func (b *LockedBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
