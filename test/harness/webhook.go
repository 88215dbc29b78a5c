package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	ctrlzap "sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/authgate/authgate/internal/webhook"
)

// NewLogger returns the logger kube.Run gives the webhook in production (controller-runtime's zap
// logger, JSON encoder, not development mode), writing to w, with every verbosity enabled: debug
// lines are held to the same redaction rule as the rest, and zap's sampling, which production
// turns on at the info level and which would drop repeated lines, is off.
func NewLogger(w io.Writer) logr.Logger {
	return ctrlzap.New(ctrlzap.WriteTo(w), ctrlzap.UseDevMode(false), ctrlzap.Level(zapcore.Level(-10)))
}

// startWebhook runs webhook.Run in-process on a free port, with the manifests of o filled in, and
// waits until /readyz answers 200.
func (e *Env) startWebhook(o Options) {
	t := e.t
	t.Helper()
	templates := readManifests(t, o.Manifests)
	manifests := t.TempDir()
	log := NewLogger(e.Logs)

	var lastErr error
	for range bindAttempts {
		port := FreePort(t)
		values := maps.Clone(o.Values)
		if values == nil {
			values = map[string]string{}
		}
		values["LOGIN_URL"] = "http://" + LoginHost + ":" + port + "/auth/login"
		for name, template := range templates {
			if err := os.WriteFile(filepath.Join(manifests, name), []byte(Fill(t, template, values)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		opts := webhook.Options{
			HTTPAddr:         "127.0.0.1:" + port,
			MetricsAddr:      "", // off
			Manifests:        manifests,
			DefaultNamespace: "shop", // the Secrets are verbatim copies of config/samples, without a namespace
			Store:            "memory",
			RefreshGrace:     10 * time.Second,
			ShutdownTimeout:  5 * time.Second,
		}
		grpcAddr := ""
		if o.GRPC {
			grpcAddr = "127.0.0.1:" + FreePort(t)
			opts.GRPCAddr = grpcAddr
		}
		if o.Webhook != nil {
			o.Webhook(&opts)
		}
		ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), log))
		done := make(chan error, 1)
		go func() { done <- webhook.Run(ctx, opts) }()
		err := waitReady(ctx, "http://127.0.0.1:"+port+"/readyz", done)
		if err == nil {
			e.WebhookPort, e.WebhookAddr, e.GRPCAddr = port, "127.0.0.1:"+port, grpcAddr
			t.Cleanup(func() {
				cancel()
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("the webhook stopped with an error: %v", err)
					}
				case <-time.After(30 * time.Second):
					t.Errorf("the webhook did not stop within 30s of its context's end")
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
	t.Fatalf("starting the webhook: %v\nwebhook log:\n%s", lastErr, e.Logs.String())
}

// readManifests reads the files named, and the *.yaml files of the folders named, by base name.
func readManifests(t testing.TB, paths []string) map[string]string {
	t.Helper()
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatalf("reading the manifests: %v", err)
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			t.Fatalf("reading the manifests: %v", err)
		}
		for _, entry := range entries {
			if !entry.IsDir() && strings.HasSuffix(entry.Name(), ".yaml") {
				files = append(files, filepath.Join(p, entry.Name()))
			}
		}
	}
	templates := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		if _, dup := templates[name]; dup {
			t.Fatalf("two manifests are named %s", name)
		}
		templates[name] = string(b)
	}
	if len(templates) == 0 {
		t.Fatalf("no manifests (*.yaml) in %q", paths)
	}
	return templates
}

// readyTimeout is how long a webhook may take to get ready: about a second on an idle machine with
// the race detector, much more on a machine busy with other test binaries.
const readyTimeout = 30 * time.Second

// waitReady polls url until it answers 200, Run returns (its error is the answer), or readyTimeout
// passes.
func waitReady(ctx context.Context, url string, done <-chan error) error {
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.NewTimer(readyTimeout)
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
			return fmt.Errorf("%s did not answer 200 within %s (last: %s)", url, readyTimeout, last)
		case <-tick.C:
		}
	}
}
