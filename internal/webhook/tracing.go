package webhook

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// tracing exports OpenTelemetry spans of checks and of the login endpoints over OTLP/gRPC
// (--otlp-endpoint). Spans carry the policy, the rule's mode, the protocol, the outcome and its
// reason, or the endpoint's status code: never a path, a header, a user or a credential. Sampling
// follows the SDK's environment (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG); by default a
// request is sampled when its parent is, and every request without a parent is.
type tracing struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
}

// tracerName names the instrumentation in every span.
const tracerName = "github.com/authgate/authgate/internal/webhook"

// newTracing starts exporting to endpoint: "host:port" (TLS), or a URL whose scheme says
// (http:// for plaintext, https:// for TLS). Nothing is dialled until the first export.
func newTracing(ctx context.Context, endpoint string, log logr.Logger) (*tracing, error) {
	opt := otlptracegrpc.WithEndpoint(endpoint)
	if strings.Contains(endpoint, "://") {
		opt = otlptracegrpc.WithEndpointURL(endpoint)
	}
	exporter, err := otlptracegrpc.New(ctx, opt)
	if err != nil {
		return nil, fmt.Errorf("--otlp-endpoint %s: %w", endpoint, err)
	}
	// The SDK reports failed exports through OpenTelemetry's one error handler, which is the
	// process's: they go to the webhook's log rather than to a bare stderr line.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.WithName("otlp").Error(err, "Exporting trace spans")
	}))
	provider := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "authgate-webhook"))),
	)
	return &tracing{provider: provider, tracer: provider.Tracer(tracerName)}, nil
}

// shutdown sends the spans still buffered and stops exporting.
func (t *tracing) shutdown(ctx context.Context) error { return t.provider.Shutdown(ctx) }

// authRoutes are the login endpoints that get a span of their own, by path.
var authRoutes = map[string]string{
	"/auth/login":    "authgate.login",
	"/auth/logout":   "authgate.logout",
	"/auth/refresh":  "authgate.refresh",
	"/auth/userinfo": "authgate.userinfo",
}

// handler continues the caller's trace (W3C traceparent) for every request, and gives each request
// to a login endpoint a span. Checks get theirs from measured, whatever their protocol.
func (t *tracing) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		name, ok := authRoutes[r.URL.Path]
		if !ok {
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		ctx, span := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			attribute.String("http.request.method", r.Method), attribute.String("http.route", r.URL.Path)))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r.WithContext(ctx))
		span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
		if sw.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.status))
		}
	})
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
