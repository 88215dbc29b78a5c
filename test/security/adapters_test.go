package security

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/authgate/authgate/test/harness"
)

// probe is a request as a client sends it to the ingress; each adapter turns it into what its proxy
// sends authgate.
type probe struct {
	method  string   // GET when empty
	host    string   // the Host the client names; shop.example.com when empty
	target  string   // the raw request target, path and query, sent as it is
	headers []string // name, value pairs, sent raw (values may hold anything, CR and LF included)
}

func (p probe) String() string {
	return fmt.Sprintf("%s %s%s", p.verb(), p.hostName(), p.target)
}

func (p probe) verb() string {
	if p.method == "" {
		return http.MethodGet
	}
	return p.method
}

func (p probe) hostName() string {
	if p.host == "" {
		return harness.AppHost
	}
	return p.host
}

// answer is what an adapter made of a probe.
type answer struct {
	adapter string
	// status is what the proxy acts on: the check answer's status (nginx: the client's), the
	// gRPC denied_response's, or 200 for a gRPC OK.
	status  int
	allowed bool // whether the proxy lets the request through to the application
	// header holds the webhook's answer headers: the HTTP answer's, or for gRPC the ok_response
	// headers (and response_headers_to_add) or the denied_response headers.
	header http.Header
	remove []string // identity headers the answer asks Envoy to remove
	body   string
	rpcErr error // gRPC only

	client   http.Header           // nginx only: the headers of nginx's answer to the client
	upstream []harness.SeenRequest // nginx only: what the application received
	checks   []harness.CheckRecord // nginx only: the checks nginx made
	trailing []byte                // HTTP only: bytes after the answer (a split response)
}

func (a answer) String() string {
	s := fmt.Sprintf("%s answered %d", a.adapter, a.status)
	if a.rpcErr != nil {
		s += fmt.Sprintf(" (RPC error %v)", a.rpcErr)
	}
	if a.adapter == "nginx" {
		for _, c := range a.checks {
			s += fmt.Sprintf(" (check %d)", c.Status)
		}
		s += fmt.Sprintf(", %d requests reached the upstream", len(a.upstream))
	}
	if a.allowed {
		s += ", allowed"
	}
	return s
}

// adapter sends a probe through one proxy's convention.
type adapter struct {
	name  string
	check func(s *suite, p probe) answer
}

// adapters are every way authgate is asked: real nginx in front of the application, Traefik's
// forwardAuth, Envoy's HTTP service, Envoy's gRPC service.
var adapters = []adapter{
	{"nginx", viaNginx},
	{"traefik", viaTraefik},
	{"envoy-http", viaEnvoyHTTP},
	{"envoy-grpc", viaEnvoyGRPC},
}

// viaNginx sends the probe to nginx as a client would, byte for byte; the application's echo and
// the recording proxy tell what happened.
func viaNginx(s *suite, p probe) answer {
	id := s.NewRequestID()
	host := p.hostName()
	if !strings.Contains(host, ":") {
		host += ":" + s.NginxPort
	}
	r := s.exchange(s.NginxAddr, p.verb(), p.target, host, append(p.headers[:len(p.headers):len(p.headers)], "X-Request-ID", id))
	a := answer{adapter: "nginx", status: r.StatusCode, body: string(r.body), trailing: r.trailing, client: r.Header,
		upstream: s.Upstream.ByRequestID(id), checks: s.Checks.ByRequestID(id)}
	a.allowed = len(a.upstream) > 0
	if len(a.checks) > 0 {
		a.header = a.checks[0].Header
	}
	return a
}

// viaNginxEndpoint sends the check nginx would send for the probe straight to the webhook's
// /check/nginx, so that header-level attacks (CR and LF, sizes) that nginx itself stops reach the
// webhook's own parser.
func viaNginxEndpoint(s *suite, p probe) answer {
	return s.checkEndpoint("nginx-endpoint", "/check/nginx?policy=shop%2Fshop", append([]string{
		"X-Original-URL", "http://" + p.hostName() + p.target,
		"X-Original-Method", p.verb(),
		"X-Sent-From", "nginx-ingress-controller",
		"X-Real-IP", "203.0.113.7",
		"X-Forwarded-For", "203.0.113.7",
	}, p.headers...))
}

// viaTraefik sends what Traefik's forwardAuth sends for the probe.
func viaTraefik(s *suite, p probe) answer {
	return s.checkEndpoint("traefik", "/check/traefik?policy=shop%2Fshop", append([]string{
		"X-Forwarded-Method", p.verb(),
		"X-Forwarded-Proto", "http",
		"X-Forwarded-Host", p.hostName(),
		"X-Forwarded-Uri", p.target,
		"X-Forwarded-For", "203.0.113.7",
	}, p.headers...))
}

// checkEndpoint GETs a check endpoint of the webhook with a proxy's headers; any 2xx allows.
func (s *suite) checkEndpoint(name, target string, headers []string) answer {
	r := s.exchange(s.WebhookAddr, http.MethodGet, target, "authgate-webhook.authgate.svc.cluster.local:8080", headers)
	return answer{adapter: name, status: r.StatusCode, allowed: r.StatusCode/100 == 2, header: r.Header,
		body: string(r.body), trailing: r.trailing}
}

// viaEnvoyHTTP sends what Envoy's ext_authz HTTP service sends for the probe (path_prefix
// /check/envoy): the original method, prefix and target, and Host.
func viaEnvoyHTTP(s *suite, p probe) answer {
	r := s.exchange(s.WebhookAddr, p.verb(), "/check/envoy"+p.target, p.hostName(), append([]string{"Content-Length", "0"}, p.headers...))
	a := answer{adapter: "envoy-http", status: r.StatusCode, allowed: r.StatusCode == http.StatusOK, header: r.Header,
		body: string(r.body), trailing: r.trailing}
	if v := r.Header.Get("X-Envoy-Auth-Headers-To-Remove"); v != "" {
		a.remove = strings.Split(v, ",")
	}
	return a
}

// viaEnvoyGRPC sends the CheckRequest Envoy sends for the probe, naming the policy in
// context_extensions as a route does.
func viaEnvoyGRPC(s *suite, p probe) answer {
	headers := map[string]string{":method": p.verb(), ":path": p.target, ":authority": p.hostName(), ":scheme": "http"}
	for i := 0; i+1 < len(p.headers); i += 2 {
		k, v := strings.ToLower(p.headers[i]), p.headers[i+1]
		if prev, ok := headers[k]; ok {
			sep := ","
			if k == "cookie" {
				sep = "; "
			}
			v = prev + sep + v
		}
		headers[k] = v
	}
	s.Secrets.AddHeaders(pairsHeader(p.headers))
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "203.0.113.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: p.verb(), Host: p.hostName(), Path: p.target, Scheme: "http", Protocol: "HTTP/1.1", Headers: headers,
		}},
		ContextExtensions: map[string]string{"policy": harness.PolicyRef},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := s.grpc.Check(ctx, req)
	a := answer{adapter: "envoy-grpc", header: http.Header{}}
	if err != nil {
		a.rpcErr, a.status = err, http.StatusServiceUnavailable
		return a
	}
	if codes.Code(resp.GetStatus().GetCode()) == codes.OK {
		a.status, a.allowed = http.StatusOK, true
		ok := resp.GetOkResponse()
		for _, h := range ok.GetHeaders() {
			a.header.Add(h.GetHeader().GetKey(), h.GetHeader().GetValue())
			// Identity headers must overwrite the client's copies, for Envoys that read the
			// deprecated append (explicitly false) and for those that read append_action.
			//lint:ignore SA1019 PROTOCOLS.md asks for append explicitly false
			appends := h.GetAppend() == nil || h.GetAppend().GetValue()
			if appends || h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
				a.header.Add("X-Test-Appended", h.GetHeader().GetKey())
			}
		}
		for _, h := range ok.GetResponseHeadersToAdd() {
			a.header.Add(h.GetHeader().GetKey(), h.GetHeader().GetValue())
		}
		a.remove = ok.GetHeadersToRemove()
		return a
	}
	denied := resp.GetDeniedResponse()
	a.status, a.body = int(denied.GetStatus().GetCode()), denied.GetBody()
	for _, h := range denied.GetHeaders() {
		a.header.Add(h.GetHeader().GetKey(), h.GetHeader().GetValue())
	}
	return a
}

// pairsHeader makes an http.Header of name, value pairs, values as they are.
func pairsHeader(pairs []string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(pairs); i += 2 {
		h.Add(pairs[i], pairs[i+1])
	}
	return h
}

// rawAnswer is an HTTP answer read off the wire.
type rawAnswer struct {
	*http.Response
	body     []byte
	trailing []byte // what followed the answer on the connection
}

// exchange writes one request to addr byte for byte (the Go client would refuse or rewrite the
// malformed ones), with Connection: close, and reads the answer and whatever follows it. The
// credentials among the headers join the secrets the webhook's log must not hold.
func (s *suite) exchange(addr, method, target, host string, headers []string) rawAnswer {
	t := s.T()
	t.Helper()
	s.Secrets.AddHeaders(pairsHeader(headers))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, host)
	for i := 0; i+1 < len(headers); i += 2 {
		b.WriteString(headers[i] + ": " + headers[i+1] + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	return rawExchange(t, addr, method, b.String())
}

// rawExchange sends request, as it is, on a new connection to addr and reads the answer.
func rawExchange(t *testing.T, addr, method, request string) rawAnswer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatalf("writing to %s: %v", addr, err)
	}
	all, err := io.ReadAll(conn)
	if err != nil && len(all) == 0 {
		t.Fatalf("reading the answer of %s to %.200q: %v", addr, request, err)
	}
	br := bufio.NewReader(bytes.NewReader(all))
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("the answer of %s to %.200q does not parse (%v): %.500q", addr, request, err, all)
	}
	body, _ := io.ReadAll(resp.Body)
	trailing, _ := io.ReadAll(br)
	return rawAnswer{Response: resp, body: body, trailing: trailing}
}

// expectDenied fails the test unless the answer denies the request as a decision should: not let
// through, never an RPC error or a 5xx from authgate, no identity header, nothing after the answer.
func expectDenied(t *testing.T, what string, a answer) {
	t.Helper()
	if a.allowed {
		t.Errorf("%s: %s: the request was let through", what, a)
		return
	}
	switch a.adapter {
	case "nginx":
		// nginx turns a check's 400 into a 500 for the client: the check answers are held to "no
		// 5xx" by the harness.
		if len(a.upstream) > 0 {
			t.Errorf("%s: %s: the application received it", what, a)
		}
	case "envoy-grpc":
		if a.rpcErr != nil {
			t.Errorf("%s: %s: a decision must be a CheckResponse, never an RPC error", what, a)
		}
	default:
		if a.status >= 500 {
			t.Errorf("%s: %s: a decision must never be a 5xx", what, a)
		}
	}
	for _, h := range identityHeaders {
		if v := a.header.Values(h); len(v) > 0 {
			t.Errorf("%s: %s: the denial carries %s %q", what, a, h, v)
		}
	}
	if len(a.trailing) > 0 {
		t.Errorf("%s: %s: %d bytes follow the answer: %.200q", what, a, len(a.trailing), a.trailing)
	}
}

// expectAllowed fails the test unless the answer lets the request through.
func expectAllowed(t *testing.T, what string, a answer) {
	t.Helper()
	if !a.allowed {
		t.Errorf("%s: %s: want it allowed (body %.300q)", what, a, a.body)
	}
}
