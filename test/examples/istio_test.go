package examples

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	securityv1beta1 "istio.io/api/security/v1beta1"
	"sigs.k8s.io/yaml"
)

// readProto reads a YAML example into a protobuf message with Istio's own JSON names; unknown
// fields are errors.
func readProto(t *testing.T, name string, doc []byte, into proto.Message) {
	t.Helper()
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := protojson.Unmarshal(js, into); err != nil {
		t.Fatalf("%s does not parse as %T: %v", name, into, err)
	}
}

func TestIstioExamples(t *testing.T) {
	dir := filepath.Join("..", "..", "docs", "examples", "istio")
	raw, err := os.ReadFile(filepath.Join(dir, "mesh-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	mesh := &meshv1alpha1.MeshConfig{}
	readProto(t, "mesh-config.yaml", raw, mesh)

	raw, err = os.ReadFile(filepath.Join(dir, "authorization-policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var object struct {
		APIVersion string         `json:"apiVersion"`
		Kind       string         `json:"kind"`
		Metadata   map[string]any `json:"metadata"`
		Spec       map[string]any `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(raw, &object); err != nil {
		t.Fatal(err)
	}
	if object.APIVersion != "security.istio.io/v1" || object.Kind != "AuthorizationPolicy" {
		t.Fatalf("authorization-policy.yaml is a %s %s", object.APIVersion, object.Kind)
	}
	spec, err := yaml.Marshal(object.Spec)
	if err != nil {
		t.Fatal(err)
	}
	policy := &securityv1beta1.AuthorizationPolicy{}
	readProto(t, "authorization-policy.yaml spec", spec, policy)

	if policy.GetAction() != securityv1beta1.AuthorizationPolicy_CUSTOM {
		t.Errorf("action %s, want CUSTOM", policy.GetAction())
	}
	var provider *meshv1alpha1.MeshConfig_ExtensionProvider
	for _, p := range mesh.GetExtensionProviders() {
		if p.GetName() == policy.GetProvider().GetName() {
			provider = p
		}
	}
	grpc := provider.GetEnvoyExtAuthzGrpc()
	if grpc == nil {
		t.Fatalf("the AuthorizationPolicy's provider %q is not a gRPC ext_authz provider of the mesh config", policy.GetProvider().GetName())
	}
	if grpc.GetPort() != 9001 || grpc.GetFailOpen() {
		t.Errorf("provider port %d, failOpen %v: want authgate's gRPC port 9001 and fail closed", grpc.GetPort(), grpc.GetFailOpen())
	}
}
