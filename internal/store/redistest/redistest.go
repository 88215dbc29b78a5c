// Package redistest starts real Redis processes for tests: a standalone redis-server, a
// redis-sentinel watching one, or a Redis Cluster of several nodes. It runs the Debian binaries
// (/usr/bin/redis-server, redis-sentinel, redis-cli; `make test` installs them), binds everything to
// 127.0.0.1 on free ports, keeps each process's files in a temporary directory of the test, and
// stops every process, with its process group, when the test ends.
//
// It does not skip a test when a binary is missing: it fails with the name of the Debian package.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Binaries, with the Debian package that provides each.
const (
	ServerBinary   = "/usr/bin/redis-server"   // redis-server
	SentinelBinary = "/usr/bin/redis-sentinel" // redis-sentinel
	CLIBinary      = "/usr/bin/redis-cli"      // redis-tools
)

// startTimeout bounds the wait for a process to answer PING, and for a cluster to form.
const startTimeout = 15 * time.Second

// stopTimeout bounds the wait for a process to exit after SIGTERM before it is killed.
const stopTimeout = 10 * time.Second

// Server is one redis-server or redis-sentinel process. Stop and Start may be called any number
// of times; the process keeps its port and directory, so a restarted server reloads what it had
// persisted there.
type Server struct {
	// Addr is "127.0.0.1:<Port>".
	Addr string
	Port int
	// Dir is the process's working directory: its configuration, data and log file.
	Dir string

	t    testing.TB
	bin  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartServer starts a redis-server on a free port of 127.0.0.1, without persistence (save ""
// and appendonly no) unless args, which are passed after the defaults ("--appendonly", "yes"),
// say otherwise. It is stopped when the test ends.
func StartServer(t testing.TB, args ...string) *Server {
	t.Helper()
	return startOnFreePort(t, ServerBinary, func(s *Server) []string {
		return append(serverArgs(s), args...)
	})
}

// serverArgs are the arguments of every redis-server: its port on 127.0.0.1, its directory and log
// file, no persistence, in the foreground.
func serverArgs(s *Server) []string {
	return []string{
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--dir", s.Dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--logfile", filepath.Join(s.Dir, "redis.log"),
	}
}

// StartSentinel starts a redis-sentinel on a free port that monitors master under the name
// masterName with a quorum of 1, and waits until it reports the master's address. It is stopped
// when the test ends.
func StartSentinel(t testing.TB, master *Server, masterName string) *Server {
	t.Helper()
	s := startOnFreePort(t, SentinelBinary, func(s *Server) []string {
		conf := filepath.Join(s.Dir, "sentinel.conf")
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\nlogfile %s\n"+
			"sentinel resolve-hostnames no\nsentinel monitor %s 127.0.0.1 %d 1\n",
			s.Port, s.Dir, filepath.Join(s.Dir, "redis.log"), masterName, master.Port)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatalf("redistest: write sentinel config: %v", err)
		}
		return []string{conf}
	})
	deadline := time.Now().Add(startTimeout)
	for {
		reply, err := Command(s.Addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName)
		if err == nil && strings.Contains(reply, strconv.Itoa(master.Port)) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: sentinel %s does not know master %q: %q, %v\n%s", s.Addr, masterName, reply, err, s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Cluster is a Redis Cluster of masters without replicas.
type Cluster struct {
	Nodes []*Server
	// Addrs are the nodes' addresses, the seed list of a cluster client.
	Addrs []string
}

// StartCluster starts n (at least 3) cluster-enabled redis-servers, each with the extra
// arguments args, joins them with `redis-cli --cluster create` (as the default user), and waits
// until every node reports cluster_state:ok and knows every node. The nodes are stopped when the
// test ends.
func StartCluster(t testing.TB, n int, args ...string) *Cluster {
	t.Helper()
	if n < 3 {
		t.Fatalf("redistest: a Redis Cluster needs at least 3 masters, not %d", n)
	}
	c := &Cluster{}
	for range n {
		node := startOnFreePort(t, ServerBinary, func(s *Server) []string {
			// The cluster bus needs a port of its own; the default, port+10000, may be taken or
			// out of range.
			bus := FreePort(t)
			for bus == s.Port {
				bus = FreePort(t)
			}
			return append(append(serverArgs(s), "--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
				"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"), args...)
		})
		c.Nodes = append(c.Nodes, node)
		c.Addrs = append(c.Addrs, node.Addr)
	}
	if _, err := os.Stat(CLIBinary); err != nil {
		t.Fatalf("redistest: %s is missing: install the Debian package redis-tools", CLIBinary)
	}
	create := append([]string{"--cluster", "create"}, c.Addrs...)
	create = append(create, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, CLIBinary, create...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(startTimeout)
	for _, node := range c.Nodes {
		for {
			info, err := Command(node.Addr, "CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", n)) &&
				strings.Contains(info, "cluster_slots_ok:16384") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster node %s is not ready: %q, %v\n%s", node.Addr, info, err, node.logTail())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return c
}

// FreePort returns a TCP port of 127.0.0.1 that nothing listened on a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startOnFreePort starts bin with the arguments args returns for a new Server, retrying on
// another port when the first one was taken meanwhile.
func startOnFreePort(t testing.TB, bin string, args func(*Server) []string) *Server {
	t.Helper()
	if _, err := os.Stat(bin); err != nil {
		pkg := map[string]string{ServerBinary: "redis-server", SentinelBinary: "redis-sentinel"}[bin]
		t.Fatalf("redistest: %s is missing: install the Debian package %s", bin, pkg)
	}
	var lastErr error
	for range 3 {
		dir, err := os.MkdirTemp("", "redistest-")
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
		s := &Server{t: t, bin: bin, Dir: dir}
		s.Port = FreePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
		s.args = args(s)
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("redistest: start %s: %v", bin, lastErr)
	return nil
}

// Start starts the stopped server again, on its port and in its directory.
func (s *Server) Start() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatalf("redistest: %s is running already", s.Addr)
	}
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart %s: %v", s.Addr, err)
	}
}

func (s *Server) start() error {
	log, err := os.OpenFile(filepath.Join(s.Dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, so that Stop reaches anything it forks (a background save).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(startTimeout)
	for {
		reply, err := Command(s.Addr, "PING")
		if err == nil && reply == "PONG" {
			return nil
		}
		select {
		case <-done:
			s.cmd, s.done = nil, nil
			return fmt.Errorf("%s exited at start\n%s", s.bin, s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("%s does not answer PING on %s: %v\n%s", s.bin, s.Addr, err, s.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop ends the process and its process group: SIGTERM (redis-server then flushes its append-only
// file), SIGKILL if it has not exited within 10 seconds. It returns once the port is free again.
// Stopping a stopped server does nothing.
func (s *Server) Stop() { s.stop(syscall.SIGTERM) }

// Kill ends the process and its process group with SIGKILL, as a crash would, and returns once
// the port is free again.
func (s *Server) Kill() { s.stop(syscall.SIGKILL) }

func (s *Server) stop(sig syscall.Signal) {
	s.t.Helper()
	if s.cmd == nil {
		return
	}
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGCONT) // a paused process ignores SIGTERM until continued
	_ = syscall.Kill(-pgid, sig)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
	}
	// A forked child (a background save) may outlive the parent: end the whole group.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	s.cmd, s.done = nil, nil
	deadline := time.Now().Add(stopTimeout)
	for {
		l, err := net.Listen("tcp", s.Addr)
		if err == nil {
			_ = l.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Errorf("redistest: port of %s still taken after the process ended: %v", s.Addr, err)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Pause stops the process (SIGSTOP) without closing its connections: clients then wait for
// answers that do not come, as with a hung server or a network partition. Resume continues it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused process (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	if s.cmd == nil {
		s.t.Fatalf("redistest: %s is not running", s.Addr)
	}
	if err := syscall.Kill(-s.cmd.Process.Pid, sig); err != nil {
		s.t.Fatalf("redistest: signal %s: %v", s.Addr, err)
	}
}

// Running reports whether the process is running.
func (s *Server) Running() bool { return s.cmd != nil }

// logTail returns the end of the process's log, for failure messages.
func (s *Server) logTail() string {
	var out []byte
	for _, name := range []string{"redis.log", "stdout.log"} {
		b, _ := os.ReadFile(filepath.Join(s.Dir, name))
		out = append(out, b...)
	}
	if len(out) > 4000 {
		out = out[len(out)-4000:]
	}
	return string(out)
}

// Command sends one command to the Redis or Sentinel at addr on a new connection and returns its
// reply: a simple or bulk string as is, an integer in decimal, an array's elements joined by
// newlines (nested arrays flattened), a nil as "". A Redis error reply is an error.
func Command(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	var req bytes.Buffer
	fmt.Fprintf(&req, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write(req.Bytes()); err != nil {
		return "", err
	}
	var out []string
	if err := readReply(bufio.NewReader(conn), &out); err != nil {
		return "", err
	}
	return strings.Join(out, "\n"), nil
}

// readReply reads one RESP2 reply and appends its strings to out.
func readReply(r *bufio.Reader, out *[]string) error {
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return errors.New("redistest: empty reply line")
	}
	switch line[0] {
	case '+', ':':
		*out = append(*out, line[1:])
	case '-':
		return errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return err
		}
		if n < 0 {
			*out = append(*out, "")
			return nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		*out = append(*out, string(buf[:n]))
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return err
		}
		for range n {
			if err := readReply(r, out); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("redistest: unexpected reply %q", line)
	}
	return nil
}
