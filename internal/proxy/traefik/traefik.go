// Package traefik answers Traefik forwardAuth checks at GET /check/traefik.
//
// Traefik sends the original request in X-Forwarded-Method, -Proto, -Host, -Uri and -For, and passes
// the client's other headers through. This adapter reads only those and the client's credentials:
// X-Original-URL and identity headers on this path come from the client and are never trusted.
// Browsers that must log in get a 302 to the login page (Traefik relays non-2xx answers whole), API
// clients a 401.
package traefik

import (
	"net/http"
	"strings"

	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/proxy"
)

// Path is where the adapter is served.
const Path = "/check/traefik"

// Handler answers Traefik checks with the decisions of c.
func Handler(c proxy.Checker) http.Handler {
	return proxy.Handler(c, "traefik", Parse, true)
}

// Parse builds the check request from what Traefik sent.
func Parse(r *http.Request) (*authz.Request, error) {
	ref, err := proxy.PolicyFromQuery(r.URL.RawQuery)
	if err != nil {
		return nil, err
	}
	var vals [4]string
	for i, name := range []string{"X-Forwarded-Method", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Uri"} {
		if vals[i], err = proxy.RequireHeader(r.Header, name); err != nil {
			return nil, err
		}
	}
	method, scheme, host, uri := vals[0], strings.ToLower(vals[1]), vals[2], vals[3]
	if scheme != "http" && scheme != "https" {
		return nil, proxy.Misconfiguration("X-Forwarded-Proto must be http or https")
	}
	if !strings.HasPrefix(uri, "/") {
		return nil, proxy.Misconfiguration("X-Forwarded-Uri must start with /")
	}
	path, query, _ := strings.Cut(uri, "?")
	req := &authz.Request{
		Protocol:  authz.ProtocolTraefik,
		Policy:    ref,
		Method:    method,
		Scheme:    scheme,
		Host:      host,
		Path:      path,
		Query:     query,
		ClientIP:  proxy.ClientIP("", r.Header.Get("X-Forwarded-For")),
		RequestID: r.Header.Get("X-Request-ID"),
	}
	proxy.Credentials(r.Header, req)
	return req, nil
}
