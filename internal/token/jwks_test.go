package token_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/token"
)

// idp is a trusted issuer's JWKS endpoint that counts its hits.
type idp struct {
	srv *httptest.Server

	mu           sync.Mutex
	hits         int
	keys         []json.RawMessage
	status       int
	body         []byte // served instead of the keys when set
	cacheControl string
	block        chan struct{} // when set, requests wait for it to close
}

func newIdP(t testing.TB) *idp {
	t.Helper()
	i := &idp{status: http.StatusOK}
	i.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i.mu.Lock()
		i.hits++
		block := i.block
		status, body, cc := i.status, i.body, i.cacheControl
		if body == nil {
			body = []byte(`{"keys":[` + string(joinRaw(i.keys)) + `]}`)
		}
		i.mu.Unlock()
		if block != nil {
			select {
			case <-block:
			case <-r.Context().Done():
				return
			}
		}
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(i.srv.Close)
	return i
}

func joinRaw(items []json.RawMessage) []byte {
	parts := make([]string, len(items))
	for n, it := range items {
		parts[n] = string(it)
	}
	return []byte(strings.Join(parts, ","))
}

func (i *idp) URL() string { return i.srv.URL + "/.well-known/jwks.json" }

func (i *idp) Hits() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.hits
}

func (i *idp) set(f func(i *idp)) {
	i.mu.Lock()
	defer i.mu.Unlock()
	f(i)
}

// addKey publishes pub under kid, with alg unless it is empty, and extra members.
func (i *idp) addKey(t testing.TB, kid string, pub any, alg string, extra ...any) {
	t.Helper()
	k, err := jwk.Import(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Set(jwk.KeyIDKey, kid); err != nil {
		t.Fatal(err)
	}
	if alg != "" {
		sa, ok := jwa.LookupSignatureAlgorithm(alg)
		if !ok {
			t.Fatalf("alg %s", alg)
		}
		if err := k.Set(jwk.AlgorithmKey, sa); err != nil {
			t.Fatal(err)
		}
	}
	for n := 0; n < len(extra); n += 2 {
		if err := k.Set(extra[n].(string), extra[n+1]); err != nil {
			t.Fatal(err)
		}
	}
	i.addRaw(string(mustJSON(t, k)))
}

func (i *idp) addRaw(s string) {
	i.set(func(i *idp) { i.keys = append(i.keys, json.RawMessage(s)) })
}

// trustedPolicy is the fixture policy (issuing ES256) trusting the issuer at jwksURL.
func trustedPolicy(t testing.TB, jwksURL string, mutate func(*authgatev1.AuthPolicy)) *policy.Policy {
	t.Helper()
	k := newKey(t, authgatev1.AlgorithmES256, "k1")
	return compile(t, authgatev1.AlgorithmES256, secretData(k, nil, nil), func(ap *authgatev1.AuthPolicy) {
		ap.Spec.JWT.TrustedIssuers[0].JWKSURL = authgatev1.URL(jwksURL)
		if mutate != nil {
			mutate(ap)
		}
	})
}

func trustedClaims() map[string]any {
	now := testNow.Unix()
	return map[string]any{
		"iss": trustedIssuer, "sub": "idp-user-7", "aud": "shop", "exp": now + 300, "iat": now - 5,
		"email": "ann@example.com", "name": "Ann", "groups": []string{"ops", "dev"},
		"preferred_username": "ann", "email_verified": true, "realm_access": map[string]any{"roles": []string{"x"}},
	}
}

func idpHeader(alg, kid string) map[string]any {
	return map[string]any{"alg": alg, "kid": kid, "typ": "JWT"}
}

func TestTrustedIssuer(t *testing.T) {
	issuer := newIdP(t)
	ec := p256(t)
	rsaK := rsaKey(1)
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	issuer.addKey(t, "ec-1", ec.Public(), "ES256")
	issuer.addKey(t, "ec-noalg", ec.Public(), "")
	issuer.addKey(t, "rsa-noalg", rsaK.Public(), "")
	issuer.addKey(t, "ed-noalg", ed.Public(), "")
	p := trustedPolicy(t, issuer.URL(), nil)
	v := newVerifier(t)

	for _, tc := range []struct {
		kid, alg string
		key      any
	}{
		{"ec-1", "ES256", ec}, {"ec-noalg", "ES256", ec}, {"rsa-noalg", "RS256", rsaK}, {"ed-noalg", "EdDSA", ed},
	} {
		t.Run(tc.kid, func(t *testing.T) {
			raw := craft(t, idpHeader(tc.alg, tc.kid), trustedClaims(), tc.alg, tc.key)
			c, err := v.Verify(context.Background(), p, raw)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := map[string]string{
				"iss": trustedIssuer, "sub": "idp-user-7", "email": "ann@example.com", "name": "Ann",
				"groups": "ops,dev", "preferred_username": "ann", "aud": "shop",
			}
			for name, w := range want {
				if got, ok := c.Claim(name); !ok || got != w {
					t.Errorf("Claim(%q) = %q, %v; want %q", name, got, ok, w)
				}
			}
			for _, name := range []string{"email_verified", "realm_access", "roles", "sid"} {
				if got, ok := c.Claim(name); ok {
					t.Errorf("Claim(%q) = %q, want absent", name, got)
				}
			}
		})
	}
	if h := issuer.Hits(); h != 1 {
		t.Errorf("the JWKS was fetched %d times, want once", h)
	}

	t.Run("refusals", func(t *testing.T) {
		pubDER, _ := x509.MarshalPKIXPublicKey(ec.Public())
		claims := trustedClaims()
		for _, tc := range []struct {
			name   string
			raw    string
			reason token.Reason
		}{
			{"wrong audience", craft(t, idpHeader("ES256", "ec-1"), with(claims, "aud", "billing"), "ES256", ec), token.WrongAudience},
			{"expired", craft(t, idpHeader("ES256", "ec-1"), with(claims, "exp", testNow.Unix()-60), "ES256", ec), token.Expired},
			{"HS256 MACed with the public key", craft(t, idpHeader("HS256", "ec-1"), claims, "HS256", pubDER), token.BadAlgorithm},
			{"HS256 MACed with the public key PEM", craft(t, idpHeader("HS256", "ec-1"), claims, "HS256", fixture.PublicKeyPEM(ec.Public())), token.BadAlgorithm},
			{"alg of another key type", craft(t, idpHeader("RS256", "ec-1"), claims, "RS256", rsaK), token.BadAlgorithm},
			{"no kid", craft(t, map[string]any{"alg": "ES256"}, claims, "ES256", ec), token.UnknownKey},
			{"signed by another key", craft(t, idpHeader("ES256", "ec-1"), claims, "ES256", p256(t)), token.BadSignature},
			{"the policy's own key ids do not apply", craft(t, idpHeader("ES256", "k1"), claims, "ES256", ec), token.UnknownKey},
			{"alg none", craft(t, idpHeader("none", "ec-1"), claims, "none", nil), token.BadAlgorithm},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c, err := v.Verify(context.Background(), p, tc.raw)
				wantRefusal(t, tc.raw, c, err, tc.reason)
			})
		}
	})
}

func TestTrustedIssuerAudiences(t *testing.T) {
	issuer := newIdP(t)
	ec := p256(t)
	issuer.addKey(t, "ec-1", ec.Public(), "ES256")
	p := trustedPolicy(t, issuer.URL(), func(ap *authgatev1.AuthPolicy) {
		ap.Spec.JWT.TrustedIssuers[0].Audiences = []string{"api://shop"}
	})
	v := newVerifier(t)
	ok := craft(t, idpHeader("ES256", "ec-1"), with(trustedClaims(), "aud", []string{"api://shop"}), "ES256", ec)
	if _, err := v.Verify(context.Background(), p, ok); err != nil {
		t.Errorf("Verify: %v", err)
	}
	// The policy's own audience is not the trusted issuer's.
	raw := craft(t, idpHeader("ES256", "ec-1"), trustedClaims(), "ES256", ec)
	c, err := v.Verify(context.Background(), p, raw)
	wantRefusal(t, raw, c, err, token.WrongAudience)
}

func TestTrustedIssuerUnknownKidRefetch(t *testing.T) {
	issuer := newIdP(t)
	ec, next := p256(t), p256(t)
	issuer.addKey(t, "ec-1", ec.Public(), "ES256")
	p := trustedPolicy(t, issuer.URL(), nil)
	clk := &movingClock{now: testNow}
	v := newVerifier(t, token.WithClock(clk.Now))
	ctx := context.Background()
	claims := trustedClaims()
	known := craft(t, idpHeader("ES256", "ec-1"), claims, "ES256", ec)
	unknown := craft(t, idpHeader("ES256", "ec-2"), claims, "ES256", next)

	if _, err := v.Verify(ctx, p, known); err != nil {
		t.Fatal(err)
	}
	if h := issuer.Hits(); h != 1 {
		t.Fatalf("hits %d after the first token, want 1", h)
	}
	// The set was fetched just now: an unknown kid does not fetch it again yet.
	c, err := v.Verify(ctx, p, unknown)
	wantRefusal(t, unknown, c, err, token.UnknownKey)
	if h := issuer.Hits(); h != 1 {
		t.Errorf("hits %d, want 1: refetched within the rate limit", h)
	}

	// 31 seconds on, an unknown kid refetches once, however many tokens ask at once.
	clk.Advance(31 * time.Second)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			c, err := v.Verify(ctx, p, unknown)
			wantRefusal(t, unknown, c, err, token.UnknownKey)
		})
	}
	wg.Wait()
	if h := issuer.Hits(); h != 2 {
		t.Errorf("hits %d, want 2: one refetch for an unknown kid", h)
	}
	clk.Advance(10 * time.Second)
	c, err = v.Verify(ctx, p, unknown)
	wantRefusal(t, unknown, c, err, token.UnknownKey)
	if h := issuer.Hits(); h != 2 {
		t.Errorf("hits %d, want 2: refetched within the rate limit", h)
	}

	// The issuer rotates: its new key verifies after the next allowed refetch.
	issuer.addKey(t, "ec-2", next.Public(), "ES256")
	clk.Advance(25 * time.Second)
	if _, err := v.Verify(ctx, p, unknown); err != nil {
		t.Errorf("token of the rotated key: %v", err)
	}
	if h := issuer.Hits(); h != 3 {
		t.Errorf("hits %d, want 3", h)
	}
	if _, err := v.Verify(ctx, p, known); err != nil {
		t.Errorf("token of the old key: %v", err)
	}
	if h := issuer.Hits(); h != 3 {
		t.Errorf("hits %d, want 3: a known kid never fetches", h)
	}
}

func TestTrustedIssuerUnavailable(t *testing.T) {
	ec := p256(t)
	raw := craft(t, idpHeader("ES256", "ec-1"), trustedClaims(), "ES256", ec)
	ctx := context.Background()

	t.Run("server down", func(t *testing.T) {
		down := httptest.NewServer(http.NotFoundHandler())
		url := down.URL + "/jwks"
		down.Close()
		v := newVerifier(t)
		c, err := v.Verify(ctx, trustedPolicy(t, url, nil), raw)
		wantRefusal(t, raw, c, err, token.Unavailable)
	})

	for name, f := range map[string]func(i *idp){
		"status 503":  func(i *idp) { i.status = http.StatusServiceUnavailable },
		"redirect":    func(i *idp) { i.status = http.StatusFound },
		"not JSON":    func(i *idp) { i.body = []byte("<html>") },
		"not a set":   func(i *idp) { i.body = []byte(`{"kty":"EC"}`) },
		"keys null":   func(i *idp) { i.body = []byte(`{"keys":null}`) },
		"over 1 MiB":  func(i *idp) { i.body = []byte(`{"keys":[],"x":"` + strings.Repeat("a", 1<<20) + `"}`) },
		"keys object": func(i *idp) { i.body = []byte(`{"keys":{}}`) },
	} {
		t.Run(name, func(t *testing.T) {
			issuer := newIdP(t)
			issuer.addKey(t, "ec-1", ec.Public(), "ES256")
			issuer.set(f)
			clk := &movingClock{now: testNow}
			v := newVerifier(t, token.WithClock(clk.Now))
			p := trustedPolicy(t, issuer.URL(), nil)
			c, err := v.Verify(ctx, p, raw)
			wantRefusal(t, raw, c, err, token.Unavailable)
			// Failures are retried at most every 5 seconds.
			c, err = v.Verify(ctx, p, raw)
			wantRefusal(t, raw, c, err, token.Unavailable)
			if h := issuer.Hits(); h != 1 {
				t.Errorf("hits %d, want 1", h)
			}
			// Once the issuer recovers, the next attempt succeeds.
			issuer.set(func(i *idp) { i.status, i.body = http.StatusOK, nil })
			clk.Advance(6 * time.Second)
			if _, err := v.Verify(ctx, p, raw); err != nil {
				t.Errorf("after recovery: %v", err)
			}
		})
	}

	t.Run("request context ends", func(t *testing.T) {
		issuer := newIdP(t)
		issuer.addKey(t, "ec-1", ec.Public(), "ES256")
		release := make(chan struct{})
		issuer.set(func(i *idp) { i.block = release })
		defer close(release)
		v := newVerifier(t)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		c, err := v.Verify(ctx, trustedPolicy(t, issuer.URL(), nil), raw)
		wantRefusal(t, raw, c, err, token.Unavailable)
	})

	t.Run("closed verifier", func(t *testing.T) {
		issuer := newIdP(t)
		issuer.addKey(t, "ec-1", ec.Public(), "ES256")
		v := token.NewVerifier(clock(testNow))
		v.Close()
		c, err := v.Verify(ctx, trustedPolicy(t, issuer.URL(), nil), raw)
		wantRefusal(t, raw, c, err, token.Unavailable)
		if h := issuer.Hits(); h != 0 {
			t.Errorf("a closed verifier fetched %d times", h)
		}
		v.Close() // twice is fine
	})
}

func TestTrustedIssuerKeepsCachedSet(t *testing.T) {
	issuer := newIdP(t)
	ec := p256(t)
	issuer.addKey(t, "ec-1", ec.Public(), "ES256")
	clk := &movingClock{now: testNow}
	v := newVerifier(t, token.WithClock(clk.Now))
	p := trustedPolicy(t, issuer.URL(), nil)
	ctx := context.Background()
	known := craft(t, idpHeader("ES256", "ec-1"), trustedClaims(), "ES256", ec)
	if _, err := v.Verify(ctx, p, known); err != nil {
		t.Fatal(err)
	}
	issuer.set(func(i *idp) { i.status = http.StatusInternalServerError })
	clk.Advance(time.Minute)
	unknown := craft(t, idpHeader("ES256", "ec-9"), trustedClaims(), "ES256", ec)
	c, err := v.Verify(ctx, p, unknown)
	wantRefusal(t, unknown, c, err, token.UnknownKey)
	if h := issuer.Hits(); h != 2 {
		t.Errorf("hits %d, want 2", h)
	}
	if _, err := v.Verify(ctx, p, known); err != nil {
		t.Errorf("the cached set is no longer used after a failed fetch: %v", err)
	}
}

func TestTrustedIssuerKeyFilter(t *testing.T) {
	issuer := newIdP(t)
	ec, ec2 := p256(t), p256(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("0123456789abcdef0123456789abcdef")
	issuer.addRaw(fmt.Sprintf(`{"kty":"oct","kid":"hs","alg":"HS256","k":%q}`, b64(secret)))
	issuer.addRaw(fmt.Sprintf(`{"kty":"oct","kid":"hs-noalg","k":%q}`, b64(secret)))
	issuer.addKey(t, "enc", ec.Public(), "ES256", jwk.KeyUsageKey, "enc")
	issuer.addKey(t, "sign-only", ec.Public(), "ES256", jwk.KeyOpsKey, jwk.KeyOperationList{jwk.KeyOpSign})
	issuer.addKey(t, "verify-op", ec.Public(), "ES256", jwk.KeyOpsKey, jwk.KeyOperationList{jwk.KeyOpVerify})
	issuer.addKey(t, "pss", rsaKey(2).Public(), "PS256")
	issuer.addKey(t, "p384", p384.Public(), "")
	issuer.addKey(t, "p384-as-es256", p384.Public(), "ES256")
	issuer.addKey(t, "", ec.Public(), "ES256")
	issuer.addRaw(`{"kty":"EC","kid":"broken","crv":"P-256","x":"AAAA","y":"AAAA"}`)
	issuer.addRaw(`{"kty":"RSA","kid":"small","n":"AQAB","e":"AQAB"}`)
	issuer.addRaw(`"not a key"`)
	// A private key published by mistake is compromised: not used.
	priv, err := jwk.Import(ec2)
	if err != nil {
		t.Fatal(err)
	}
	_ = priv.Set(jwk.KeyIDKey, "private")
	issuer.addRaw(string(mustJSON(t, priv)))
	// Two keys under one kid, for two algorithms.
	issuer.addKey(t, "shared", ec.Public(), "ES256")
	issuer.addKey(t, "shared", rsaKey(0).Public(), "RS256")

	p := trustedPolicy(t, issuer.URL(), nil)
	v := newVerifier(t)
	ctx := context.Background()
	claims := trustedClaims()
	for _, tc := range []struct {
		name   string
		raw    string
		reason token.Reason // "" for accepted
	}{
		{"oct key with HS256", craft(t, idpHeader("HS256", "hs"), claims, "HS256", secret), token.BadAlgorithm},
		{"oct key without alg", craft(t, idpHeader("HS256", "hs-noalg"), claims, "HS256", secret), token.BadAlgorithm},
		{"oct kid with ES256", craft(t, idpHeader("ES256", "hs"), claims, "ES256", ec), token.UnknownKey},
		{"use enc", craft(t, idpHeader("ES256", "enc"), claims, "ES256", ec), token.UnknownKey},
		{"key_ops without verify", craft(t, idpHeader("ES256", "sign-only"), claims, "ES256", ec), token.UnknownKey},
		{"key_ops with verify", craft(t, idpHeader("ES256", "verify-op"), claims, "ES256", ec), ""},
		{"PS256 key", craft(t, idpHeader("RS256", "pss"), claims, "RS256", rsaKey(2)), token.UnknownKey},
		{"P-384 key", craft(t, idpHeader("ES256", "p384"), claims, "ES256", ec), token.UnknownKey},
		{"P-384 key claiming ES256", craft(t, idpHeader("ES256", "p384-as-es256"), claims, "ES256", ec), token.UnknownKey},
		{"malformed key", craft(t, idpHeader("ES256", "broken"), claims, "ES256", ec), token.UnknownKey},
		{"RSA key too small", craft(t, idpHeader("RS256", "small"), claims, "RS256", rsaKey(0)), token.UnknownKey},
		{"published private key", craft(t, idpHeader("ES256", "private"), claims, "ES256", ec2), token.UnknownKey},
		{"shared kid, ES256", craft(t, idpHeader("ES256", "shared"), claims, "ES256", ec), ""},
		{"shared kid, RS256", craft(t, idpHeader("RS256", "shared"), claims, "RS256", rsaKey(0)), ""},
		{"shared kid, EdDSA", craft(t, idpHeader("EdDSA", "shared"), claims, "EdDSA", ed25519.NewKeyFromSeed(make([]byte, 32))), token.BadAlgorithm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(ctx, p, tc.raw)
			if tc.reason == "" {
				if err != nil {
					t.Errorf("Verify: %v", err)
				}
				return
			}
			wantRefusal(t, tc.raw, c, err, tc.reason)
		})
	}
}

func TestWithHTTPClient(t *testing.T) {
	issuer := newIdP(t)
	ec := p256(t)
	issuer.addKey(t, "ec-1", ec.Public(), "ES256")
	var mu sync.Mutex
	var seen []string
	client := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		seen = append(seen, r.URL.String())
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})}
	v := newVerifier(t, token.WithHTTPClient(client))
	raw := craft(t, idpHeader("ES256", "ec-1"), trustedClaims(), "ES256", ec)
	if _, err := v.Verify(context.Background(), trustedPolicy(t, issuer.URL(), nil), raw); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, []string{issuer.URL()}) {
		t.Errorf("the client fetched %v", seen)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestPublicJWKS(t *testing.T) {
	es1, es0 := newKey(t, authgatev1.AlgorithmES256, "es-1"), newKey(t, authgatev1.AlgorithmES256, "es-0")
	rs := newKey(t, authgatev1.AlgorithmRS256, "rs-1")
	ed := newKey(t, authgatev1.AlgorithmEdDSA, "ed-1")
	hs := newKey(t, authgatev1.AlgorithmHS256, "hs-1")
	rename := func(name string) func(*authgatev1.AuthPolicy) {
		return func(ap *authgatev1.AuthPolicy) { ap.Name = name }
	}
	esPolicy := compile(t, authgatev1.AlgorithmES256, secretData(es1, nil, []testKey{es0}), rename("es"))
	esTwin := compile(t, authgatev1.AlgorithmES256, secretData(es1, nil, nil), rename("es-twin"))
	rsPolicy := compile(t, authgatev1.AlgorithmRS256, secretData(rs, nil, nil), rename("rs"))
	edPolicy := compile(t, authgatev1.AlgorithmEdDSA, secretData(ed, nil, nil), rename("ed"))
	hsPolicy := compile(t, authgatev1.AlgorithmHS256, secretData(hs, nil, nil), rename("hs"))
	verifyOnly := compile(t, authgatev1.AlgorithmES256, secretData(newKey(t, authgatev1.AlgorithmES256, "vo-1"), nil, nil), func(ap *authgatev1.AuthPolicy) {
		ap.Name = "verify-only"
		ap.Spec.JWT.Issuer = ""
	})
	policies := []*policy.Policy{edPolicy, hsPolicy, esPolicy, nil, rsPolicy, verifyOnly, esTwin}

	doc, err := token.PublicJWKS(policies)
	if err != nil {
		t.Fatalf("PublicJWKS: %v", err)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k["kid"].(string))
		if k["use"] != "sig" {
			t.Errorf("key %v: use %v", k["kid"], k["use"])
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
			if _, ok := k[private]; ok {
				t.Errorf("key %v publishes %q", k["kid"], private)
			}
		}
	}
	if want := []string{"ed-1", "es-0", "es-1", "rs-1"}; !slices.Equal(kids, want) {
		t.Errorf("kids %v, want %v", kids, want)
	}
	wantMembers := map[string]map[string]any{
		"ed-1": {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA"},
		"es-0": {"kty": "EC", "crv": "P-256", "alg": "ES256"},
		"es-1": {"kty": "EC", "crv": "P-256", "alg": "ES256"},
		"rs-1": {"kty": "RSA", "alg": "RS256", "e": "AQAB"},
	}
	for _, k := range set.Keys {
		for name, want := range wantMembers[k["kid"].(string)] {
			if k[name] != want {
				t.Errorf("key %v: %s = %v, want %v", k["kid"], name, k[name], want)
			}
		}
	}
	if strings.Contains(string(doc), b64(hs.secret)) {
		t.Error("the HS256 secret is published")
	}

	// The published keys are the policies' keys.
	parsed, err := jwk.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	for kid, pub := range map[string]any{"es-1": es1.public(), "es-0": es0.public(), "rs-1": rs.public(), "ed-1": ed.public()} {
		k, ok := parsed.LookupKeyID(kid)
		if !ok {
			t.Fatalf("no key %s", kid)
		}
		var raw any
		if err := jwk.Export(k, &raw); err != nil {
			t.Fatal(err)
		}
		if eq, ok := raw.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(pub) {
			t.Errorf("key %s is not the policy's", kid)
		}
	}

	// Deterministic, whatever the order of the policies.
	for range 5 {
		again, err := token.PublicJWKS([]*policy.Policy{esTwin, rsPolicy, esPolicy, edPolicy, hsPolicy})
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(doc) {
			t.Fatalf("not deterministic:\n%s\n%s", doc, again)
		}
	}

	empty, err := token.PublicJWKS(nil)
	if err != nil || string(empty) != `{"keys":[]}` {
		t.Errorf("PublicJWKS(nil) = %s, %v", empty, err)
	}
	if onlyHS, err := token.PublicJWKS([]*policy.Policy{hsPolicy}); err != nil || string(onlyHS) != `{"keys":[]}` {
		t.Errorf("HS256 only: %s, %v", onlyHS, err)
	}
}

func TestPublicJWKSKidClash(t *testing.T) {
	a := newKey(t, authgatev1.AlgorithmES256, "same")
	b := newKey(t, authgatev1.AlgorithmES256, "same")
	pa := compile(t, authgatev1.AlgorithmES256, secretData(a, nil, nil), func(ap *authgatev1.AuthPolicy) { ap.Name = "a" })
	pb := compile(t, authgatev1.AlgorithmES256, secretData(b, nil, nil), func(ap *authgatev1.AuthPolicy) { ap.Name = "b" })
	doc, err := token.PublicJWKS([]*policy.Policy{pa, pb})
	if err == nil || !strings.Contains(err.Error(), `kid "same"`) || !strings.Contains(err.Error(), "shop/a") || !strings.Contains(err.Error(), "shop/b") {
		t.Errorf("error %v, want the clash named", err)
	}
	set, perr := jwk.Parse(doc)
	if perr != nil || set.Len() != 1 {
		t.Fatalf("%s: %v", doc, perr)
	}
	k, _ := set.Key(0)
	var raw any
	if err := jwk.Export(k, &raw); err != nil || !a.public().(*ecdsa.PublicKey).Equal(raw) {
		t.Errorf("the first policy's key is not the one kept")
	}
}
