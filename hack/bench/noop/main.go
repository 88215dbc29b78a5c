// Command noop is the baseline of `make bench`: an HTTP server that answers 200 to every request and
// an Envoy ext_authz gRPC server that allows every Check, with the webhook's own server settings and
// nothing else. The webhook's figures are reported as ratios to this one's, measured in the same run
// on the same machine, so that a shared, noisy machine still gives comparable numbers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

type allow struct {
	authv3.UnimplementedAuthorizationServer
}

func (allow) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{Status: &status.Status{Code: int32(codes.OK)}}, nil
}

func main() {
	httpAddr := flag.String("http-addr", "127.0.0.1:8180", "HTTP address")
	grpcAddr := flag.String("grpc-addr", "127.0.0.1:9181", "gRPC address")
	flag.Parse()
	if err := run(*httpAddr, *grpcAddr); err != nil {
		fmt.Fprintln(os.Stderr, "noop:", err)
		os.Exit(1)
	}
}

func run(httpAddr, grpcAddr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The same timeouts and limits as the webhook's HTTP server.
	srv := &http.Server{
		Addr:              httpAddr,
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	hl, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return err
	}
	gl, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return err
	}
	g := grpc.NewServer(grpc.MaxRecvMsgSize(1 << 20))
	authv3.RegisterAuthorizationServer(g, allow{})
	errs := make(chan error, 2)
	go func() { errs <- srv.Serve(hl) }()
	go func() { errs <- g.Serve(gl) }()
	select {
	case <-ctx.Done():
	case err := <-errs:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	g.Stop()
	return srv.Close()
}
