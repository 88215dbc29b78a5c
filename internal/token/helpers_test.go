package token_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/token"
)

// testNow is the clock of most tests; tokens are crafted relative to it.
var testNow = time.Unix(1_800_000_000, 0)

const (
	ownIssuer     = "https://auth.example.com"
	trustedIssuer = "https://idp.example.com"
)

var algorithms = []authgatev1.Algorithm{
	authgatev1.AlgorithmES256, authgatev1.AlgorithmRS256, authgatev1.AlgorithmEdDSA, authgatev1.AlgorithmHS256,
}

// testKey is a signing key of one algorithm with its kid.
type testKey struct {
	kid    string
	alg    authgatev1.Algorithm
	signer crypto.Signer // nil for HS256
	secret []byte        // HS256 only
}

var (
	rsaOnce sync.Once
	rsaKeys []*rsa.PrivateKey
)

// rsaKey returns one of a few 2048-bit keys made once per test binary: generating them is slow.
func rsaKey(i int) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		for range 3 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys = append(rsaKeys, k)
		}
	})
	return rsaKeys[i%len(rsaKeys)]
}

var rsaCounter struct {
	sync.Mutex
	n int
}

func newKey(t testing.TB, alg authgatev1.Algorithm, kid string) testKey {
	t.Helper()
	k := testKey{kid: kid, alg: alg}
	switch alg {
	case authgatev1.AlgorithmES256:
		k.signer = fixture.ES256Key()
	case authgatev1.AlgorithmRS256:
		rsaCounter.Lock()
		k.signer = rsaKey(rsaCounter.n)
		rsaCounter.n++
		rsaCounter.Unlock()
	case authgatev1.AlgorithmEdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k.signer = priv
	case authgatev1.AlgorithmHS256:
		k.secret = make([]byte, 32)
		if _, err := rand.Read(k.secret); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("no algorithm %s", alg)
	}
	return k
}

func (k testKey) public() crypto.PublicKey { return k.signer.Public() }

// secretData is the signing-key Secret's data for active (signing), with more keys that still
// verify, and retired public keys, as internal/policy/secrets.go reads it.
func secretData(active testKey, others []testKey, retired []testKey) map[string][]byte {
	data := map[string][]byte{authgatev1.SigningKeyActiveKey: []byte(active.kid)}
	for _, k := range append([]testKey{active}, others...) {
		if k.alg == authgatev1.AlgorithmHS256 {
			data[k.kid+authgatev1.SigningKeySecretSuffix] = k.secret
		} else {
			data[k.kid+authgatev1.SigningKeyPrivateSuffix] = fixture.PrivateKeyPEM(k.signer)
		}
	}
	for _, k := range retired {
		data[k.kid+authgatev1.SigningKeyPublicSuffix] = fixture.PublicKeyPEM(k.public())
	}
	return data
}

// compile compiles fixture.AuthPolicy with the given algorithm and signing-key Secret data.
func compile(t testing.TB, alg authgatev1.Algorithm, keys map[string][]byte, mutate func(*authgatev1.AuthPolicy)) *policy.Policy {
	t.Helper()
	ap := fixture.AuthPolicy()
	ap.Spec.JWT.Algorithm = alg
	if mutate != nil {
		mutate(ap)
	}
	secrets := fixture.Secrets()
	secrets["shop-jwt-keys"] = keys
	p, err := policy.Compile(ap, secrets)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return p
}

// ownPolicy is a policy issuing with a fresh key of alg, kid "k1".
func ownPolicy(t testing.TB, alg authgatev1.Algorithm) (*policy.Policy, testKey) {
	t.Helper()
	k := newKey(t, alg, "k1")
	return compile(t, alg, secretData(k, nil, nil), nil), k
}

func admin(t testing.TB, p *policy.Policy) policy.User {
	t.Helper()
	u, ok := p.Login().User("admin@example.com")
	if !ok {
		t.Fatal("fixture user admin@example.com missing")
	}
	return u
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signRaw signs "<header>.<payload>" (already encoded) with alg and key, the way an issuer would,
// independently of the package under test. key is a crypto.Signer, or []byte for HS256.
func signRaw(t testing.TB, signingInput, alg string, key any) string {
	t.Helper()
	digest := sha256.Sum256([]byte(signingInput))
	var sig []byte
	var err error
	switch alg {
	case "HS256":
		mac := hmac.New(sha256.New, key.([]byte))
		mac.Write([]byte(signingInput))
		sig = mac.Sum(nil)
	case "ES256":
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, key.(*ecdsa.PrivateKey), digest[:])
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case "RS256":
		sig, err = rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, digest[:])
	case "EdDSA":
		sig = ed25519.Sign(key.(ed25519.PrivateKey), []byte(signingInput))
	case "none":
	default:
		t.Fatalf("cannot sign with %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return signingInput + "." + b64(sig)
}

// craft makes a token of header and claims (any JSON value, or raw bytes as []byte) signed with alg
// and key.
func craft(t testing.TB, header map[string]any, claims any, alg string, key any) string {
	t.Helper()
	payload, ok := claims.([]byte)
	if !ok {
		payload = mustJSON(t, claims)
	}
	return signRaw(t, b64(mustJSON(t, header))+"."+b64(payload), alg, key)
}

// keyMaterial is what signRaw takes for k.
func (k testKey) material() any {
	if k.alg == authgatev1.AlgorithmHS256 {
		return k.secret
	}
	return k.signer
}

// ownHeader is the header of a token of k.
func ownHeader(k testKey) map[string]any {
	return map[string]any{"alg": string(k.alg), "kid": k.kid, "typ": "at+jwt"}
}

// ownClaims are valid claims of an own token at testNow.
func ownClaims() map[string]any {
	now := testNow.Unix()
	return map[string]any{
		"iss": ownIssuer, "sub": "admin@example.com", "aud": []string{"shop"},
		"exp": now + 600, "iat": now - 10, "nbf": now - 10, "jti": "jti-1", "sid": "sid-1",
		"email": "admin@example.com", "roles": []string{"admin", "editor"},
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// wantRefusal checks that err is an *Error with reason, without claims, not quoting the token.
func wantRefusal(t testing.TB, raw string, claims *token.Claims, err error, reason token.Reason) {
	t.Helper()
	if claims != nil {
		t.Errorf("claims returned with the refusal: %+v", claims)
	}
	var te *token.Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T) is not a *token.Error", err, err)
	}
	if te.Reason != reason {
		t.Errorf("reason %q (%s), want %q", te.Reason, te.Detail, reason)
	}
	t.Log(te.Error())
	if len(raw) >= 16 && strings.Contains(te.Error(), raw) {
		t.Errorf("the error quotes the token: %s", te.Error())
	}
	if i := strings.LastIndexByte(raw, '.'); i >= 0 && len(raw)-i > 16 && strings.Contains(te.Error(), raw[i+1:]) {
		t.Errorf("the error quotes the signature: %s", te.Error())
	}
}

func clock(t time.Time) token.VerifierOption { return token.WithClock(func() time.Time { return t }) }

// movingClock is a clock tests can advance.
type movingClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *movingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *movingClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newVerifier(t testing.TB, opts ...token.VerifierOption) *token.Verifier {
	t.Helper()
	v := token.NewVerifier(append([]token.VerifierOption{clock(testNow)}, opts...)...)
	t.Cleanup(v.Close)
	return v
}

// p256 is a fresh P-256 key for issuers in tests.
func p256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
