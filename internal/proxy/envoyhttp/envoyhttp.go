// Package envoyhttp answers Envoy's ext_authz HTTP-service checks, configured with
// http_service.path_prefix: /check/envoy.
//
// Envoy sends the check with the original method, the path_prefix followed by the original path and
// query (raw), and the original Host. It forwards Authorization by default; Cookie, Accept,
// X-Forwarded-Proto, X-Forwarded-For and X-Request-ID only when listed in
// authorization_request.allowed_headers, which operators must do for session cookies to work.
//
// Decisions made here:
//   - The scheme is "https" only when X-Forwarded-Proto says https, else "http": it is used only to
//     rebuild the login redirect's rd, and an unknown scheme is never reported as TLS.
//   - The policy is always found by host and path. The check URL's query is the original request's,
//     so ?policy= cannot name one, and a header such as x-authgate-policy would come from the client
//     unless every route overwrote it; per-route policies need the gRPC service with
//     context_extensions.
//   - Allow is exactly 200 (Envoy treats any other status, 204 included, as a denial), with the
//     identity headers (listed in allowed_upstream_headers) and x-envoy-auth-headers-to-remove
//     naming the policy's identity headers the decision does not set. Denials are written as
//     proxy.WriteDecision does, browsers that must log in getting a 302 to the login page. A slid
//     session's Set-Cookie reaches the client only if allowed_client_headers_on_success lists it.
//   - A check that could not be decided (store or JWKS unavailable, not ready) is a 503, which
//     Envoy treats as an error: failure_mode_allow and status_on_error decide, as operators chose.
//
// The handler reads the raw request target: mount it where http.ServeMux's path cleaning cannot
// redirect "/check/envoy/a/../b" (a 301 would be a denial for the wrong reason).
package envoyhttp

import (
	"net/http"
	"strings"

	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/proxy"
)

// PathPrefix is the http_service.path_prefix the adapter is served under.
const PathPrefix = "/check/envoy"

const adapter = "envoy-http"

// Handler answers Envoy HTTP-service checks with the decisions of c.
func Handler(c proxy.Checker) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := Parse(r)
		if err != nil {
			proxy.WriteMisconfigured(r.Context(), w, adapter, err)
			return
		}
		d := c.Check(r.Context(), req)
		if d.Outcome == authz.Allow && len(d.Remove) > 0 {
			w.Header().Set("X-Envoy-Auth-Headers-To-Remove", strings.ToLower(strings.Join(d.Remove, ",")))
		}
		proxy.WriteDecision(r.Context(), w, adapter, d, true)
	})
}

// Parse builds the check request from what Envoy sent.
func Parse(r *http.Request) (*authz.Request, error) {
	target := r.RequestURI
	if !strings.HasPrefix(target, "/") {
		// Not a server request in origin form (a test request or an absolute-form target).
		target = r.URL.EscapedPath()
		if r.URL.RawQuery != "" || r.URL.ForceQuery {
			target += "?" + r.URL.RawQuery
		}
	}
	rest, ok := strings.CutPrefix(target, PathPrefix)
	if !ok {
		return nil, proxy.Misconfiguration("the check path does not start with " + PathPrefix)
	}
	switch {
	case rest == "":
		rest = "/"
	case rest[0] == '?':
		rest = "/" + rest
	case rest[0] != '/':
		return nil, proxy.Misconfiguration("the check path must be " + PathPrefix + " followed by the original path")
	}
	path, query, err := policy.SplitRequestURI(rest)
	if err != nil {
		return nil, proxy.Misconfiguration(err.Error())
	}
	if r.Host == "" {
		return nil, proxy.Misconfiguration("the proxy sent no Host")
	}
	if r.Method == "" {
		return nil, proxy.Misconfiguration("the proxy sent no method")
	}
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	req := &authz.Request{
		Protocol:  authz.ProtocolEnvoyHTTP,
		Method:    r.Method,
		Scheme:    scheme(proto),
		Host:      r.Host,
		Path:      path,
		Query:     query,
		ClientIP:  proxy.ClientIP("", r.Header.Get("X-Forwarded-For")),
		RequestID: r.Header.Get("X-Request-ID"),
	}
	proxy.Credentials(r.Header, req)
	return req, nil
}

// scheme is "https" when X-Forwarded-Proto says so, else "http" (the same rule as the gRPC service).
func scheme(proto string) string {
	if strings.EqualFold(strings.TrimSpace(proto), "https") {
		return "https"
	}
	return "http"
}
