// Package envoygrpc answers Envoy's ext_authz gRPC checks (envoy.service.auth.v3.Authorization), as
// sent by Envoy, Envoy Gateway (SecurityPolicy.extAuth.grpc) and Istio (envoyExtAuthzGrpc).
//
// The original request is read from the CheckRequest only: method, scheme, host and path from
// attributes.request.http (path includes the query), falling back to the :method, :scheme,
// :authority and :path pseudo-headers when a field is empty; the client's Cookie, Authorization,
// Accept and X-Request-ID from attributes.request.http.headers (or header_map); the client address
// from attributes.source, else the first X-Forwarded-For entry. The policy is the one named in
// attributes.context_extensions["policy"] ("<namespace>/<name>", set per route or virtual host);
// without it the policy is found by host and path, as Istio (which has no context extensions) needs.
//
// Answers:
//   - allow: status OK; ok_response.headers sets each identity header once, overwriting the client's
//     copy; ok_response.headers_to_remove lists the policy's identity headers the decision does not
//     set, so a client can never pose as someone; a slid session cookie goes to the client through
//     ok_response.response_headers_to_add.
//   - deny: a non-zero status (UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT) and a
//     denied_response: 401 with www-authenticate for API clients, 302 with an absolute location for
//     browsers that must log in, 403, or 400 for malformed requests and misconfigured routes (a
//     malformed context_extensions policy, a CheckRequest without attributes.request.http); always
//     cache-control: no-store.
//   - error: a decision is never an RPC error, because Envoy with failure_mode_allow would turn an RPC
//     error into an allow. The one exception is a check that could not be decided at all (the
//     session store or JWKS is unavailable, no policies are loaded yet): that is answered with the
//     gRPC error UNAVAILABLE, so that operators choose fail-open or fail-closed with Envoy's
//     failure_mode_allow and status_on_error.
package envoygrpc

import (
	"context"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/go-logr/logr"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/proxy"
)

// adapter names this adapter in logs.
const adapter = "envoy-grpc"

// Server is the Envoy Authorization service.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	checker proxy.Checker
	health  *health.Server
}

var _ authv3.AuthorizationServer = (*Server)(nil)

// NewServer returns an Authorization service answering with the decisions of c.
func NewServer(c proxy.Checker) *Server {
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	h.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	return &Server{checker: c, health: h}
}

// Register registers the Authorization service and the standard gRPC health service, which reports
// SERVING both overall ("") and for envoy.service.auth.v3.Authorization.
func (s *Server) Register(g *grpc.Server) {
	authv3.RegisterAuthorizationServer(g, s)
	healthpb.RegisterHealthServer(g, s.health)
}

// Check answers one ext_authz check. It returns an RPC error only when the decision could not be
// made (codes.Unavailable); every decision, denials included, is a CheckResponse.
func (s *Server) Check(ctx context.Context, in *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	req, err := Parse(in)
	if err != nil {
		logr.FromContextOrDiscard(ctx).WithName(adapter).Error(err, "Proxy misconfigured: check request rejected")
		code := codes.InvalidArgument
		if _, ok := err.(*missingError); ok {
			code = codes.PermissionDenied
		}
		return denied(code, typev3.StatusCode_BadRequest, "authgate: misconfigured "+adapter+" check: "+err.Error(), nil), nil
	}
	d := s.checker.Check(ctx, req)
	return Answer(ctx, d)
}

// missingError is a CheckRequest that lacks the HTTP request itself: denied with PERMISSION_DENIED.
type missingError struct{ msg string }

func (e *missingError) Error() string { return e.msg }

// Parse builds the check request from a CheckRequest. Errors are misconfigurations (a malformed
// policy reference, a request target that is not origin-form) or requests without the HTTP
// attributes; both are denied, never guessed.
func Parse(in *authv3.CheckRequest) (*authz.Request, error) {
	attrs := in.GetAttributes()
	h := attrs.GetRequest().GetHttp()
	if h == nil {
		return nil, &missingError{"the CheckRequest has no attributes.request.http"}
	}
	hd := headers{m: h.GetHeaders(), raw: h.GetHeaderMap().GetHeaders()}

	var ref policy.Ref
	if v, ok := attrs.GetContextExtensions()["policy"]; ok {
		r, err := policy.ParseRef(v)
		if err != nil {
			return nil, proxy.Misconfiguration("context_extensions: " + err.Error())
		}
		ref = r
	}
	method := first(h.GetMethod(), hd.get(":method"))
	host := first(h.GetHost(), hd.get(":authority"), hd.get("host"))
	uri := first(h.GetPath(), hd.get(":path"))
	switch {
	case method == "":
		return nil, &missingError{"the CheckRequest has no method"}
	case host == "":
		return nil, &missingError{"the CheckRequest has no host"}
	case uri == "":
		return nil, &missingError{"the CheckRequest has no path"}
	}
	path, query, err := policy.SplitRequestURI(uri)
	if err != nil {
		return nil, proxy.Misconfiguration(err.Error())
	}
	// Envoy documents that query and fragment stay empty and the query is part of path; a query
	// field set anyway is only used when the path carries none.
	if query == "" && !strings.Contains(uri, "?") {
		query = h.GetQuery()
	}
	clientIP := attrs.GetSource().GetAddress().GetSocketAddress().GetAddress()
	if clientIP == "" {
		clientIP = proxy.ClientIP("", hd.get("x-forwarded-for"))
	}
	return &authz.Request{
		Protocol:      authz.ProtocolEnvoyGRPC,
		Policy:        ref,
		Method:        method,
		Scheme:        Scheme(first(h.GetScheme(), hd.get(":scheme"))),
		Host:          host,
		Path:          path,
		Query:         query,
		ClientIP:      clientIP,
		Cookie:        hd.all("cookie", "; "),
		Authorization: hd.get("authorization"),
		Accept:        hd.get("accept"),
		RequestID:     hd.get("x-request-id"),
	}, nil
}

// Scheme is "https" when s says so (case-insensitively) and "http" otherwise: a scheme that is
// missing or unknown is never reported as TLS. Only the login redirect's rd uses it.
func Scheme(s string) string {
	if strings.EqualFold(s, "https") {
		return "https"
	}
	return "http"
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// headers reads request headers from the headers map (keys lower-case, repeated headers joined by
// Envoy with ","; cookies with "; ") or, when Envoy sends header_map instead (encode_raw_headers),
// from its entries.
type headers struct {
	m   map[string]string
	raw []*corev3.HeaderValue
}

func (h headers) get(name string) string {
	if v, ok := h.m[name]; ok {
		return v
	}
	for _, hv := range h.raw {
		if strings.EqualFold(hv.GetKey(), name) {
			return value(hv)
		}
	}
	return ""
}

// all joins every value of a header; only header_map can carry several.
func (h headers) all(name, sep string) string {
	if v, ok := h.m[name]; ok {
		return v
	}
	var vals []string
	for _, hv := range h.raw {
		if strings.EqualFold(hv.GetKey(), name) {
			vals = append(vals, value(hv))
		}
	}
	return strings.Join(vals, sep)
}

func value(hv *corev3.HeaderValue) string {
	if v := hv.GetValue(); v != "" {
		return v
	}
	return string(hv.GetRawValue())
}

// Answer translates a decision into a CheckResponse, or into the gRPC error UNAVAILABLE when the
// decision could not be made.
func Answer(ctx context.Context, d authz.Decision) (*authv3.CheckResponse, error) {
	switch d.Outcome {
	case authz.Allow:
		return allowed(d), nil
	case authz.Unauthenticated:
		var hs []*corev3.HeaderValueOption
		if d.SetCookie != "" {
			hs = append(hs, set("set-cookie", d.SetCookie))
		}
		if d.Browser && d.LoginURL != "" {
			hs = append(hs, set("location", d.LoginURL))
			return denied(codes.Unauthenticated, typev3.StatusCode_Found, "login required", hs), nil
		}
		hs = append(hs, set("www-authenticate", d.Scheme+` realm="authgate"`))
		return denied(codes.Unauthenticated, typev3.StatusCode_Unauthorized, "unauthenticated: "+d.Reason, hs), nil
	case authz.Forbidden:
		return denied(codes.PermissionDenied, typev3.StatusCode_Forbidden, "forbidden: "+d.Reason, cookie(d)), nil
	case authz.BadRequest:
		logr.FromContextOrDiscard(ctx).WithName(adapter).Info("Check request refused", "reason", d.Reason, "detail", d.Detail)
		return denied(codes.InvalidArgument, typev3.StatusCode_BadRequest, "bad request: "+d.Reason, cookie(d)), nil
	default:
		logr.FromContextOrDiscard(ctx).WithName(adapter).Error(nil, "Check failed", "reason", d.Reason, "detail", d.Detail)
		return nil, grpcstatus.Error(codes.Unavailable, "authgate: unavailable: "+d.Reason)
	}
}

func allowed(d authz.Decision) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{}
	if len(d.Headers) > 0 {
		ok.Headers = make([]*corev3.HeaderValueOption, 0, len(d.Headers))
		for _, h := range d.Headers {
			ok.Headers = append(ok.Headers, set(strings.ToLower(h.Name), h.Value))
		}
	}
	if len(d.Remove) > 0 {
		ok.HeadersToRemove = make([]string, 0, len(d.Remove))
		for _, name := range d.Remove {
			ok.HeadersToRemove = append(ok.HeadersToRemove, strings.ToLower(name))
		}
	}
	if d.SetCookie != "" {
		// Added next to the application's own Set-Cookie headers, never over them: append_action
		// APPEND_IF_EXISTS_OR_ADD without the deprecated append field makes Envoy add a separate
		// header line (the deprecated append=true would join values with ",", breaking cookies).
		ok.ResponseHeadersToAdd = []*corev3.HeaderValueOption{{
			Header:       &corev3.HeaderValue{Key: "set-cookie", Value: d.SetCookie},
			AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD,
		}}
	}
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}
}

// set is a header that replaces any existing value. Both fields say so: Envoy honours the
// deprecated append when it is present (false = OVERWRITE_IF_EXISTS_OR_ADD) and append_action
// otherwise, so old and new Envoys, and any that drop the deprecated field, all overwrite.
func set(key, value string) *corev3.HeaderValueOption {
	h := &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: key, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
	//lint:ignore SA1019 PROTOCOLS.md: append must be explicitly false for the Envoys that read only it
	h.Append = wrapperspb.Bool(false)
	return h
}

func cookie(d authz.Decision) []*corev3.HeaderValueOption {
	if d.SetCookie == "" {
		return nil
	}
	return []*corev3.HeaderValueOption{set("set-cookie", d.SetCookie)}
}

func denied(code codes.Code, status typev3.StatusCode, body string, hs []*corev3.HeaderValueOption) *authv3.CheckResponse {
	hs = append(hs,
		set("cache-control", "no-store"),
		set("content-type", "text/plain; charset=utf-8"),
		set("x-content-type-options", "nosniff"),
	)
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code), Message: body},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: status},
			Headers: hs,
			Body:    body + "\n",
		}},
	}
}
