package authz_test

import (
	"context"
	"testing"
	"time"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/session"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/store/storetest"
	"github.com/authgate/authgate/internal/token"
)

// benchEngine is an Engine over the fixture policy, built as newWorld builds it (memory store, fake
// clock, denylist-backed verifier), with a live session and an access token of admin@example.com.
// The clock stands still, so sessions are never extended or touched: every Check measures the
// steady state of a busy gateway, a store read and no write.
type benchEngine struct {
	engine *authz.Engine
	cookie string // "shop_session=<id>"
	bearer string // "Bearer <token>"
}

// newBenchEngine builds the engine; with cached, with the webhook's session and verified-token caches.
func newBenchEngine(b *testing.B, mutate func(*authgatev1.AuthPolicy), cached ...bool) *benchEngine {
	b.Helper()
	ctx := context.Background()
	clock := storetest.NewClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	ap := fixture.AuthPolicy()
	if mutate != nil {
		mutate(ap)
	}
	p, err := policy.Compile(ap, fixture.Secrets())
	if err != nil {
		b.Fatal(err)
	}
	st := store.NewMemory(store.WithClock(clock.Now))
	b.Cleanup(func() { _ = st.Close() })
	deny, err := authz.NewDenylist(ctx, st, clock.Now)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(deny.Close)
	caches := len(cached) > 0 && cached[0]
	verifierOpts := []token.VerifierOption{token.WithClock(clock.Now), token.WithDenylist(deny)}
	var sessionOpts []session.Option
	if caches {
		verifierOpts = append(verifierOpts, token.WithCache(100_000))
		cache := session.NewCache(100_000, 30*time.Second, clock.Now)
		b.Cleanup(cache.Follow(st))
		sessionOpts = append(sessionOpts, session.WithCache(cache))
	}
	verifier := token.NewVerifier(verifierOpts...)
	b.Cleanup(verifier.Close)
	snaps := &authz.AtomicSnapshot{}
	snaps.Store(policy.NewSnapshot([]*policy.Policy{p}))
	sessions := session.NewManager(st, clock.Now, sessionOpts...)

	admin, ok := p.Login().User("admin@example.com")
	if !ok {
		b.Fatal("no admin in the fixture")
	}
	id, _, err := sessions.Create(ctx, p, admin)
	if err != nil {
		b.Fatal(err)
	}
	raw, _, err := token.Issue(p, admin, "bench-family", clock.Now())
	if err != nil {
		b.Fatal(err)
	}
	return &benchEngine{
		engine: authz.NewEngine(snaps, sessions, verifier),
		cookie: "theme=dark; shop_session=" + id + "; lang=en",
		bearer: "Bearer " + raw,
	}
}

// benchRequest is a request as the nginx adapter builds it for shop.example.com.
func benchRequest(path string) authz.Request {
	return authz.Request{
		Protocol: authz.ProtocolNginx, Method: "GET", Scheme: "https", Host: "shop.example.com", Path: path,
		ClientIP: "203.0.113.7", Accept: "text/html,application/xhtml+xml", RequestID: "3f2a9c",
	}
}

// benchmarkCheck checks r once (it must give want and reason), then measures Check on it.
func benchmarkCheck(b *testing.B, e *benchEngine, r authz.Request, want authz.Outcome, reason string) {
	b.Helper()
	ctx := context.Background()
	if d := e.engine.Check(ctx, &r); d.Outcome != want || d.Reason != reason {
		b.Fatalf("decision %s/%s (%s), want %s/%s", d.Outcome, d.Reason, d.Detail, want, reason)
	}
	b.ReportAllocs()
	for b.Loop() {
		if d := e.engine.Check(ctx, &r); d.Outcome != want {
			b.Fatalf("decision %s", d.Outcome)
		}
	}
}

func BenchmarkCheckPublic(b *testing.B) {
	e := newBenchEngine(b, nil)
	benchmarkCheck(b, e, benchRequest("/static/x"), authz.Allow, "public")
}

func BenchmarkCheckSession(b *testing.B) {
	e := newBenchEngine(b, nil)
	r := benchRequest("/")
	r.Cookie = e.cookie
	benchmarkCheck(b, e, r, authz.Allow, "session")
}

func BenchmarkCheckJWT(b *testing.B) {
	e := newBenchEngine(b, nil)
	r := benchRequest("/api/x")
	r.Authorization = e.bearer
	r.Accept = "application/json"
	benchmarkCheck(b, e, r, authz.Allow, "jwt")
}

// BenchmarkCheckJWTCached is the JWT check as the webhook runs it: the token was verified before.
func BenchmarkCheckJWTCached(b *testing.B) {
	e := newBenchEngine(b, nil, true)
	r := benchRequest("/api/x")
	r.Authorization = e.bearer
	r.Accept = "application/json"
	benchmarkCheck(b, e, r, authz.Allow, "jwt")
}

// BenchmarkCheckSessionCached is the session check as the webhook runs it, on a cached record.
func BenchmarkCheckSessionCached(b *testing.B) {
	e := newBenchEngine(b, nil, true)
	r := benchRequest("/orders")
	r.Cookie = e.cookie
	benchmarkCheck(b, e, r, authz.Allow, "session")
}

func BenchmarkCheckEither(b *testing.B) {
	e := newBenchEngine(b, func(p *authgatev1.AuthPolicy) {
		for i := range p.Spec.Rules {
			if p.Spec.Rules[i].Name == "app" {
				p.Spec.Rules[i].Mode = authgatev1.ModeEither
			}
		}
	})
	r := benchRequest("/")
	r.Cookie = e.cookie
	benchmarkCheck(b, e, r, authz.Allow, "session")
}

func BenchmarkCheckDenied(b *testing.B) {
	e := newBenchEngine(b, nil)
	benchmarkCheck(b, e, benchRequest("/orders/7"), authz.Unauthenticated, "no_credentials")
}

// BenchmarkNormalizeOnly is the floor under every check: normalizing the path and host, which
// Check does before it looks at any rule.
func BenchmarkNormalizeOnly(b *testing.B) {
	r := benchRequest("/api/orders/7")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := policy.NormalizePath(r.Path); err != nil {
			b.Fatal(err)
		}
		if _, err := policy.NormalizeHost(r.Host); err != nil {
			b.Fatal(err)
		}
	}
}
