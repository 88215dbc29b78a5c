package authz_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/session"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/token"
)

// noNetwork fails every JWKS fetch at once: trusted issuers' tokens are Unavailable, and the fuzz
// target never waits for a network.
type noNetwork struct{}

func (noNetwork) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("no network in fuzz tests")
}

// FuzzEngineCheck decides arbitrary requests against the fixture policy, with one live session and
// one valid token among the seeds: whatever a proxy forwards, a request is allowed only on a public
// rule or with the live session or the valid token and the roles the rule needs; every decision
// sets or removes each identity header exactly once, with values that cannot split a header; and
// nothing but an unreachable JWKS makes a decision fail.
func FuzzEngineCheck(f *testing.F) {
	c := &clock{now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	p, err := policy.Compile(fixture.AuthPolicy(), fixture.Secrets())
	if err != nil {
		f.Fatal(err)
	}
	st := store.NewMemory(store.WithClock(c.Now))
	f.Cleanup(func() { st.Close() })
	verifier := token.NewVerifier(token.WithClock(c.Now), token.WithHTTPClient(&http.Client{Transport: noNetwork{}}))
	f.Cleanup(verifier.Close)
	snaps := &authz.AtomicSnapshot{}
	snaps.Store(policy.NewSnapshot([]*policy.Policy{p}))
	sessions := session.NewManager(st, c.Now)
	engine := authz.NewEngine(snaps, sessions, verifier)

	admin, _ := p.Login().User("admin@example.com")
	sid, _, err := sessions.Create(context.Background(), p, admin)
	if err != nil {
		f.Fatal(err)
	}
	jwt, _, err := token.Issue(p, admin, "family", c.Now())
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []struct{ method, host, path, query, cookie, auth, accept string }{
		{"GET", "shop.example.com", "/", "", "shop_session=" + sid, "", "text/html"},
		{"GET", "shop.example.com", "/api/orders", "", "", "Bearer " + jwt, ""},
		{"POST", "a.shop.example.com:443", "/API/./orders/..;/x", "a=b", "", "bearer " + jwt, "application/json"},
		{"DELETE", "shop.example.com", "/api/x", "", "", "Bearer " + jwt, ""},
		{"GET", "SHOP.EXAMPLE.COM.", "/static/%2e%2e/admin", "", "", "", ""},
		{"get", "shop.example.com", "/healthz", "", "shop_session=bogus", "", "text/html"},
		{"GET", "shop.example.com", "/", "x=1", "shop_session=" + sid[:42], "Basic YTpi", "application/json"},
		{"GET", "evil.com", "/", "", "shop_session=" + sid, "", ""},
		{"GET", "[::1]", "//", "", "", "", ""},
		{"GET", "shop.example.com", "/api/a", "", "", "Bearer eyJhbGciOiJFUzI1NiIsImtpZCI6ImlkcC0xIn0.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbSJ9.AAAA", ""},
	} {
		f.Add(s.method, s.host, s.path, s.query, s.cookie, s.auth, s.accept, false)
	}
	f.Add("GET", "shop.example.com", "/", "", "", "", "", true)
	f.Fuzz(func(t *testing.T, method, host, path, query, cookie, auth, accept string, named bool) {
		r := &authz.Request{Protocol: authz.ProtocolNginx, Method: method, Scheme: "https", Host: host, Path: path, Query: query,
			Cookie: cookie, Authorization: auth, Accept: accept}
		if named {
			r.Policy = p.Ref()
		}
		d := engine.Check(context.Background(), r)
		if d.Outcome == authz.Error && d.Reason != "jwks_unavailable" {
			t.Fatalf("%+v: decision failed: %s %s", r, d.Reason, d.Detail)
		}
		if d.Policy == nil {
			if d.Outcome == authz.Allow || len(d.Headers) > 0 {
				t.Fatalf("%+v: allowed without a policy: %+v", r, d)
			}
			return
		}
		var names []string
		for _, h := range d.Headers {
			names = append(names, h.Name)
			if strings.ContainsFunc(h.Value, func(c rune) bool { return c < 0x20 && c != '\t' || c == 0x7f }) {
				t.Fatalf("%+v: header %s = %q", r, h.Name, h.Value)
			}
		}
		names = append(names, d.Remove...)
		var want []string
		for h := range p.IdentityHeaders() {
			want = append(want, h.Name)
		}
		slices.Sort(names)
		slices.Sort(want)
		if !slices.Equal(names, want) {
			t.Fatalf("%+v: identity headers set %v and removed %v; the policy has %v", r, d.Headers, d.Remove, want)
		}
		if d.Outcome != authz.Allow {
			if len(d.Headers) > 0 {
				t.Fatalf("%+v: a %s decision sets identity headers", r, d.Outcome)
			}
			return
		}
		n, err := policy.NormalizePath(path)
		if err != nil || d.Rule == nil {
			t.Fatalf("%+v: allowed a path that does not normalize (%v) or without a rule", r, err)
		}
		if rule, ok := p.Match(method, n); !ok || rule != d.Rule {
			t.Fatalf("%+v: allowed by rule %s, but %s %s matches %v", r, d.Rule.Name(), method, n, rule)
		}
		if d.Rule.Mode() == "Public" {
			if d.Identity != nil {
				t.Fatalf("%+v: a public rule reports an identity", r)
			}
			return
		}
		if d.Identity == nil || d.Identity.Subject != admin.ID || !d.Rule.Allows(d.Identity.Roles) {
			t.Fatalf("%+v: allowed with identity %+v by rule %s", r, d.Identity, d.Rule.Name())
		}
		if !strings.Contains(cookie, sid) && !strings.Contains(auth, jwt) {
			t.Fatalf("%+v: allowed without the live session or the valid token", r)
		}
	})
}
