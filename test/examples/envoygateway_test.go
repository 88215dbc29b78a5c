package examples

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// TestEnvoyGatewayExample reads the SecurityPolicy example strictly into Envoy Gateway's own Go type
// (unknown or misspelled fields fail) and checks it names authgate's gRPC service and a policy.
func TestEnvoyGatewayExample(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "examples", "envoy-gateway", "security-policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	sp := &egv1a1.SecurityPolicy{}
	strict, err := sigsjson.UnmarshalStrict(js, sp)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(strict...); err != nil {
		t.Fatalf("not an Envoy Gateway SecurityPolicy: %v", err)
	}
	if sp.APIVersion != "gateway.envoyproxy.io/v1alpha1" || sp.Kind != "SecurityPolicy" {
		t.Fatalf("a %s %s", sp.APIVersion, sp.Kind)
	}
	ea := sp.Spec.ExtAuth
	if ea == nil || ea.GRPC == nil || len(ea.GRPC.BackendRefs) != 1 || ea.GRPC.BackendRefs[0].Port == nil || *ea.GRPC.BackendRefs[0].Port != 9001 {
		t.Fatalf("extAuth does not reach authgate's gRPC port: %+v", ea)
	}
	if ea.FailOpen == nil || *ea.FailOpen {
		t.Error("extAuth must fail closed")
	}
	named := false
	for _, c := range ea.ContextExtensions {
		named = named || (c.Name == "policy" && c.Type == egv1a1.ContextExtensionValueTypeValue && c.Value != nil && *c.Value == "shop/shop")
	}
	if !named {
		t.Errorf("no contextExtensions entry names the policy: %+v", ea.ContextExtensions)
	}
}
