package envoygrpc_test

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/proxy/envoygrpc"
	"github.com/authgate/authgate/internal/session"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/token"
)

// world is a real Engine over the fixture policy shop/shop and a second policy shop/other (host
// other.example.com, everything public), with a memory store.
type world struct {
	t        testing.TB
	engine   *authz.Engine
	sessions *session.Manager
	shop     *policy.Policy
}

func newWorld(t testing.TB) *world {
	t.Helper()
	shop, err := policy.Compile(fixture.AuthPolicy(), fixture.Secrets())
	if err != nil {
		t.Fatal(err)
	}
	oap := fixture.AuthPolicy()
	oap.Name = "other"
	oap.Spec.Hosts = []authgatev1.HostPattern{"other.example.com"}
	oap.Spec.Rules = []authgatev1.Rule{{Name: "all", Match: authgatev1.RouteMatch{PathPrefix: "/"}, Mode: authgatev1.ModePublic}}
	other, err := policy.Compile(oap, fixture.Secrets())
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	deny, err := authz.NewDenylist(context.Background(), st, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(deny.Close)
	verifier := token.NewVerifier(token.WithDenylist(deny))
	t.Cleanup(verifier.Close)
	snaps := &authz.AtomicSnapshot{}
	snaps.Store(policy.NewSnapshot([]*policy.Policy{shop, other}))
	sessions := session.NewManager(st, time.Now)
	return &world{t: t, engine: authz.NewEngine(snaps, sessions, verifier), sessions: sessions, shop: shop}
}

func (w *world) user(email string) policy.User {
	u, ok := w.shop.Login().User(email)
	if !ok {
		w.t.Fatalf("no user %s", email)
	}
	return u
}

func (w *world) login(email string) string {
	id, _, err := w.sessions.Create(context.Background(), w.shop, w.user(email))
	if err != nil {
		w.t.Fatal(err)
	}
	return id
}

func (w *world) token(email string, issued time.Time) string {
	raw, _, err := token.Issue(w.shop, w.user(email), "fam-"+email, issued)
	if err != nil {
		w.t.Fatal(err)
	}
	return raw
}

// serve runs s on a loopback listener and returns clients of it.
func serve(t testing.TB, s *envoygrpc.Server) (authv3.AuthorizationClient, healthpb.HealthClient) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	s.Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn), healthpb.NewHealthClient(conn)
}

func check(method, host, path string, headers, ext map[string]string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "203.0.113.9"}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Scheme: "https", Host: host, Path: path, Headers: headers,
		}},
		ContextExtensions: ext,
	}}
}

// httpStatus is the status Envoy would answer with: 200 for an allow (the upstream's, really).
func httpStatus(r *authv3.CheckResponse) int {
	if r.GetStatus().GetCode() == 0 {
		return 200
	}
	if d := r.GetDeniedResponse(); d != nil && d.GetStatus() != nil {
		return int(d.GetStatus().GetCode())
	}
	return 403 // Envoy's default
}

func headerMap(t *testing.T, hs []*corev3.HeaderValueOption) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, h := range hs {
		k := h.GetHeader().GetKey()
		if _, dup := m[k]; dup {
			t.Errorf("header %s set twice", k)
		}
		m[k] = h.GetHeader().GetValue()
	}
	return m
}

func TestConformance(t *testing.T) {
	w := newWorld(t)
	client, _ := serve(t, envoygrpc.NewServer(w.engine))
	admin := w.login("admin@example.com")
	revoked := w.login("viewer@example.com")
	if _, err := w.sessions.Delete(context.Background(), w.shop, revoked); err != nil {
		t.Fatal(err)
	}
	adminToken := w.token("admin@example.com", time.Now())
	viewerToken := w.token("viewer@example.com", time.Now())
	expired := w.token("admin@example.com", time.Now().Add(-time.Hour))
	const shopHost = "shop.example.com"
	html := map[string]string{"accept": "text/html"}
	jsonAccept := map[string]string{"accept": "application/json"}

	cases := []struct {
		name    string
		req     *authv3.CheckRequest
		code    codes.Code
		status  int
		headers map[string]string // expected ok_response headers (allow) or denied headers subset
		remove  []string          // expected headers_to_remove (allow)
		body    string            // substring of the denied body
	}{
		{name: "session allowed", req: check("GET", shopHost, "/orders", map[string]string{"cookie": "a=b; shop_session=" + admin}, nil),
			code: codes.OK, status: 200, headers: map[string]string{"x-user-id": "admin@example.com", "x-user-email": "admin@example.com", "x-user-role": "admin,editor"}},
		{name: "jwt allowed", req: check("POST", shopHost, "/api/orders", map[string]string{"authorization": "Bearer " + adminToken}, nil),
			code: codes.OK, status: 200, headers: map[string]string{"x-user-id": "admin@example.com", "x-user-email": "admin@example.com", "x-user-role": "admin,editor"}},
		{name: "api client without credentials", req: check("GET", shopHost, "/api/orders", jsonAccept, nil),
			code: codes.Unauthenticated, status: 401, headers: map[string]string{"www-authenticate": `Bearer realm="authgate"`, "cache-control": "no-store"}, body: "no_credentials"},
		{name: "forbidden", req: check("GET", shopHost, "/api/orders", map[string]string{"authorization": "Bearer " + viewerToken}, nil),
			code: codes.PermissionDenied, status: 403, headers: map[string]string{"cache-control": "no-store"}, body: "missing_role"},
		{name: "expired token", req: check("GET", shopHost, "/api/orders", map[string]string{"authorization": "Bearer " + expired}, nil),
			code: codes.Unauthenticated, status: 401, headers: map[string]string{"www-authenticate": `Bearer realm="authgate"`}, body: "token_"},
		{name: "revoked session", req: check("GET", shopHost, "/orders", map[string]string{"cookie": "shop_session=" + revoked, "accept": "application/json"}, nil),
			code: codes.Unauthenticated, status: 401, headers: map[string]string{"cache-control": "no-store"}, body: "no_session"},
		{name: "public path with a query", req: check("GET", shopHost, "/static/app.css?v=1", nil, nil),
			code: codes.OK, status: 200, headers: map[string]string{}, remove: []string{"x-user-email", "x-user-id", "x-user-role"}},
		{name: "spoofed identity header", req: check("GET", shopHost, "/static/app.css", map[string]string{"x-user-id": "admin@example.com", "x-user-role": "admin"}, nil),
			code: codes.OK, status: 200, headers: map[string]string{}, remove: []string{"x-user-email", "x-user-id", "x-user-role"}},
		{name: "context extension chooses the policy", req: check("GET", shopHost, "/orders", nil, map[string]string{"policy": "shop/other"}),
			code: codes.OK, status: 200, headers: map[string]string{}, remove: []string{"x-user-email", "x-user-id", "x-user-role"}},
		{name: "without the extension the host decides", req: check("GET", shopHost, "/orders", jsonAccept, nil),
			code: codes.Unauthenticated, status: 401},
		{name: "host routing to the other policy", req: check("DELETE", "other.example.com", "/anything", nil, nil),
			code: codes.OK, status: 200, headers: map[string]string{}, remove: []string{"x-user-email", "x-user-id", "x-user-role"}},
		{name: "malformed policy extension", req: check("GET", shopHost, "/", nil, map[string]string{"policy": "shop"}),
			code: codes.InvalidArgument, status: 400, headers: map[string]string{"cache-control": "no-store"}, body: "want <namespace>/<name>"},
		{name: "unknown policy", req: check("GET", shopHost, "/", nil, map[string]string{"policy": "x/y"}),
			code: codes.InvalidArgument, status: 400, body: "unknown_policy"},
		{name: "pseudo-headers only", req: &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
			Http: &authv3.AttributeContext_HttpRequest{Headers: map[string]string{":authority": shopHost, ":path": "/orders?x=1", ":method": "GET", "cookie": "shop_session=" + admin}}}}},
			code: codes.OK, status: 200, headers: map[string]string{"x-user-id": "admin@example.com", "x-user-email": "admin@example.com", "x-user-role": "admin,editor"}},
		{name: "traversal is not public", req: check("GET", shopHost, "/static/%2e%2e/api/x", jsonAccept, nil),
			code: codes.Unauthenticated, status: 401},
		{name: "encoded slash", req: check("GET", shopHost, "/static%2F..%2Fapi", nil, nil),
			code: codes.InvalidArgument, status: 400, body: "bad_path"},
		{name: "fragment", req: check("GET", shopHost, "/a#b", nil, nil), code: codes.InvalidArgument, status: 400},
		{name: "empty request", req: &authv3.CheckRequest{}, code: codes.PermissionDenied, status: 400, body: "attributes.request.http"},
		{name: "no http attributes", req: &authv3.CheckRequest{Attributes: &authv3.AttributeContext{ContextExtensions: map[string]string{"policy": "shop/shop"}}},
			code: codes.PermissionDenied, status: 400},
		{name: "no path", req: check("GET", shopHost, "", nil, nil), code: codes.PermissionDenied, status: 400, body: "no path"},
		{name: "no host", req: check("GET", "", "/", nil, nil), code: codes.PermissionDenied, status: 400, body: "no host"},
		{name: "no method", req: check("", shopHost, "/", nil, nil), code: codes.PermissionDenied, status: 400, body: "no method"},
		{name: "browser without session", req: check("GET", shopHost, "/orders", html, nil), code: codes.Unauthenticated, status: 302},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := client.Check(context.Background(), tc.req)
			if err != nil {
				t.Fatalf("RPC error %v: a decision must never be one", err)
			}
			if got := codes.Code(resp.GetStatus().GetCode()); got != tc.code || httpStatus(resp) != tc.status {
				t.Fatalf("answer %s/%d (%q), want %s/%d", got, httpStatus(resp), resp.GetStatus().GetMessage(), tc.code, tc.status)
			}
			if tc.code == codes.OK {
				ok := resp.GetOkResponse()
				if ok == nil {
					t.Fatal("allow without ok_response")
				}
				got := headerMap(t, ok.GetHeaders())
				if len(got) != len(tc.headers) {
					t.Errorf("ok_response headers %v, want %v", got, tc.headers)
				}
				for k, v := range tc.headers {
					if got[k] != v {
						t.Errorf("%s = %q, want %q", k, got[k], v)
					}
				}
				for _, h := range ok.GetHeaders() {
					//lint:ignore SA1019 older Envoys read only the deprecated append field, which must say false
					appendFalse := h.Append != nil && !h.Append.GetValue()
					if !appendFalse || h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
						t.Errorf("header %s does not overwrite: append=false %v, action=%v", h.GetHeader().GetKey(), appendFalse, h.GetAppendAction())
					}
				}
				remove := strings.Join(sorted(ok.GetHeadersToRemove()), ",")
				if remove != strings.Join(tc.remove, ",") {
					t.Errorf("headers_to_remove = %s, want %v", remove, tc.remove)
				}
				return
			}
			den := resp.GetDeniedResponse()
			if den == nil {
				t.Fatal("denial without denied_response")
			}
			got := headerMap(t, den.GetHeaders())
			if got["cache-control"] != "no-store" {
				t.Error("denial without cache-control: no-store")
			}
			for k, v := range tc.headers {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			if !strings.Contains(den.GetBody(), tc.body) {
				t.Errorf("body %q, want it to mention %q", den.GetBody(), tc.body)
			}
		})
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestBrowserRedirect(t *testing.T) {
	w := newWorld(t)
	client, _ := serve(t, envoygrpc.NewServer(w.engine))
	resp, err := client.Check(context.Background(), check("GET", "shop.example.com", "/orders/7?tab=a%20b", map[string]string{"accept": "text/html"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if codes.Code(resp.GetStatus().GetCode()) != codes.Unauthenticated || httpStatus(resp) != 302 {
		t.Fatalf("answer %d/%d, want UNAUTHENTICATED/302", resp.GetStatus().GetCode(), httpStatus(resp))
	}
	h := headerMap(t, resp.GetDeniedResponse().GetHeaders())
	loc, err := url.Parse(h["location"])
	if err != nil || !loc.IsAbs() || loc.Host != "auth.example.com" || loc.Path != "/auth/login" {
		t.Fatalf("location %q, want the absolute login URL", h["location"])
	}
	if rd := loc.Query().Get("rd"); rd != "https://shop.example.com/orders/7?tab=a%20b" {
		t.Errorf("rd = %q", rd)
	}
	if p := loc.Query().Get("policy"); p != "shop/shop" {
		t.Errorf("policy = %q", p)
	}
	if _, ok := h["www-authenticate"]; ok {
		t.Error("a redirect carries www-authenticate")
	}
}

func TestSpoofedHeaderOverwritten(t *testing.T) {
	w := newWorld(t)
	client, _ := serve(t, envoygrpc.NewServer(w.engine))
	id := w.login("viewer@example.com")
	resp, err := client.Check(context.Background(), check("GET", "shop.example.com", "/", map[string]string{"cookie": "shop_session=" + id, "x-user-id": "admin@example.com", "x-user-role": "admin"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	h := headerMap(t, resp.GetOkResponse().GetHeaders())
	if h["x-user-id"] != "viewer@example.com" || h["x-user-role"] != "viewer" {
		t.Errorf("identity headers %v, want the viewer's", h)
	}
}

// fixed is a Checker with a fixed decision, to test the translation alone.
type fixed struct {
	d   authz.Decision
	got *authz.Request
}

func (f *fixed) Check(_ context.Context, r *authz.Request) authz.Decision {
	f.got = r
	return f.d
}

func TestAnswers(t *testing.T) {
	t.Run("slid cookie goes to the client, added", func(t *testing.T) {
		resp, err := envoygrpc.NewServer(&fixed{d: authz.Decision{Outcome: authz.Allow, SetCookie: "s=1; Path=/"}}).Check(context.Background(), check("GET", "h", "/", nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		add := resp.GetOkResponse().GetResponseHeadersToAdd()
		//lint:ignore SA1019 the deprecated append field must stay unset here, and only the field says so
		appendSet := len(add) == 1 && add[0].Append != nil
		if len(add) != 1 || add[0].GetHeader().GetKey() != "set-cookie" || add[0].GetHeader().GetValue() != "s=1; Path=/" ||
			appendSet || add[0].GetAppendAction() != corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD {
			t.Errorf("response_headers_to_add = %v", add)
		}
	})
	t.Run("cookie on a denial", func(t *testing.T) {
		resp, err := envoygrpc.NewServer(&fixed{d: authz.Decision{Outcome: authz.Unauthenticated, Scheme: "Bearer", SetCookie: "s=; Max-Age=0"}}).Check(context.Background(), check("GET", "h", "/", nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		if h := headerMap(t, resp.GetDeniedResponse().GetHeaders()); h["set-cookie"] != "s=; Max-Age=0" {
			t.Errorf("headers %v", h)
		}
	})
	for _, reason := range []string{"store_unavailable", "jwks_unavailable", "not_ready"} {
		t.Run("error "+reason+" is UNAVAILABLE", func(t *testing.T) {
			resp, err := envoygrpc.NewServer(&fixed{d: authz.Decision{Outcome: authz.Error, Reason: reason}}).Check(context.Background(), check("GET", "h", "/", nil, nil))
			if status.Code(err) != codes.Unavailable || resp != nil {
				t.Errorf("got %v, %v; want the RPC error UNAVAILABLE", resp, err)
			}
		})
	}
	t.Run("engine not ready", func(t *testing.T) {
		e := authz.NewEngine(&authz.AtomicSnapshot{}, nil, nil)
		_, err := envoygrpc.NewServer(e).Check(context.Background(), check("GET", "h", "/", nil, nil))
		if status.Code(err) != codes.Unavailable {
			t.Errorf("err %v, want UNAVAILABLE", err)
		}
	})
}

func TestParse(t *testing.T) {
	in := check("PUT", "shop.example.com:8443", "/a/%2e%2e/b?x=1&y=%20", map[string]string{
		"cookie": "c=1", "authorization": "Bearer t", "accept": "text/html", "x-request-id": "req-1",
		"x-forwarded-for": "198.51.100.1", "x-user-id": "admin",
	}, map[string]string{"policy": "shop/shop"})
	got, err := envoygrpc.Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	want := authz.Request{
		Protocol: authz.ProtocolEnvoyGRPC, Policy: policy.Ref{Namespace: "shop", Name: "shop"}, Method: "PUT",
		Scheme: "https", Host: "shop.example.com:8443", Path: "/a/%2e%2e/b", Query: "x=1&y=%20",
		ClientIP: "203.0.113.9", Cookie: "c=1", Authorization: "Bearer t", Accept: "text/html", RequestID: "req-1",
	}
	if *got != want {
		t.Errorf("Parse =\n%+v\nwant\n%+v", *got, want)
	}
	in.Attributes.Source = nil
	in.Attributes.Request.Http.Scheme = ""
	if got, _ = envoygrpc.Parse(in); got.ClientIP != "198.51.100.1" || got.Scheme != "http" {
		t.Errorf("fallbacks: client %q scheme %q", got.ClientIP, got.Scheme)
	}
	// header_map (encode_raw_headers) instead of headers.
	raw := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
		HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: ":method", RawValue: []byte("GET")}, {Key: ":authority", RawValue: []byte("h")}, {Key: ":path", RawValue: []byte("/p?q")},
			{Key: ":scheme", RawValue: []byte("https")}, {Key: "cookie", RawValue: []byte("a=1")}, {Key: "cookie", RawValue: []byte("b=2")},
		}},
	}}}}
	if got, err = envoygrpc.Parse(raw); err != nil || got.Method != "GET" || got.Host != "h" || got.Path != "/p" || got.Query != "q" || got.Scheme != "https" || got.Cookie != "a=1; b=2" {
		t.Errorf("header_map: %+v, %v", got, err)
	}
}

func TestHugeHeaders(t *testing.T) {
	w := newWorld(t)
	s := envoygrpc.NewServer(w.engine)
	big := strings.Repeat("v", 64<<10)
	hs := make(map[string]string, 2000)
	for i := range 2000 {
		hs["x-h-"+strconv.Itoa(i)] = big // one shared string: 125 MiB of headers in process
	}
	hs["cookie"] = "shop_session=" + big
	hs["authorization"] = "Bearer " + big
	resp, err := s.Check(context.Background(), check("GET", "shop.example.com", "/api/orders", hs, nil))
	if err != nil || resp.GetStatus().GetCode() == 0 {
		t.Fatalf("huge request: %v, %v; want a denial", resp.GetStatus(), err)
	}

	// Over the network, within gRPC's default 4 MiB message limit: 2,000 headers of 1 KiB.
	client, _ := serve(t, s)
	small := make(map[string]string, 2002)
	for i := range 2000 {
		small["x-h-"+strconv.Itoa(i)] = big[:1024]
	}
	small["cookie"] = "shop_session=" + big
	resp, err = client.Check(context.Background(), check("GET", "shop.example.com", "/orders", small, nil))
	if err != nil || resp.GetStatus().GetCode() == 0 {
		t.Fatalf("huge request over gRPC: %v, %v; want a denial", resp.GetStatus(), err)
	}
}

// BenchmarkCheckGRPCHugeHeaders measures what TestHugeHeaders sends in process: 2000 headers of
// 64 KiB and credentials of 64 KiB, which must cost about as much as any other denial (nothing
// copies or scans the whole request).
func BenchmarkCheckGRPCHugeHeaders(b *testing.B) {
	w := newWorld(b)
	s := envoygrpc.NewServer(w.engine)
	big := strings.Repeat("v", 64<<10)
	hs := make(map[string]string, 2002)
	for i := range 2000 {
		hs["x-h-"+strconv.Itoa(i)] = big
	}
	hs["cookie"] = "shop_session=" + big
	hs["authorization"] = "Bearer " + big
	req := check("GET", "shop.example.com", "/api/orders", hs, nil)
	for b.Loop() {
		resp, err := s.Check(context.Background(), req)
		if err != nil || resp.GetStatus().GetCode() == 0 {
			b.Fatalf("huge request: %v, %v; want a denial", resp.GetStatus(), err)
		}
	}
}

func TestHealth(t *testing.T) {
	_, health := serve(t, envoygrpc.NewServer(&fixed{}))
	for _, svc := range []string{"", "envoy.service.auth.v3.Authorization"} {
		resp, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q: %v, %v", svc, resp, err)
		}
	}
}

func FuzzCheckRequest(f *testing.F) {
	f.Add("GET", "shop.example.com", "/orders?x=1", "cookie", "shop_session=abc", "shop/shop", "https")
	f.Add("", "", "", ":path", "/api/x", "", "")
	f.Add("POST", "other.example.com", "/static/%2e%2e/api", "authorization", "Bearer x.y.z", "shop/other", "HTTP")
	f.Add("get", "a b", "//x/../y#f", ":authority", "shop.example.com", "shop", "")
	w := newWorld(f)
	s := envoygrpc.NewServer(w.engine)
	f.Fuzz(func(t *testing.T, method, host, path, hk, hv, ext, scheme string) {
		req := check(method, host, path, map[string]string{hk: hv}, map[string]string{"policy": ext})
		req.Attributes.Request.Http.Scheme = scheme
		if ext == "" {
			req.Attributes.ContextExtensions = nil
		}
		resp, err := s.Check(context.Background(), req)
		if err != nil {
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("RPC error %v", err)
			}
			return
		}
		if resp.GetStatus() == nil {
			t.Fatal("no status")
		}
		if resp.GetStatus().GetCode() == 0 {
			if resp.GetOkResponse() == nil {
				t.Fatal("allow without ok_response")
			}
		} else if resp.GetDeniedResponse().GetStatus() == nil {
			t.Fatal("denial without an HTTP status")
		}
	})
}

func benchmark(b *testing.B, req func(w *world) *authv3.CheckRequest) {
	w := newWorld(b)
	s := envoygrpc.NewServer(w.engine)
	r := req(w)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := s.Check(ctx, r)
		if err != nil || resp.GetStatus().GetCode() != 0 {
			b.Fatalf("not allowed: %v %v", resp.GetStatus(), err)
		}
	}
}

func BenchmarkCheckGRPCPublic(b *testing.B) {
	benchmark(b, func(*world) *authv3.CheckRequest {
		return check("GET", "shop.example.com", "/static/app.css?v=1", map[string]string{"accept": "text/css"}, nil)
	})
}

func BenchmarkCheckGRPCSession(b *testing.B) {
	benchmark(b, func(w *world) *authv3.CheckRequest {
		return check("GET", "shop.example.com", "/orders", map[string]string{"cookie": "shop_session=" + w.login("admin@example.com")}, nil)
	})
}

func BenchmarkCheckGRPCJWT(b *testing.B) {
	benchmark(b, func(w *world) *authv3.CheckRequest {
		return check("GET", "shop.example.com", "/api/orders", map[string]string{"authorization": "Bearer " + w.token("admin@example.com", time.Now())}, nil)
	})
}

func BenchmarkCheckGRPCLoopback(b *testing.B) {
	w := newWorld(b)
	client, _ := serve(b, envoygrpc.NewServer(w.engine))
	r := check("GET", "shop.example.com", "/orders", map[string]string{"cookie": "shop_session=" + w.login("admin@example.com")}, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Check(ctx, r)
		if err != nil || resp.GetStatus().GetCode() != 0 {
			b.Fatalf("not allowed: %v %v", resp.GetStatus(), err)
		}
	}
}
