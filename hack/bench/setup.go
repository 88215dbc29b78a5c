package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	"sigs.k8s.io/yaml"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/signingkey"
	"github.com/authgate/authgate/internal/source"
	"github.com/authgate/authgate/internal/token"
)

const (
	benchHost   = "bench.example.com"
	benchPolicy = "default/bench"
	benchEmail  = "bench@example.com"
)

// benchPolicyYAML is the policy every scenario checks against: JWT on /api/, sessions elsewhere,
// with three identity headers, as a typical application would have it.
const benchPolicyYAML = `apiVersion: authgate.dev/v1
kind: AuthPolicy
metadata: {name: bench}
spec:
  hosts: [bench.example.com]
  rules:
  - {name: api, match: {pathPrefix: /api/}, mode: JWT}
  - {name: app, match: {pathPrefix: /}, mode: Session}
  session: {}
  jwt: {issuer: "https://auth.example.com", signingKeySecretRef: {name: bench-keys}}
  login: {usersSecretRef: {name: bench-users}}
  identityHeaders: {X-User-Id: sub, X-User-Email: email, X-User-Role: roles}
`

// fixture is the folder of manifests the webhooks load, and what the load needs to pass.
type fixture struct {
	dir      string
	password string
	policy   *policy.Policy
}

func writeFixture(dir string) (*fixture, error) {
	pw := make([]byte, 16)
	if _, err := rand.Read(pw); err != nil {
		return nil, err
	}
	f := &fixture{dir: dir, password: hex.EncodeToString(pw)}
	hash, err := bcrypt.GenerateFromPassword([]byte(f.password), 10)
	if err != nil {
		return nil, err
	}
	_, keys, err := signingkey.Generate(authgatev1.AlgorithmES256, time.Now())
	if err != nil {
		return nil, err
	}
	users := fmt.Sprintf("- email: %s\n  passwordHash: %q\n  roles: [viewer]\n", benchEmail, hash)
	secret := func(name string, data map[string][]byte) ([]byte, error) {
		return yaml.Marshal(map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]string{"name": name}, "data": data})
	}
	usersYAML, err := secret("bench-users", map[string][]byte{authgatev1.UsersSecretKey: []byte(users)})
	if err != nil {
		return nil, err
	}
	keysYAML, err := secret("bench-keys", keys)
	if err != nil {
		return nil, err
	}
	doc := benchPolicyYAML + "---\n" + string(usersYAML) + "---\n" + string(keysYAML)
	if err := os.WriteFile(filepath.Join(dir, "bench.yaml"), []byte(doc), 0o600); err != nil {
		return nil, err
	}
	snap, _, err := (&source.Loader{Dir: dir, DefaultNamespace: "default"}).Load()
	if err != nil {
		return nil, fmt.Errorf("the benchmark's own policy does not load: %w", err)
	}
	ref, _ := policy.ParseRef(benchPolicy)
	f.policy, _ = snap.Get(ref)
	return f, nil
}

// tokens issues n access tokens for the benchmark's user with the policy's own key, each for a
// login of its own, as n different clients would hold.
func (f *fixture) tokens(n int) ([]string, error) {
	user, ok := f.policy.Login().User(benchEmail)
	if !ok {
		return nil, errors.New("the benchmark's user is missing")
	}
	out := make([]string, n)
	for i := range out {
		sid := make([]byte, 16)
		if _, err := rand.Read(sid); err != nil {
			return nil, err
		}
		raw, _, err := token.Issue(f.policy, user, hex.EncodeToString(sid), time.Now())
		if err != nil {
			return nil, err
		}
		out[i] = raw
	}
	return out, nil
}

// login logs the benchmark's user in through a webhook and returns the session cookie.
func (f *fixture) login(base string) (string, error) {
	body, _ := json.Marshal(map[string]string{"email": benchEmail, "password": f.password})
	req, err := http.NewRequest(http.MethodPost, base+"/auth/login?policy="+benchPolicy, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("logging in: %w", err)
	}
	defer resp.Body.Close()
	drain(resp.Body)
	for _, c := range resp.Cookies() {
		if c.Name == authgatev1.DefaultCookieName {
			return c.Name + "=" + c.Value, nil
		}
	}
	return "", fmt.Errorf("logging in: %s and no session cookie", resp.Status)
}

// process is a server the driver started.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
}

func start(ctx context.Context, logDir, name string, args ...string) (*process, error) {
	logPath := filepath.Join(logDir, strings.ReplaceAll(name, " ", "-")+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() { _ = cmd.Wait(); logFile.Close() }()
	return &process{name: name, cmd: cmd, log: logPath}, nil
}

func (p *process) stop() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(os.Interrupt)
	}
}

// waitHTTP waits until url answers 200.
func waitHTTP(p *process, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			drain(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p.cmd.ProcessState != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(p.log)
	return fmt.Errorf("%s did not answer %s: %s", p.name, url, tail(string(log), 2000))
}

// waitTCP waits until addr accepts connections.
func waitTCP(addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s", addr)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
