package v1_test

import (
	"os"
	"path/filepath"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	authgatev1 "github.com/authgate/authgate/api/v1"
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

func TestSecretNames(t *testing.T) {
	spec := authgatev1.AuthPolicySpec{
		JWT:   &authgatev1.JWTConfig{SigningKeySecretRef: &authgatev1.SecretReference{Name: "keys"}},
		Login: &authgatev1.LoginConfig{UsersSecretRef: &authgatev1.SecretReference{Name: "users"}},
	}
	if got := spec.SecretNames(); len(got) != 2 || got[0] != "keys" || got[1] != "users" {
		t.Errorf("SecretNames = %v, want [keys users]", got)
	}
	spec.Login.UsersSecretRef.Name = "keys"
	if got := spec.SecretNames(); len(got) != 1 {
		t.Errorf("SecretNames = %v, want one name for one Secret", got)
	}
	if got := (&authgatev1.AuthPolicySpec{}).SecretNames(); len(got) != 0 {
		t.Errorf("SecretNames of an empty spec = %v", got)
	}
}
