package chart

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/authgate/authgate/internal/testenv"
)

// TestSchemaRejects: values.schema.json turns typos and wrong types into errors that name the value.
func TestSchemaRejects(t *testing.T) {
	for _, tc := range []struct{ values, want string }{
		{"webhook: {replicass: 3}", "replicass"},
		{"webhok: {replicas: 3}", "webhok"},
		{"redis: {bundled: {enabeld: false}}", "enabeld"},
		{"webhook: {replicas: two}", "replicas"},
		{"webhook: {replicas: 0}", "replicas"},
		{"webhook: {store: postgres}", "store"},
		{"redis: {mode: sentinal}", "mode"},
		{"redis: {addrs: [redis]}", "addrs"},
		{"redis: {url: http://redis:6379}", "url"},
		{"redis: {timeout: 1 second}", "timeout"},
		{"crds: {keep: \"yes\"}", "keep"},
		{"operator: {webhookURL: authgate-webhook:8080}", "webhookURL"},
		{"ingress: {host: Auth.Example.com}", "host"},
		{"webhook: {extraArgs: [cache-size=5]}", "extraArgs"},
		{"webhook: {image: {digest: latest}}", "digest"},
		{"metrics: {serviceMonitor: {interval: often}}", "interval"},
	} {
		_, err := render(t, "authgate", tc.values)
		if err == nil || !strings.Contains(err.Error(), "values don't meet the specifications of the schema") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("values %s: %v, want a schema error naming %q", tc.values, err, tc.want)
		}
	}
}

// TestValueCombinationsRefused: combinations the schema cannot express fail the rendering with a
// message that says which values to change.
func TestValueCombinationsRefused(t *testing.T) {
	for _, tc := range []struct{ values, want string }{
		{"webhook: {store: memory}", "webhook.store=memory keeps sessions in one process"},
		{"webhook: {store: memory, replicas: 1, autoscaling: {enabled: true}}", "webhook.autoscaling.enabled=false"},
		{"redis: {url: redis://r:6379}", "set redis.bundled.enabled=false"},
		{"redis: {bundled: {enabled: false}}", "redis.mode=standalone needs redis.url"},
		{"redis: {bundled: {enabled: false}, url: redis://r:6379, addrs: [\"r:6379\"]}", "both name a server"},
		{"redis: {bundled: {enabled: false}, mode: sentinel, addrs: [\"s:26379\"]}", "redis.sentinelMaster"},
		{"redis: {bundled: {enabled: false}, mode: cluster, url: redis://r:6379}", "redis.mode=cluster needs the nodes"},
		{"redis: {bundled: {enabled: false}, mode: cluster, addrs: [\"r:6379\"], db: 2}", "database 0 only"},
		{"redis: {bundled: {enabled: false}, url: redis://r:6379, sentinelMaster: m}", "set redis.mode=sentinel"},
		{"redis: {bundled: {enabled: false}, url: redis://r:6379, tls: {enabled: true}}", "use rediss://"},
		{"redis: {bundled: {enabled: false}, url: \"redis://:hunter2@r:6379\"}", "redis.url holds a password"},
		{"redis: {mode: sentinel}", "needs your own Redis"},
		{"redis: {password: {existingSecret: pw}}", "the bundled one has a generated password"},
		{"webhook: {grpc: {tls: {enabled: true}}}", "webhook.grpc.tls.secretName"},
		{"webhook: {autoscaling: {enabled: true, minReplicas: 5, maxReplicas: 3}}", "minReplicas is larger"},
		{"ingress: {enabled: true}", "ingress.host"},
		{"ingress: {enabled: true, host: a.example.com, tls: {certManager: {issuer: a, clusterIssuer: b}}}", "not both"},
	} {
		_, err := render(t, "authgate", tc.values)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("values %s: %v, want an error containing %q", tc.values, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error repeats the password: %v", err)
		}
	}
}

// TestValuesDocumented: every value in values.yaml has a "# --" comment, and values.yaml and
// values.schema.json describe the same tree, so neither can gain a value the other lacks.
func TestValuesDocumented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir(), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	schemaRaw, err := os.ReadFile(filepath.Join(chartDir(), "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(schemaRaw, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	// freeForm reports whether the schema makes the value at path a map of any keys (labels,
	// annotations): its default entries are examples, documented with the map as a whole.
	freeForm := func(path []string) bool {
		s := schema
		for _, k := range path {
			props, _ := s["properties"].(map[string]any)
			if s, _ = props[k].(map[string]any); s == nil {
				return false
			}
		}
		_, ok := s["additionalProperties"].(map[string]any)
		return ok
	}
	valuePaths := map[string]bool{}
	var walk func(n *yaml.Node, path []string)
	walk = func(n *yaml.Node, path []string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := n.Content[i], n.Content[i+1]
			kp := append(slices.Clone(path), key.Value)
			p := strings.Join(kp, ".")
			valuePaths[p] = true
			// resources are Kubernetes' ResourceRequirements, documented as a whole.
			if value.Kind == yaml.MappingNode && len(value.Content) > 0 && key.Value != "resources" && !freeForm(kp) {
				walk(value, kp)
				continue
			}
			if !strings.Contains(key.HeadComment, "# -- ") {
				t.Errorf("values.yaml: %s has no \"# -- \" comment saying what it does", p)
			}
		}
	}
	walk(doc.Content[0], nil)
	schemaPaths := map[string]bool{}
	var walkSchema func(s map[string]any, prefix string)
	walkSchema = func(s map[string]any, prefix string) {
		props, _ := s["properties"].(map[string]any)
		if len(props) > 0 && s["additionalProperties"] != false {
			t.Errorf("values.schema.json: %q accepts unknown keys (additionalProperties is not false)", strings.TrimSuffix(prefix, "."))
		}
		for name, sub := range props {
			subSchema := sub.(map[string]any)
			if d, _ := subSchema["description"].(string); d == "" {
				t.Errorf("values.schema.json: %s%s has no description", prefix, name)
			}
			schemaPaths[prefix+name] = true
			// resources objects are described by Kubernetes, not by values.yaml.
			if name != "resources" {
				walkSchema(subSchema, prefix+name+".")
			}
		}
	}
	walkSchema(schema, "")
	for p := range valuePaths {
		if !schemaPaths[p] && !strings.Contains(p, ".resources.") {
			t.Errorf("values.yaml has %s, values.schema.json does not", p)
		}
	}
	for p := range schemaPaths {
		if !valuePaths[p] {
			t.Errorf("values.schema.json has %s, values.yaml does not", p)
		}
	}
	if len(valuePaths) < 100 {
		t.Errorf("found %d values; the walk is broken", len(valuePaths))
	}
}

// TestGeneratedCopiesCurrent: the chart's CRD is the one controller-gen wrote to config/crd/bases
// (make manifests copies it; make verify fails when it is stale, and this says so in make test).
func TestGeneratedCopiesCurrent(t *testing.T) {
	r := mustRender(t, "authgate", "")
	raw, err := os.ReadFile(filepath.Join(chartDir(), "..", "..", "config", "crd", "bases", "authgate.dev_authpolicies.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want apiextensionsv1.CustomResourceDefinition
	if err := sigsyaml.UnmarshalStrict(raw, &want); err != nil {
		t.Fatal(err)
	}
	var got apiextensionsv1.CustomResourceDefinition
	r.one(t, "CustomResourceDefinition", want.Name, &got)
	gotSpec, _ := json.Marshal(got.Spec)
	wantSpec, _ := json.Marshal(want.Spec)
	if string(gotSpec) != string(wantSpec) {
		t.Error("the chart's AuthPolicy CRD differs from config/crd/bases: run make manifests")
	}
}

// valueAt returns the value at a path of nested maps, or nil.
func valueAt(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// monitoringModule holds the Prometheus Operator's CRDs as it publishes them; the Go module proxy
// serves the repository, so `go mod download` fetches it like any module.
const monitoringModule = "github.com/prometheus-operator/prometheus-operator@v0.85.0"

// installMonitoringCRDs installs the published ServiceMonitor and PrometheusRule CRDs, so that the
// API server can validate the chart's ServiceMonitor and PrometheusRule against the real schemas.
func installMonitoringCRDs(e *testenv.Env) {
	out, err := exec.Command("go", "mod", "download", "-json", monitoringModule).Output()
	if err != nil {
		panic(fmt.Sprintf("go mod download %s: %v", monitoringModule, err))
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		panic(fmt.Sprintf("go mod download %s: %s %v", monitoringModule, mod.Error, err))
	}
	ctx := context.Background()
	scheme := k8sruntime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	c, err := client.New(e.Config, client.Options{Scheme: scheme})
	if err != nil {
		panic(err)
	}
	for _, file := range []string{"monitoring.coreos.com_servicemonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml"} {
		raw, err := os.ReadFile(filepath.Join(mod.Dir, "example", "prometheus-operator-crd", file))
		if err != nil {
			panic(err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := sigsyaml.Unmarshal(raw, crd); err != nil {
			panic(err)
		}
		if err := c.Create(ctx, crd); err != nil {
			panic(fmt.Sprintf("creating the CRD of %s: %v", file, err))
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			if err := c.Get(ctx, client.ObjectKeyFromObject(crd), crd); err != nil {
				panic(err)
			}
			if slices.ContainsFunc(crd.Status.Conditions, func(c apiextensionsv1.CustomResourceDefinitionCondition) bool {
				return c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue
			}) {
				break
			}
			if time.Now().After(deadline) {
				panic(fmt.Sprintf("the CRD %s is not established after 30s", crd.Name))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// writeMountedFile writes a file of the kind a mounted Secret would hold, by its name: a PEM
// certificate, a PEM private key, or a random shared key.
func writeMountedFile(t *testing.T, path, name string) {
	t.Helper()
	var data []byte
	switch name {
	case "ca.crt", "tls.crt", "tls.key":
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "authgate chart test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		// A certificate and its key are read as a pair: tls.crt and tls.key of one folder must match.
		dir, base := filepath.Dir(path), filepath.Base(path)
		prefix := strings.TrimSuffix(strings.TrimSuffix(base, "tls.crt"), "tls.key")
		if name != "ca.crt" {
			if _, err := os.Stat(filepath.Join(dir, prefix+"tls.crt")); err == nil {
				return // written with its pair
			}
			writePEM(t, filepath.Join(dir, prefix+"tls.crt"), "CERTIFICATE", der)
			writePEM(t, filepath.Join(dir, prefix+"tls.key"), "PRIVATE KEY", keyDER)
			return
		}
		writePEM(t, path, "CERTIFICATE", der)
		return
	default:
		data = make([]byte, 48)
		if _, err := rand.Read(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
