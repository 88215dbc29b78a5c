package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const crd = `---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  annotations:
    controller-gen.kubebuilder.io/version: v0.23.0
  name: widgets.example.dev
spec:
  group: example.dev
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        description: 'Shows {{ .Values }} literally'
        type: object
`

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestGenerates(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "crds", "widgets.yaml"), crd)
	write(t, filepath.Join(dir, "rbac", "thing", "role.yaml"), `---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: thing}
rules:
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: thing, namespace: system}
rules:
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, update]
`)
	out := filepath.Join(dir, "templates")
	write(t, filepath.Join(out, ".keep"), "")
	var stderr bytes.Buffer
	if code := run([]string{"-crds", filepath.Join(dir, "crds"), "-rbac", filepath.Join(dir, "rbac"), "-out", out}, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	crds, _ := os.ReadFile(filepath.Join(out, "crds.yaml"))
	for _, want := range []string{
		"{{- if .Values.crds.enabled }}\n---\n", "  name: widgets.example.dev\n",
		"    controller-gen.kubebuilder.io/version: \"v0.23.0\"\n    {{- if .Values.crds.keep }}\n    helm.sh/resource-policy: keep\n",
		`Shows {{ "{{" }} .Values }} literally`, "\n{{- end }}\n",
	} {
		if !strings.Contains(string(crds), want) {
			t.Errorf("crds.yaml lacks %q:\n%s", want, crds)
		}
	}
	rbac, _ := os.ReadFile(filepath.Join(out, "_rbac.tpl"))
	for _, want := range []string{
		"{{- define \"authgate.rbac.thing.cluster\" }}\n- apiGroups:\n  - \"\"\n  resources:\n  - secrets\n  verbs:\n  - get\n{{- end }}\n",
		"{{- define \"authgate.rbac.thing.namespace\" }}\n- apiGroups:\n  - coordination.k8s.io\n",
	} {
		if !strings.Contains(string(rbac), want) {
			t.Errorf("_rbac.tpl lacks %q:\n%s", want, rbac)
		}
	}
}

func TestRefuses(t *testing.T) {
	for name, tc := range map[string]struct{ role, want string }{
		"two ClusterRoles": {"kind: ClusterRole\nrules: [{verbs: [get], apiGroups: [''], resources: [a]}]\n---\nkind: ClusterRole\nrules: [{verbs: [get], apiGroups: [''], resources: [b]}]\n", "two ClusterRoles"},
		"a binding":        {"kind: ClusterRoleBinding\n", `kind "ClusterRoleBinding"`},
		"no rules":         {"kind: Role\nrules: []\n", "has no rules"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "crds", "widgets.yaml"), crd)
			write(t, filepath.Join(dir, "rbac", "thing", "role.yaml"), tc.role)
			var stderr bytes.Buffer
			code := run([]string{"-crds", filepath.Join(dir, "crds"), "-rbac", filepath.Join(dir, "rbac"), "-out", dir}, &stderr)
			if code != 1 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, %q; want 1 and %q", code, stderr.String(), tc.want)
			}
		})
	}
	var stderr bytes.Buffer
	if code := run([]string{"-crds", t.TempDir(), "-out", t.TempDir()}, &stderr); code != 1 || !strings.Contains(stderr.String(), "no CRD") {
		t.Errorf("an empty CRD folder: exit %d, %q", code, stderr.String())
	}
}
