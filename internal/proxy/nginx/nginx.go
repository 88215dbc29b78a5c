// Package nginx answers ingress-nginx auth-url checks (and plain nginx auth_request) at
// GET /check/nginx.
//
// ingress-nginx sends the check as a GET to the auth-url, with the original request in
// X-Original-URL ($scheme://$http_host$request_uri, raw) and X-Original-Method, the client address in
// X-Real-IP and X-Forwarded-For, its request id in X-Request-ID, and the client's own Cookie and
// Authorization headers. This adapter reads only those: every other header, X-Forwarded-Host and
// X-Forwarded-Uri included, comes from the client unchanged and could be forged. Browsers that must
// log in get a 401 too; nginx's auth-signin turns it into the redirect to the login page.
package nginx

import (
	"net/http"
	"strings"

	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/proxy"
)

// Path is where the adapter is served.
const Path = "/check/nginx"

// Handler answers nginx checks with the decisions of c.
func Handler(c proxy.Checker) http.Handler {
	return proxy.Handler(c, "nginx", Parse, false)
}

// Parse builds the check request from what nginx sent.
func Parse(r *http.Request) (*authz.Request, error) {
	ref, err := proxy.PolicyFromQuery(r.URL.RawQuery)
	if err != nil {
		return nil, err
	}
	original, err := proxy.RequireHeader(r.Header, "X-Original-URL")
	if err != nil {
		return nil, err
	}
	method, err := proxy.RequireHeader(r.Header, "X-Original-Method")
	if err != nil {
		return nil, err
	}
	scheme, host, path, query, err := SplitOriginalURL(original)
	if err != nil {
		return nil, err
	}
	req := &authz.Request{
		Protocol:  authz.ProtocolNginx,
		Policy:    ref,
		Method:    method,
		Scheme:    scheme,
		Host:      host,
		Path:      path,
		Query:     query,
		ClientIP:  proxy.ClientIP(r.Header.Get("X-Real-IP"), r.Header.Get("X-Forwarded-For")),
		RequestID: r.Header.Get("X-Request-ID"),
	}
	proxy.Credentials(r.Header, req)
	return req, nil
}

// SplitOriginalURL splits X-Original-URL, "$scheme://$http_host$request_uri", without decoding
// anything: the path is normalized once, later, the same way for every proxy. The request URI must
// be in origin form ("/path?query").
func SplitOriginalURL(s string) (scheme, host, path, query string, err error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return "", "", "", "", proxy.Misconfiguration("X-Original-URL must start with http:// or https://")
	}
	slash := strings.IndexByte(rest, '/')
	if slash < 0 {
		return "", "", "", "", proxy.Misconfiguration("X-Original-URL has no path")
	}
	host, uri := rest[:slash], rest[slash:]
	if host == "" {
		return "", "", "", "", proxy.Misconfiguration("X-Original-URL has no host")
	}
	path, query, _ = strings.Cut(uri, "?")
	return scheme, host, path, query, nil
}
