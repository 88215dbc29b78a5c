package source

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/internal/policy"
)

// FuzzManifestsRead reads arbitrary YAML files of the policy folder: reading never panics and a
// refusal names the file and the document (or the object defined twice). What it reads has valid
// names and namespaces, is written back by a YAML encoder into a file that reads to the same
// objects, and compiles or fails with a CompileError.
func FuzzManifestsRead(f *testing.F) {
	samples, err := filepath.Glob(filepath.Join("..", "..", "config", "samples", "*.yaml"))
	if err != nil || len(samples) == 0 {
		f.Fatalf("no samples: %v", err)
	}
	for _, s := range samples {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"apiVersion: authgate.dev/v1\nkind: AuthPolicy\nmetadata: {name: a}\nspec:\n  rulez: []\n",
		"apiVersion: authgate.dev/v1\nkind: AuthPolicy\nmetadata: {name: a, namespace: B}\nspec: {rules: [{name: r, mode: Public}]}\n",
		"apiVersion: authgate.dev/v1\nkind: AuthPolicy\nmetadata: {name: a}\nspec: {rules: [{name: r, mode: Public, match: {path: /x, path: /y}}]}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: not-base64}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: aGk=}\nstringData: {k: there}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: default}\n",
		"---\n# comment\n---\n\n", "a: &a [*a]\n", "apiVersion: v1\nkind: Secret\nmetadata: {name: " + strings.Repeat("a", 254) + "}\n",
		"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  Name: t\n", "\xef\xbb\xbfapiVersion: v1\nkind: Secret\nmetadata: {name: s}\n",
		"apiVersion: authgate.dev/v1\nkind: AuthPolicy\nmetadata: {name: a}\nspec: {rules: [{name: r, mode: Public}], session: {ttl: 1e3}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		m := &Manifests{}
		err := m.Read(bytes.NewReader(file), "policies.yaml", "default")
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "policies.yaml: document ") && !strings.HasSuffix(msg, " is defined twice") {
				t.Fatalf("error %q names neither the file and document nor the object", msg)
			}
			return
		}
		for _, p := range m.Policies {
			checkName(t, "AuthPolicy", p.Namespace, p.Name)
			if m.File(p) != "policies.yaml" {
				t.Fatalf("policy %s/%s read from %q", p.Namespace, p.Name, m.File(p))
			}
		}
		for _, s := range m.Secrets {
			checkName(t, "Secret", s.Namespace, s.Name)
		}
		// Write everything back and read it again.
		var out bytes.Buffer
		for _, o := range append(objects(m.Policies), objects(m.Secrets)...) {
			b, err := yaml.Marshal(o)
			if err != nil {
				t.Fatalf("writing %T back: %v", o, err)
			}
			out.WriteString("---\n")
			out.Write(b)
		}
		again := &Manifests{}
		if err := again.Read(&out, "again.yaml", "other"); err != nil {
			t.Fatalf("the objects read do not read again: %v\n%s", err, out.String())
		}
		if len(again.Policies) != len(m.Policies) || len(again.Secrets) != len(m.Secrets) {
			t.Fatalf("read %d policies and %d Secrets, then %d and %d", len(m.Policies), len(m.Secrets), len(again.Policies), len(again.Secrets))
		}
		for i, p := range m.Policies {
			if q := again.Policies[i]; !equality.Semantic.DeepEqual(p.Spec, q.Spec) || p.Name != q.Name || p.Namespace != q.Namespace {
				t.Fatalf("policy %s/%s changed on the way:\n%+v\n%+v", p.Namespace, p.Name, p.Spec, q.Spec)
			}
		}
		for _, sec := range m.Secrets {
			ns := sec.Namespace
			if a, b := m.SecretData(ns), again.SecretData(ns); !equality.Semantic.DeepEqual(a, b) {
				t.Fatalf("the Secrets of %s changed on the way:\n%q\n%q", ns, a, b)
			}
		}
		for _, p := range m.Policies {
			if _, err := policy.Compile(p, m.SecretData(p.Namespace)); err != nil {
				var ce *policy.CompileError
				if !errors.As(err, &ce) {
					t.Fatalf("compiling %s/%s: %v (%T)", p.Namespace, p.Name, err, err)
				}
			}
		}
	})
}

func checkName(t *testing.T, kind, namespace, name string) {
	t.Helper()
	if len(validation.IsDNS1123Subdomain(name)) > 0 || len(validation.IsDNS1123Label(namespace)) > 0 {
		t.Fatalf("%s %q/%q read with an invalid name", kind, namespace, name)
	}
}

func objects[T any](items []*T) []any {
	out := make([]any, len(items))
	for i, it := range items {
		out[i] = it
	}
	return out
}
