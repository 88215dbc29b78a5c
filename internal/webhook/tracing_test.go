package webhook_test

import (
	"context"
	"encoding/hex"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// collector is an OTLP/gRPC trace receiver that keeps every span it is sent.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string
}

func (c *collector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				c.services = append(c.services, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			c.spans = append(c.spans, ss.GetSpans()...)
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// named returns the spans of a name.
func (c *collector) named(name string) []*tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range c.spans {
		if s.GetName() == name {
			out = append(out, s)
		}
	}
	return out
}

// startCollector serves a collector on a free port and returns it with its address.
func startCollector(t *testing.T) (*collector, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, c)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return c, ln.Addr().String()
}

func attributes(s *tracepb.Span) map[string]*commonpb.AnyValue {
	out := map[string]*commonpb.AnyValue{}
	for _, a := range s.GetAttributes() {
		out[a.GetKey()] = a.GetValue()
	}
	return out
}

// TestRunExportsSpans: with --otlp-endpoint, checks and logins are spans, a check continues the
// proxy's trace, and no span holds a credential. The spans buffered when Run ends are sent.
func TestRunExportsSpans(t *testing.T) {
	col, addr := startCollector(t)
	opts := options(t, samples(t))
	opts.OTLPEndpoint = "http://" + addr
	r := startRun(t, opts)
	waitReady(t, r, opts.HTTPAddr)
	c := replicaClient{base: "http://" + opts.HTTPAddr, http: client}

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	tk, err := c.login("admin@example.com", "admin-demo-password")
	if err != nil {
		t.Fatal(err)
	}
	status, err := c.check("/orders", map[string]string{"Cookie": "authgate_session=" + tk.SID,
		"Traceparent": "00-" + traceID + "-" + parentID + "-01"})
	if err != nil || status != http.StatusOK {
		t.Fatalf("check: %d %v", status, err)
	}
	if status, err := c.check("/orders", nil); err != nil || status != http.StatusUnauthorized {
		t.Fatalf("check without a session: %d %v", status, err)
	}
	r.cancel()
	if err := r.wait(t, opts.ShutdownTimeout+10*time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}

	checks := col.named("authgate.check")
	if len(checks) != 2 {
		t.Fatalf("%d check spans, want 2; spans: %v", len(checks), col.spans)
	}
	var allowed *tracepb.Span
	for _, s := range checks {
		if attributes(s)["authgate.outcome"].GetStringValue() == "allow" {
			allowed = s
		}
	}
	if allowed == nil {
		t.Fatalf("no check span with outcome allow: %v", checks)
	}
	a := attributes(allowed)
	if a["authgate.policy"].GetStringValue() != "default/shop" || a["authgate.mode"].GetStringValue() != "Session" ||
		a["authgate.protocol"].GetStringValue() != "nginx" || a["authgate.reason"].GetStringValue() != "session" {
		t.Errorf("check span attributes %v", a)
	}
	if hex.EncodeToString(allowed.GetTraceId()) != traceID || hex.EncodeToString(allowed.GetParentSpanId()) != parentID {
		t.Errorf("the check span is in trace %x under %x, want the proxy's %s under %s",
			allowed.GetTraceId(), allowed.GetParentSpanId(), traceID, parentID)
	}
	logins := col.named("authgate.login")
	if len(logins) != 1 || attributes(logins[0])["http.response.status_code"].GetIntValue() != http.StatusOK {
		t.Errorf("login spans %v, want one with status 200", logins)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.services) == 0 || col.services[0] != "authgate-webhook" {
		t.Errorf("service.name %v, want authgate-webhook", col.services)
	}
	for _, s := range col.spans {
		for k, v := range attributes(s) {
			for _, secret := range []string{tk.SID, tk.Access, tk.Refresh, "admin-demo-password"} {
				if strings.Contains(v.String(), secret) {
					t.Errorf("span %s attribute %s holds a credential", s.GetName(), k)
				}
			}
		}
	}
}
