package proxy_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/proxy"
	"github.com/authgate/authgate/internal/proxy/envoygrpc"
	"github.com/authgate/authgate/internal/proxy/envoyhttp"
	"github.com/authgate/authgate/internal/proxy/nginx"
	"github.com/authgate/authgate/internal/proxy/traefik"
	"github.com/authgate/authgate/internal/session"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/token"
)

const host = "shop.example.com"

// identityHeaders are the fixture policy's identity headers, lower-case.
var identityHeaders = []string{"x-user-email", "x-user-id", "x-user-role"}

// client is a client request as the proxy received it.
type client struct {
	method  string
	uri     string            // raw path and query
	headers map[string]string // the client's own headers
}

// answer is what a proxy does with authgate's answer, in common terms.
type answer struct {
	status   int
	location string
	// identity are the identity headers the upstream gets (lower-case names).
	identity map[string]string
	// removed are the identity headers the proxy strips from the client's request.
	removed string
}

// adapter sends a client request through one adapter and reports the answer.
type adapter func(t *testing.T, c client) answer

// httpAnswer reads an HTTP adapter's answer. removeHeader names the header listing the identity
// headers to remove (Envoy); empty means that a listed header missing from the answer is removed
// (nginx auth-response-headers, Traefik authResponseHeaders).
func httpAnswer(rec *httptest.ResponseRecorder, removeHeader string) answer {
	a := answer{status: rec.Code, location: rec.Header().Get("Location"), identity: map[string]string{}}
	var removed []string
	for _, name := range identityHeaders {
		if vals := rec.Header().Values(name); len(vals) == 1 && rec.Code/100 == 2 {
			a.identity[name] = vals[0]
		} else if len(vals) > 1 {
			a.identity[name] = "(several)"
		} else if removeHeader == "" {
			removed = append(removed, name)
		}
	}
	if removeHeader != "" && rec.Code == 200 {
		if v := rec.Header().Get(removeHeader); v != "" {
			removed = strings.Split(v, ",")
		}
	}
	if rec.Code/100 != 2 {
		removed = nil // the request goes nowhere
	}
	sort.Strings(removed)
	a.removed = strings.Join(removed, ",")
	return a
}

func viaNginx(h http.Handler) adapter {
	return func(t *testing.T, c client) answer {
		r := httptest.NewRequest(http.MethodGet, nginx.Path+"?policy=shop/shop", nil)
		r.Host = "authgate.authgate-system.svc"
		r.Header.Set("X-Original-URL", "https://"+host+c.uri)
		r.Header.Set("X-Original-Method", c.method)
		r.Header.Set("X-Sent-From", "nginx-ingress-controller")
		r.Header.Set("X-Real-IP", "203.0.113.9")
		for k, v := range c.headers {
			r.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return httpAnswer(rec, "")
	}
}

func viaTraefik(h http.Handler) adapter {
	return func(t *testing.T, c client) answer {
		r := httptest.NewRequest(http.MethodGet, traefik.Path, nil)
		r.Header.Set("X-Forwarded-Method", c.method)
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("X-Forwarded-Host", host)
		r.Header.Set("X-Forwarded-Uri", c.uri)
		r.Header.Set("X-Forwarded-For", "203.0.113.9")
		for k, v := range c.headers {
			r.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return httpAnswer(rec, "")
	}
}

func viaEnvoyHTTP(h http.Handler) adapter {
	return func(t *testing.T, c client) answer {
		r := httptest.NewRequest(c.method, envoyhttp.PathPrefix+c.uri, nil)
		r.Host = host
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("Content-Length", "0")
		for k, v := range c.headers {
			r.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return httpAnswer(rec, "X-Envoy-Auth-Headers-To-Remove")
	}
}

func viaEnvoyGRPC(t *testing.T, c proxy.Checker) adapter {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	envoygrpc.NewServer(c).Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rpc := authv3.NewAuthorizationClient(conn)
	return func(t *testing.T, c client) answer {
		hs := map[string]string{":authority": host, ":path": c.uri, ":method": c.method, ":scheme": "https"}
		for k, v := range c.headers {
			hs[strings.ToLower(k)] = v
		}
		resp, err := rpc.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: c.method, Scheme: "https", Host: host, Path: c.uri, Headers: hs,
			}},
			ContextExtensions: map[string]string{"policy": "shop/shop"},
		}})
		if err != nil {
			t.Fatalf("RPC error %v", err)
		}
		a := answer{identity: map[string]string{}}
		if resp.GetStatus().GetCode() == 0 {
			a.status = 200
			for _, h := range resp.GetOkResponse().GetHeaders() {
				if _, dup := a.identity[h.GetHeader().GetKey()]; dup {
					a.identity[h.GetHeader().GetKey()] = "(several)"
					continue
				}
				a.identity[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
			}
			removed := append([]string(nil), resp.GetOkResponse().GetHeadersToRemove()...)
			sort.Strings(removed)
			a.removed = strings.Join(removed, ",")
			return a
		}
		a.status = int(resp.GetDeniedResponse().GetStatus().GetCode())
		for _, h := range resp.GetDeniedResponse().GetHeaders() {
			if h.GetHeader().GetKey() == "location" {
				a.location = h.GetHeader().GetValue()
			}
		}
		return a
	}
}

// engine is a real Engine over the fixture policy with a memory store.
func engine(t testing.TB, verifierOpts ...token.VerifierOption) (*authz.Engine, *session.Manager, *policy.Policy) {
	t.Helper()
	p, err := policy.Compile(fixture.AuthPolicy(), fixture.Secrets())
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
	verifier := token.NewVerifier(append(verifierOpts, token.WithDenylist(deny))...)
	t.Cleanup(verifier.Close)
	snaps := &authz.AtomicSnapshot{}
	snaps.Store(policy.NewSnapshot([]*policy.Policy{p}))
	sessions := session.NewManager(st, time.Now)
	return authz.NewEngine(snaps, sessions, verifier), sessions, p
}

// TestAdaptersAgree sends the same client requests through every adapter, against one Engine, and
// checks that the proxies would do the same thing with each answer.
func TestAdaptersAgree(t *testing.T) {
	e, sessions, p := engine(t)
	ctx := context.Background()
	user := func(email string) policy.User {
		u, ok := p.Login().User(email)
		if !ok {
			t.Fatalf("no user %s", email)
		}
		return u
	}
	login := func(email string) string {
		id, _, err := sessions.Create(ctx, p, user(email))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	tok := func(email string, issued time.Time) string {
		raw, _, err := token.Issue(p, user(email), "fam-"+email, issued)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	admin := login("admin@example.com")
	loggedOut := login("admin@example.com")
	if _, err := sessions.Delete(ctx, p, loggedOut); err != nil {
		t.Fatal(err)
	}
	adminToken := tok("admin@example.com", time.Now())
	viewerToken := tok("viewer@example.com", time.Now())
	expired := tok("admin@example.com", time.Now().Add(-time.Hour))

	adapters := map[string]adapter{
		"nginx":      viaNginx(nginx.Handler(e)),
		"traefik":    viaTraefik(traefik.Handler(e)),
		"envoy-http": viaEnvoyHTTP(envoyhttp.Handler(e)),
		"envoy-grpc": viaEnvoyGRPC(t, e),
	}
	adminIdentity := map[string]string{"x-user-id": "admin@example.com", "x-user-email": "admin@example.com", "x-user-role": "admin,editor"}
	all := strings.Join(identityHeaders, ",")

	cases := []struct {
		name   string
		client client
		// status is the answer of every adapter; nginxStatus, when set, nginx's.
		status, nginxStatus int
		identity            map[string]string
		removed             string
	}{
		{name: "public path", client: client{"GET", "/static/app.css?v=1", nil}, status: 200, removed: all},
		{name: "session cookie", client: client{"GET", "/orders?page=2", map[string]string{"Cookie": "theme=dark; shop_session=" + admin}}, status: 200, identity: adminIdentity},
		{name: "browser without credentials", client: client{"GET", "/orders?page=2", map[string]string{"Accept": "text/html,application/xhtml+xml"}}, status: 302, nginxStatus: 401},
		{name: "API client without credentials", client: client{"GET", "/orders", map[string]string{"Accept": "application/json"}}, status: 401},
		{name: "API path without credentials", client: client{"POST", "/api/orders", nil}, status: 401},
		{name: "JWT on /api/", client: client{"POST", "/api/orders", map[string]string{"Authorization": "Bearer " + adminToken}}, status: 200, identity: adminIdentity},
		{name: "viewer JWT on /api/", client: client{"GET", "/api/orders", map[string]string{"Authorization": "Bearer " + viewerToken}}, status: 403},
		{name: "expired token", client: client{"GET", "/api/orders", map[string]string{"Authorization": "Bearer " + expired}}, status: 401},
		{name: "session after logout", client: client{"GET", "/orders", map[string]string{"Cookie": "shop_session=" + loggedOut, "Accept": "application/json"}}, status: 401},
		{name: "traversal is not public", client: client{"GET", "/static/%2e%2e/api/x", nil}, status: 401},
		{name: "encoded slash", client: client{"GET", "/static%2F..%2Fapi", nil}, status: 400},
		{name: "spoofed identity on a public path", client: client{"GET", "/healthz", map[string]string{"X-User-Id": "admin@example.com", "X-User-Role": "admin"}}, status: 200, removed: all},
		{name: "spoofed identity with a session", client: client{"GET", "/", map[string]string{"Cookie": "shop_session=" + admin, "X-User-Id": "root"}}, status: 200, identity: adminIdentity},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for name, via := range adapters {
				a := via(t, tc.client)
				want := tc.status
				if name == "nginx" && tc.nginxStatus != 0 {
					want = tc.nginxStatus
				}
				if a.status != want {
					t.Errorf("%s: status %d, want %d", name, a.status, want)
					continue
				}
				if want == 302 {
					loc, err := url.Parse(a.location)
					if err != nil || !loc.IsAbs() || loc.Query().Get("rd") != "https://"+host+tc.client.uri {
						t.Errorf("%s: Location %q, want the login URL with rd", name, a.location)
					}
				} else if a.location != "" {
					t.Errorf("%s: Location %q on a %d", name, a.location, want)
				}
				if want != 200 {
					continue
				}
				if len(a.identity) != len(tc.identity) {
					t.Errorf("%s: identity %v, want %v", name, a.identity, tc.identity)
				}
				for k, v := range tc.identity {
					if a.identity[k] != v {
						t.Errorf("%s: %s = %q, want %q", name, k, a.identity[k], v)
					}
				}
				if a.removed != tc.removed {
					t.Errorf("%s: removed %q, want %q", name, a.removed, tc.removed)
				}
			}
		})
	}
}
