package kube_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/kube"
)

func TestScheme(t *testing.T) {
	s := kube.Scheme()
	for _, obj := range []runtime.Object{&authgatev1.AuthPolicy{}, &corev1.Secret{}} {
		if _, _, err := s.ObjectKinds(obj); err != nil {
			t.Errorf("%T: %v", obj, err)
		}
	}
}

const kubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "config")
	if err := os.WriteFile(good, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", "")
	cfg, err := kube.Config(good)
	if err != nil || cfg.Host != "https://127.0.0.1:6443" {
		t.Fatalf("--kubeconfig %s: %v, %v", good, cfg, err)
	}
	if _, err := kube.Config(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "loading --kubeconfig") {
		t.Errorf("a missing --kubeconfig: %v", err)
	}
	t.Setenv("KUBECONFIG", good)
	if cfg, err := kube.Config(""); err != nil || cfg.Host != "https://127.0.0.1:6443" {
		t.Errorf("$KUBECONFIG: %v, %v", cfg, err)
	}
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if _, err := kube.Config(""); err == nil || !strings.Contains(err.Error(), "not in a pod") {
		t.Errorf("nothing to go by: %v", err)
	}
}
