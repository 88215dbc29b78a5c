// Package source provides the webhook's policies: from the cluster through informers, or, in
// standalone mode, from a folder of YAML manifests. This file reads manifests; it does not compile
// them (that is internal/policy) and does not watch the folder.
package source

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/policy"
)

// Manifests are the AuthPolicies and Secrets read from YAML files.
type Manifests struct {
	Policies []*authgatev1.AuthPolicy
	Secrets  []*corev1.Secret
	// files records the file each policy came from, for error messages.
	files map[*authgatev1.AuthPolicy]string
}

// File returns the file a policy was read from.
func (m *Manifests) File(p *authgatev1.AuthPolicy) string { return m.files[p] }

// SecretData returns the data of the Secrets in namespace, by name, with stringData merged into
// data as the API server does.
func (m *Manifests) SecretData(namespace string) map[string]map[string][]byte {
	out := map[string]map[string][]byte{}
	for _, s := range m.Secrets {
		if s.Namespace != namespace {
			continue
		}
		data := make(map[string][]byte, len(s.Data)+len(s.StringData))
		for k, v := range s.Data {
			data[k] = v
		}
		for k, v := range s.StringData {
			data[k] = []byte(v)
		}
		out[s.Name] = data
	}
	return out
}

// ReadDir reads every *.yaml and *.yml file directly in dir, in name order. Objects without a
// namespace get defaultNamespace. Any file that does not parse fails the whole read: a folder that
// half loads would enforce policies nobody wrote.
func ReadDir(dir, defaultNamespace string) (*Manifests, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading policy folder: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && (strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	m := &Manifests{}
	for _, name := range names {
		path := filepath.Join(dir, name)
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("reading policy folder: %w", err)
		}
		err = m.read(f, path, defaultNamespace)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return m, m.checkUnique()
}

// Read reads the YAML documents of r, named name in errors, into m.
func (m *Manifests) Read(r io.Reader, name, defaultNamespace string) error {
	if err := m.read(r, name, defaultNamespace); err != nil {
		return err
	}
	return m.checkUnique()
}

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

func (m *Manifests) read(r io.Reader, name, defaultNamespace string) error {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for doc := 1; ; doc++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", name, doc, err)
		}
		if len(bytes.TrimSpace(stripComments(raw))) == 0 {
			continue
		}
		where := fmt.Sprintf("%s: document %d", name, doc)
		var tm typeMeta
		if err := yaml.Unmarshal(raw, &tm); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		switch {
		case tm.APIVersion == authgatev1.GroupVersion.String() && tm.Kind == "AuthPolicy":
			p := &authgatev1.AuthPolicy{}
			if err := policy.DecodeStrict(raw, p); err != nil {
				return fmt.Errorf("%s (AuthPolicy): %w", where, err)
			}
			if err := setNamespace(&p.Namespace, p.Name, defaultNamespace); err != nil {
				return fmt.Errorf("%s (AuthPolicy %q): %w", where, p.Name, err)
			}
			m.Policies = append(m.Policies, p)
			if m.files == nil {
				m.files = map[*authgatev1.AuthPolicy]string{}
			}
			m.files[p] = name
		case tm.APIVersion == "v1" && tm.Kind == "Secret":
			s := &corev1.Secret{}
			if err := policy.DecodeStrict(raw, s); err != nil {
				return fmt.Errorf("%s (Secret): %w", where, err)
			}
			if err := setNamespace(&s.Namespace, s.Name, defaultNamespace); err != nil {
				return fmt.Errorf("%s (Secret %q): %w", where, s.Name, err)
			}
			m.Secrets = append(m.Secrets, s)
		case tm.APIVersion == "" || tm.Kind == "":
			return fmt.Errorf("%s: apiVersion and kind are required", where)
		default:
			return fmt.Errorf("%s: %s %s is not an authgate.dev/v1 AuthPolicy or a v1 Secret", where, tm.APIVersion, tm.Kind)
		}
	}
}

func setNamespace(ns *string, name, defaultNamespace string) error {
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Errorf("metadata.name: %s", strings.Join(errs, "; "))
	}
	if *ns == "" {
		*ns = defaultNamespace
	}
	if errs := validation.IsDNS1123Label(*ns); len(errs) > 0 {
		return fmt.Errorf("metadata.namespace %q: %s", *ns, strings.Join(errs, "; "))
	}
	return nil
}

// checkUnique refuses two objects of one kind with the same namespace and name, which in a cluster
// would be one object: which of them wins would depend on file order.
func (m *Manifests) checkUnique() error {
	seen := map[string]bool{}
	for _, p := range m.Policies {
		key := "AuthPolicy " + p.Namespace + "/" + p.Name
		if seen[key] {
			return fmt.Errorf("%s is defined twice", key)
		}
		seen[key] = true
	}
	for _, s := range m.Secrets {
		key := "Secret " + s.Namespace + "/" + s.Name
		if seen[key] {
			return fmt.Errorf("%s is defined twice", key)
		}
		seen[key] = true
	}
	return nil
}

// stripComments drops comment-only lines, so that a document holding nothing but comments is
// recognised as empty.
func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}
