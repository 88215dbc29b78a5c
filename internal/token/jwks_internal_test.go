package token

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
)

func TestRefreshInterval(t *testing.T) {
	for cc, want := range map[string]time.Duration{
		"":                                      15 * time.Minute,
		"max-age=120":                           2 * time.Minute,
		"public, max-age=300, must-revalidate":  5 * time.Minute,
		"Max-Age=600":                           10 * time.Minute,
		`max-age="900"`:                         15 * time.Minute,
		"max-age=5":                             time.Minute,
		"max-age=0":                             time.Minute,
		"max-age=999999":                        24 * time.Hour,
		"max-age=9223372036854775807":           24 * time.Hour,
		"max-age=99999999999999999999999999999": 15 * time.Minute,
		"max-age=-5":                            15 * time.Minute,
		"max-age=abc":                           15 * time.Minute,
		"no-cache":                              time.Minute,
		"no-store":                              time.Minute,
		"private":                               15 * time.Minute,
	} {
		h := http.Header{}
		if cc != "" {
			h.Set("Cache-Control", cc)
		}
		if got := refreshInterval(h); got != want {
			t.Errorf("Cache-Control %q: %v, want %v", cc, got, want)
		}
	}
}

func TestParseJWKSIgnoresSymmetricKeys(t *testing.T) {
	pub := fixture.ES256Key().Public()
	k, err := jwk.Import(pub)
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, "ec")
	ecJSON, _ := k.(interface{ MarshalJSON() ([]byte, error) }).MarshalJSON()
	set, err := parseJWKS([]byte(`{"keys":[{"kty":"oct","kid":"hs","alg":"HS256","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"},` + string(ecJSON) + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := set.byKid["hs"]; ok {
		t.Error("the symmetric key was kept")
	}
	if key, _ := set.lookup("ec", algES256); key == nil {
		t.Error("the EC key without alg was not inferred as ES256")
	}
}

// jwksServer serves one ES256 key and counts its hits.
func jwksServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	k, err := jwk.Import(fixture.ES256Key().Public())
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, "ec")
	set := jwk.NewSet()
	_ = set.AddKey(k)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, _ := set.(interface{ MarshalJSON() ([]byte, error) }).MarshalJSON()
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBackgroundRefresh(t *testing.T) {
	srv, hits := jwksServer(t)
	v := NewVerifier()
	v.jwks.refreshCap = 10 * time.Millisecond
	if _, err := v.jwks.keys(context.Background(), srv.URL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "background refreshes", func() bool { return hits.Load() >= 3 })
	v.Close()
	after := hits.Load()
	time.Sleep(50 * time.Millisecond)
	if got := hits.Load(); got != after {
		t.Errorf("%d fetches after Close", got-after)
	}
}

func TestIdleEntriesAreDropped(t *testing.T) {
	srv, hits := jwksServer(t)
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	v := NewVerifier(WithClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now }))
	defer v.Close()
	v.jwks.refreshCap = 10 * time.Millisecond
	if _, err := v.jwks.keys(context.Background(), srv.URL); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(jwksIdleAfter + time.Minute)
	mu.Unlock()
	entries := func() int {
		v.jwks.mu.Lock()
		defer v.jwks.mu.Unlock()
		return len(v.jwks.entries)
	}
	eventually(t, "the idle entry to be dropped", func() bool { return entries() == 0 })
	after := hits.Load()
	time.Sleep(50 * time.Millisecond)
	if got := hits.Load(); got != after {
		t.Errorf("a dropped entry was fetched %d more times", got-after)
	}
	// Used again, it is fetched again.
	if _, err := v.jwks.keys(context.Background(), srv.URL); err != nil {
		t.Fatal(err)
	}
	if got := hits.Load(); got != after+1 {
		t.Errorf("hits %d, want %d", got, after+1)
	}
}

// A policy's converted keys are cached while the policy lives, and released with it.
func TestOwnKeysCacheReleasesPolicies(t *testing.T) {
	v := NewVerifier(WithClock(func() time.Time { return time.Unix(1_800_000_000, 0) }))
	defer v.Close()
	count := func() int {
		n := 0
		v.policies.Range(func(any, any) bool { n++; return true })
		return n
	}
	func() {
		p, err := policy.Compile(fixture.AuthPolicy(), fixture.Secrets())
		if err != nil {
			t.Fatal(err)
		}
		user, _ := p.Login().User("admin@example.com")
		raw, _, err := Issue(p, user, "f", time.Unix(1_800_000_000, 0))
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := v.Verify(context.Background(), p, raw); err != nil {
				t.Fatal(err)
			}
		}
		if n := count(); n != 1 {
			t.Fatalf("%d cached policies, want 1", n)
		}
	}()
	eventually(t, "the cache entry of a collected policy to go", func() bool {
		runtime.GC()
		return count() == 0
	})
}

// FuzzParseJWKS: any JWKS body parses or is refused, never panics, and yields only keys that can
// verify (asymmetric, with a kid, of a supported algorithm).
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"oct","kid":"hs","k":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","kid":"e","crv":"P-256","x":"AAAA","y":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB","alg":"RS256"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","kid":"o","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":[null,1,"x",[],{}]}`))
	f.Add([]byte(`{"keys":{}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		set, err := parseJWKS(body)
		if err != nil {
			return
		}
		for kid, keys := range set.byKid {
			for _, k := range keys {
				if kid == "" || k.kid != kid || k.sigLen == 0 {
					t.Fatalf("key %+v under kid %q", k, kid)
				}
				switch k.alg {
				case algES256, algRS256, algEdDSA:
				default:
					t.Fatalf("key of algorithm %q kept", k.alg)
				}
			}
		}
	})
}
