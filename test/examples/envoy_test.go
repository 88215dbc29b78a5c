// Package examples checks the configuration examples of docs/examples: no Envoy binary runs here,
// so each Envoy bootstrap is parsed into go-control-plane's types and validated by their rules.
package examples

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	// The typed configs the examples use, registered for protojson's Any resolution.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"
)

func TestEnvoyBootstraps(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "docs", "examples", "envoy", "envoy-*.yaml"))
	if err != nil || len(files) < 2 {
		t.Fatalf("want the Envoy examples in docs/examples/envoy, found %v (%v)", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			js, err := yaml.YAMLToJSON(raw)
			if err != nil {
				t.Fatal(err)
			}
			b := &bootstrapv3.Bootstrap{}
			if err := (protojson.UnmarshalOptions{}).Unmarshal(js, b); err != nil {
				t.Fatalf("not an Envoy bootstrap: %v", err)
			}
			if err := b.ValidateAll(); err != nil {
				t.Fatalf("Envoy's validation rules refuse it: %v", err)
			}
			// The ext_authz filter must fail closed.
			if !strings.Contains(string(js), `"failure_mode_allow":false`) {
				t.Error("the example does not set failure_mode_allow: false")
			}
			// The gRPC example names policies per virtual host and per route.
			if strings.Contains(f, "grpc") && strings.Count(string(js), `"context_extensions":{"policy":`) < 2 {
				t.Error("the gRPC example does not name a policy per route in context_extensions")
			}
		})
	}
}
