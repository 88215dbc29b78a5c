package v1_test

import (
	"os"
	"path/filepath"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// TestEveryFieldIsDescribed keeps `kubectl explain authpolicy.spec...` useful: every field of the
// generated CRD must carry a description.
func TestEveryFieldIsDescribed(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "authgate.dev_authpolicies.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(raw, crd); err != nil {
		t.Fatal(err)
	}
	fields := 0
	var walk func(path string, s *apiextensionsv1.JSONSchemaProps)
	walk = func(path string, s *apiextensionsv1.JSONSchemaProps) {
		for name, prop := range s.Properties {
			p := path + "." + name
			fields++
			// apiVersion, kind and metadata are described by Kubernetes itself.
			if path != "" || (name != "metadata") {
				if prop.Description == "" {
					t.Errorf("%s has no description", p)
				}
			}
			walk(p, &prop)
		}
		if s.Items != nil && s.Items.Schema != nil {
			walk(path+"[]", s.Items.Schema)
		}
		if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
			walk(path+"{}", s.AdditionalProperties.Schema)
		}
	}
	for _, v := range crd.Spec.Versions {
		walk("", v.Schema.OpenAPIV3Schema)
	}
	if fields < 50 {
		t.Fatalf("walked only %d fields: is the schema there?", fields)
	}
}
