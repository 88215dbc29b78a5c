package webhook_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestRunServesEnvoy checks that the webhook serves Envoy both ways: gRPC Check and health on
// --grpc-addr, and the HTTP service under /check/envoy/.
func TestRunServesEnvoy(t *testing.T) {
	opts := options(t, samples(t))
	r := startRun(t, opts)
	waitReady(t, r, opts.HTTPAddr)

	conn, err := grpc.NewClient(opts.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("gRPC health: %v %v", h, err)
	}
	check := func(path string) int32 {
		t.Helper()
		resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Scheme: "https", Host: "shop.example.com", Path: path,
			}},
			ContextExtensions: map[string]string{"policy": "default/shop"},
		}})
		if err != nil {
			t.Fatalf("Check %s: %v", path, err)
		}
		return resp.GetStatus().GetCode()
	}
	if code := check("/static/app.css"); code != int32(codes.OK) {
		t.Errorf("public path over gRPC: code %d", code)
	}
	if code := check("/orders"); code != int32(codes.Unauthenticated) {
		t.Errorf("no session over gRPC: code %d, want UNAUTHENTICATED", code)
	}

	// Raw paths reach the adapter as Envoy sent them: "//" and "/../" are normalized by the decision
	// core, not redirected by the HTTP router.
	for path, want := range map[string]int{
		"/static/app.css": http.StatusOK, "/orders": http.StatusUnauthorized,
		"//static//app.css": http.StatusOK, "/static/../orders": http.StatusUnauthorized,
	} {
		req, err := http.NewRequest("GET", "http://"+opts.HTTPAddr+"/check/envoy"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "shop.example.com" // Envoy keeps the original Host
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("HTTP service, %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
