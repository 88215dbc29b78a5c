package webhook_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/authgate/authgate/internal/testenv"
	"github.com/authgate/authgate/internal/webhook"
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

// TestGRPCOverTLS serves gRPC with a certificate from files, as a mounted TLS Secret provides them.
func TestGRPCOverTLS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "authgate"},
		DNSNames: []string{"authgate.test"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := options(t, samples(t))
	opts.GRPCCertFile, opts.GRPCKeyFile = certFile, keyFile
	r := startRun(t, opts)
	waitReady(t, r, opts.HTTPAddr)

	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := grpc.NewClient(opts.GRPCAddr, grpc.WithTransportCredentials(credentials.NewClientTLSFromCert(pool, "authgate.test")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("gRPC health over TLS: %v %v", h, err)
	}
	plain, err := grpc.NewClient(opts.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	if _, err := healthpb.NewHealthClient(plain).Check(short, &healthpb.HealthCheckRequest{}); err == nil {
		t.Fatal("a plaintext client was answered by the TLS listener")
	}
}

// TestGRPCBounds: a client cannot make the gRPC server hold more than the bounds: metadata over 64
// KiB and a CheckRequest over 1 MiB are refused with a gRPC error (never an allow), and the server
// goes on answering.
func TestGRPCBounds(t *testing.T) {
	opts := options(t, samples(t))
	r := startRun(t, opts)
	waitReady(t, r, opts.HTTPAddr)
	conn, err := grpc.NewClient(opts.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(4<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	request := func(header string) *authv3.CheckRequest {
		return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Scheme: "https", Host: "shop.example.com", Path: "/static/app.css",
				Headers: map[string]string{"x-padding": header},
			}},
			ContextExtensions: map[string]string{"policy": "default/shop"},
		}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	big := metadata.AppendToOutgoingContext(ctx, "x-padding", strings.Repeat("a", 80<<10))
	if resp, err := client.Check(big, request("")); err == nil {
		t.Errorf("80 KiB of metadata: answered %v, want a gRPC error", resp.GetStatus())
	}
	if resp, err := client.Check(ctx, request(strings.Repeat("a", 2<<20))); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a 2 MiB CheckRequest: %v %v, want RESOURCE_EXHAUSTED", resp.GetStatus(), err)
	}
	resp, err := client.Check(ctx, request("ok"))
	if err != nil || resp.GetStatus().GetCode() != int32(codes.OK) {
		t.Fatalf("an ordinary check after the refusals: %v %v", resp.GetStatus(), err)
	}
}

// TestGRPCLogs: what the gRPC Check handler logs reaches the webhook's logger, as for HTTP checks.
func TestGRPCLogs(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, prefix+" "+args)
	}, funcr.Options{})
	opts := options(t, samples(t))
	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), log))
	done := make(chan error, 1)
	go func() { done <- webhook.Run(ctx, opts) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	conn, err := grpc.NewClient(opts.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A CheckRequest without the HTTP request is a misconfigured proxy: refused, and logged.
	testenv.Eventually(t, 30*time.Second, func() string {
		_, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{})
		if status.Code(err) == codes.Unavailable {
			return "not serving yet: " + err.Error()
		}
		return ""
	})
	testenv.Eventually(t, 10*time.Second, func() string {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range lines {
			if strings.Contains(l, "Proxy misconfigured") {
				return ""
			}
		}
		return fmt.Sprintf("no gRPC misconfiguration in the log: %q", lines)
	})
}
