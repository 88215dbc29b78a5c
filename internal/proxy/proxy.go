// Package proxy holds what the HTTP protocol adapters share: reading the policy a proxy names,
// writing a Decision as an HTTP answer, and telling misconfigured proxies apart from denied
// requests. Each adapter lives in its own subpackage and only translates between its proxy's wire
// format and authz.Request/authz.Decision; no policy logic lives here.
package proxy

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-logr/logr"

	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/policy"
)

// Checker decides requests; *authz.Engine implements it.
type Checker interface {
	Check(ctx context.Context, r *authz.Request) authz.Decision
}

// Handler serves an adapter: parse turns the proxy's request into a check request (or a
// Misconfigured error), the checker decides, and the decision is written back. redirect says whether
// browser logins are answered with a 302 (Traefik, Envoy) rather than a 401 (nginx, whose
// auth-signin redirects).
func Handler(c Checker, adapter string, parse func(*http.Request) (*authz.Request, error), redirect bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := parse(r)
		if err != nil {
			WriteMisconfigured(r.Context(), w, adapter, err)
			return
		}
		WriteDecision(r.Context(), w, adapter, c.Check(r.Context(), req), redirect)
	})
}

// PolicyFromQuery reads the policy a proxy names in the check URL's raw query
// (?policy=<ns>/<name>). An absent parameter is the zero Ref (find the policy by host and path); a
// malformed one, or one given twice, is an error. It reads the one parameter it needs rather than
// parsing the whole query into a map on every check.
func PolicyFromQuery(rawQuery string) (policy.Ref, error) {
	var value string
	found := false
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		key, val, _ := strings.Cut(pair, "=")
		if key != "policy" {
			if k, err := url.QueryUnescape(key); err != nil || k != "policy" {
				continue
			}
		}
		if found {
			return policy.Ref{}, Misconfiguration("the policy query parameter is given more than once")
		}
		found = true
		if strings.ContainsAny(val, "%+") {
			v, err := url.QueryUnescape(val)
			if err != nil {
				return policy.Ref{}, Misconfiguration("the policy query parameter is not valid percent-encoding")
			}
			val = v
		}
		value = val
	}
	if !found {
		return policy.Ref{}, nil
	}
	ref, err := policy.ParseRef(value)
	if err != nil {
		return policy.Ref{}, Misconfiguration(err.Error())
	}
	return ref, nil
}

// Misconfigured is an error of the proxy's configuration (a missing header, a malformed policy
// reference): answered 400 and logged, because an operator has to fix it.
type Misconfigured struct{ msg string }

func (e *Misconfigured) Error() string { return e.msg }

// Misconfiguration returns a Misconfigured error with msg.
func Misconfiguration(msg string) error { return &Misconfigured{msg: msg} }

// RequireHeader returns the single value of a header the proxy must send.
func RequireHeader(h http.Header, name string) (string, error) {
	vals := h.Values(name)
	switch len(vals) {
	case 0:
		return "", Misconfiguration("the proxy did not send " + name)
	case 1:
		if vals[0] == "" {
			return "", Misconfiguration("the proxy sent an empty " + name)
		}
		return vals[0], nil
	default:
		return "", Misconfiguration("the proxy sent " + name + " more than once")
	}
}

// ClientIP returns the client address from a real-IP header, else the first X-Forwarded-For entry.
func ClientIP(realIP, forwardedFor string) string {
	if ip := strings.TrimSpace(realIP); ip != "" {
		return ip
	}
	first, _, _ := strings.Cut(forwardedFor, ",")
	return strings.TrimSpace(first)
}

// Credentials copies the client's credentials and Accept header into r. Several Cookie headers are
// joined as HTTP/2 proxies may split them.
func Credentials(h http.Header, r *authz.Request) {
	r.Cookie = strings.Join(h.Values("Cookie"), "; ")
	r.Authorization = h.Get("Authorization")
	r.Accept = h.Get("Accept")
}

// WriteMisconfigured answers a request the proxy should never have sent like this, and logs it: the
// operator has to fix the proxy's configuration.
func WriteMisconfigured(ctx context.Context, w http.ResponseWriter, adapter string, err error) {
	logr.FromContextOrDiscard(ctx).WithName(adapter).Error(err, "Proxy misconfigured: check request rejected")
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "authgate: misconfigured "+adapter+" check: "+err.Error(), http.StatusBadRequest)
}

// WriteDecision writes a decision in the common HTTP form: 200 with identity headers on allow, 401
// with WWW-Authenticate, 403, 400 or 503 otherwise, at most one Set-Cookie, and Cache-Control:
// no-store on every denial and on every answer that carries a cookie. redirect, when true, answers
// browser logins with a 302 to the login page instead of a 401.
func WriteDecision(ctx context.Context, w http.ResponseWriter, adapter string, d authz.Decision, redirect bool) {
	h := w.Header()
	if d.SetCookie != "" {
		h.Set("Set-Cookie", d.SetCookie)
	}
	if d.Outcome != authz.Allow || d.SetCookie != "" {
		h.Set("Cache-Control", "no-store")
	}
	switch d.Outcome {
	case authz.Allow:
		// Names are canonical already (internal/policy canonicalizes them), so they are set
		// directly, with one allocation for all the values.
		values := make([]string, len(d.Headers))
		for i, hdr := range d.Headers {
			values[i] = hdr.Value
			h[hdr.Name] = values[i : i+1 : i+1]
		}
		w.WriteHeader(http.StatusOK)
		return
	case authz.Unauthenticated:
		if redirect && d.Browser && d.LoginURL != "" {
			h.Set("Location", d.LoginURL)
			w.WriteHeader(http.StatusFound)
			return
		}
		h.Set("WWW-Authenticate", d.Scheme+` realm="authgate"`)
		writeText(w, http.StatusUnauthorized, "unauthenticated: "+d.Reason)
	case authz.Forbidden:
		writeText(w, http.StatusForbidden, "forbidden: "+d.Reason)
	case authz.BadRequest:
		logr.FromContextOrDiscard(ctx).WithName(adapter).Info("Check request refused", "reason", d.Reason, "detail", d.Detail)
		writeText(w, http.StatusBadRequest, "bad request: "+d.Reason)
	default:
		logr.FromContextOrDiscard(ctx).WithName(adapter).Error(nil, "Check failed", "reason", d.Reason, "detail", d.Detail)
		h.Set("Retry-After", strconv.Itoa(1))
		writeText(w, http.StatusServiceUnavailable, "unavailable: "+d.Reason)
	}
}

func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg + "\n"))
}
