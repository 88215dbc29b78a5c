package source

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/authgate/authgate/internal/policy"
)

// copySamples copies config/samples into a temporary folder.
func copySamples(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("..", "..", "config", "samples")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadDir(t *testing.T) {
	dir := copySamples(t)
	loader := &Loader{Dir: dir, DefaultNamespace: "default"}
	snap, warnings, err := loader.Load()
	if err != nil || len(warnings) != 0 {
		t.Fatal(err, warnings)
	}
	if snap.Len() != 5 {
		t.Fatalf("loaded %d policies, want the 5 samples", snap.Len())
	}
	bad := "apiVersion: authgate.dev/v1\nkind: AuthPolicy\nmetadata: {name: broken}\nspec:\n  rules: [{name: app, mode: Session}]\n  session: {ttl: 1h, refreshThreshold: 2h}\n  login: {usersSecretRef: {name: demo-users}}\n"
	if err := os.WriteFile(filepath.Join(dir, "zz-broken.yaml"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = loader.Load()
	for _, want := range []string{"zz-broken.yaml", "AuthPolicy default/broken", "spec.session.refreshThreshold", "must be less than session.ttl"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %q", err, want)
		}
	}
}

// TestLoadDirRefusesConflicts: in a folder every policy has the same creation time, so name order
// decides which of two policies claiming one route is older, and the newer one fails the load as
// the operator would mark it Conflicted.
func TestLoadDirRefusesConflicts(t *testing.T) {
	dir := copySamples(t)
	b, err := os.ReadFile(filepath.Join(dir, "authgate_v1_authpolicy_status.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	twin := strings.Replace(string(b), "name: status", "name: status-twin", 1)
	if err := os.WriteFile(filepath.Join(dir, "twin.yaml"), []byte(twin), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = (&Loader{Dir: dir, DefaultNamespace: "default"}).Load()
	for _, want := range []string{"twin.yaml: AuthPolicy default/status-twin: conflicted: AuthPolicy default/status, which is older, already claims host"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %q", err, want)
		}
	}
}

func TestWatchDirReloadsAndKeepsTheLastGoodSnapshot(t *testing.T) {
	dir := copySamples(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	published := make(chan *policy.Snapshot, 10)
	if err := WatchDir(ctx, dir, "default", func(s *policy.Snapshot) { published <- s }, testr.New(t)); err != nil {
		t.Fatal(err)
	}
	wait := func(what string) *policy.Snapshot {
		t.Helper()
		select {
		case s := <-published:
			return s
		case <-time.After(10 * time.Second):
			t.Fatalf("no snapshot published after %s", what)
			return nil
		}
	}
	if s := wait("start"); s.Len() != 5 {
		t.Fatalf("first snapshot has %d policies", s.Len())
	}

	extra := "apiVersion: authgate.dev/v1\nkind: AuthPolicy\nmetadata: {name: extra}\nspec:\n  hosts: [extra.example.com]\n  rules: [{name: all, mode: Public}]\n"
	write := func(name, content string) {
		t.Helper()
		// Write then rename, as editors and Kubernetes volumes do.
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	write("extra.yaml", extra)
	if s := wait("adding a policy"); s.Len() != 6 {
		t.Fatalf("after adding a policy: %d policies", s.Len())
	}

	write("extra.yaml", "apiVersion: authgate.dev/v1\nkind: AuthPolicy\nmetadata: {name: extra}\nspec:\n  rulez: []\n")
	select {
	case s := <-published:
		t.Fatalf("a broken edit was published (%d policies)", s.Len())
	case <-time.After(time.Second):
	}

	write("extra.yaml", strings.Replace(extra, "extra.example.com", "extra2.example.com", 1))
	s := wait("fixing the edit")
	if _, _, ok := s.Route("extra2.example.com", "GET", "/"); !ok {
		t.Fatal("the fixed policy is not in force")
	}
}

func TestLoadDirGeneratesMissingSigningKeys(t *testing.T) {
	dir := copySamples(t)
	if err := os.Remove(filepath.Join(dir, "secret_shop-jwt-keys.yaml")); err != nil {
		t.Fatal(err)
	}
	loader := &Loader{Dir: dir, DefaultNamespace: "default"}
	snap, warnings, err := loader.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "Secret shop-jwt-keys does not exist") || !strings.Contains(warnings[0], "authgate_v1_authpolicy_shop.yaml") {
		t.Fatalf("warnings %q", warnings)
	}
	shop, _ := snap.Get(policy.Ref{Namespace: "default", Name: "shop"})
	kid := shop.JWT().Keys().Active().ID()
	again, _, err := loader.Load()
	if err != nil {
		t.Fatal(err)
	}
	shop, _ = again.Get(policy.Ref{Namespace: "default", Name: "shop"})
	if shop.JWT().Keys().Active().ID() != kid {
		t.Error("a reload replaced the generated key: tokens would die at every edit")
	}
}
