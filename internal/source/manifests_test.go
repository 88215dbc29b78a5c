package source

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadDirSamples(t *testing.T) {
	m, err := ReadDir(filepath.Join("..", "..", "config", "samples"), "default")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Policies) < 5 || len(m.Secrets) < 4 {
		t.Fatalf("read %d policies and %d Secrets from config/samples, want at least 5 and 4", len(m.Policies), len(m.Secrets))
	}
	for _, p := range m.Policies {
		if p.Namespace != "default" {
			t.Errorf("policy %s: namespace %q, want the default", p.Name, p.Namespace)
		}
	}
	users := m.SecretData("default")["demo-users"]["users.yaml"]
	if !strings.Contains(string(users), "admin@example.com") {
		t.Errorf("stringData of demo-users was not merged into its data: %q", users)
	}
}

func TestReadErrors(t *testing.T) {
	cases := map[string]struct {
		yaml string
		want string
	}{
		"unknown field": {
			yaml: "apiVersion: authgate.dev/v1\nkind: AuthPolicy\nmetadata: {name: a}\nspec:\n  rulez: []\n",
			want: `test.yaml: document 1 (AuthPolicy): unknown field "spec.rulez"`,
		},
		"field in the wrong case": {
			yaml: "apiVersion: authgate.dev/v1\nkind: AuthPolicy\nmetadata: {name: a}\nspec:\n  Rules: []\n",
			want: `unknown field "spec.Rules"`,
		},
		"wrong type": {
			yaml: "apiVersion: authgate.dev/v1\nkind: AuthPolicy\nmetadata: {name: a}\nspec:\n  hosts: example.com\n",
			want: "test.yaml: document 1 (AuthPolicy)",
		},
		"other kind": {
			yaml: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\n",
			want: "test.yaml: document 1: apps/v1 Deployment is not an authgate.dev/v1 AuthPolicy or a v1 Secret",
		},
		"no kind": {
			yaml: "---\n# just a comment\n---\nmetadata: {name: a}\n",
			want: "apiVersion and kind are required",
		},
		"not YAML": {
			yaml: "apiVersion: [unclosed\n",
			want: "test.yaml: document 1",
		},
		"bad name": {
			yaml: "apiVersion: v1\nkind: Secret\nmetadata: {name: Bad_Name}\n",
			want: `test.yaml: document 1 (Secret "Bad_Name"): metadata.name`,
		},
		"defined twice": {
			yaml: "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: default}\n",
			want: "Secret default/s is defined twice",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			m := &Manifests{}
			err := m.Read(strings.NewReader(tc.yaml), "test.yaml", "default")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestReadDirFailsOnABadFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: ok}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b.yml"), []byte("kind: AuthPolicy\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadDir(dir, "default"); err == nil || !strings.Contains(err.Error(), "b.yml: document 1") {
		t.Fatalf("error = %v, want one naming b.yml", err)
	}
	if _, err := ReadDir(filepath.Join(dir, "missing"), "default"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("error = %v, want one naming the missing folder", err)
	}
}
