package security

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/test/harness"
)

const (
	shopKid    = "demo-es256-1" // the kid of the shop policy's key (the demo Secret)
	shopIssuer = "http://auth.example.com"
)

// rawJSON is a header or claims set written out by hand (nesting, duplicate members, wrong types).
type rawJSON string

// b64 is unpadded base64url, as JWS uses.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jsonPart(t *testing.T, v any) string {
	t.Helper()
	if r, ok := v.(rawJSON); ok {
		return b64([]byte(r))
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}

// signingInput is "<header>.<payload>" of a compact JWS.
func signingInput(t *testing.T, header, claims any) string {
	return jsonPart(t, header) + "." + jsonPart(t, claims)
}

// signES256 signs a token with an ECDSA P-256 key, signature r||s as JWS wants it.
func signES256(t *testing.T, key *ecdsa.PrivateKey, header, claims any) string {
	t.Helper()
	in := signingInput(t, header, claims)
	digest := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return in + "." + b64(sig)
}

// signHS256 signs a token with an HMAC secret.
func signHS256(t *testing.T, secret []byte, header, claims any) string {
	t.Helper()
	in := signingInput(t, header, claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + b64(m.Sum(nil))
}

// object is a JSON object that the helpers below copy and change.
type object map[string]any

func (o object) with(kv ...any) object {
	out := object{}
	for k, v := range o {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func (o object) without(keys ...string) object {
	out := o.with()
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

// keys are the keys the JWT attacks sign with: the shop policy's own (read from the demo Secret the
// webhook loads) and an attacker's.
type keys struct {
	shop        *ecdsa.PrivateKey
	shopPubPEM  []byte // the shop's public key as PEM, which JWKS clients and attackers can get
	shopPubDER  []byte
	attacker    *ecdsa.PrivateKey
	attackerEd  ed25519.PrivateKey
	attackerX5c string // a self-signed certificate of the attacker's key, base64 DER
}

func loadKeys(t *testing.T) keys {
	t.Helper()
	b, err := os.ReadFile("../e2e/testdata/manifests/secret_shop-jwt-keys.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var secret struct {
		StringData map[string]string `json:"stringData"`
	}
	if err := yaml.Unmarshal(b, &secret); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(secret.StringData[shopKid+".key.pem"]))
	if block == nil {
		t.Fatalf("no PEM key %s.key.pem in the shop's key Secret", shopKid)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	k := keys{shop: parsed.(*ecdsa.PrivateKey)}
	if k.shopPubDER, err = x509.MarshalPKIXPublicKey(&k.shop.PublicKey); err != nil {
		t.Fatal(err)
	}
	k.shopPubPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: k.shopPubDER})
	if k.attacker, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if _, k.attackerEd, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "auth.example.com"}, DNSNames: []string{"auth.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.attacker.PublicKey, k.attacker)
	if err != nil {
		t.Fatal(err)
	}
	k.attackerX5c = base64.StdEncoding.EncodeToString(der)
	return k
}

// jwk is the public JWK of a P-256 key.
func jwk(t *testing.T, pub *ecdsa.PublicKey, kid string) object {
	t.Helper()
	b, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	return object{"kty": "EC", "crv": "P-256", "x": b64(b[1:33]), "y": b64(b[33:]), "kid": kid, "alg": "ES256", "use": "sig"}
}

// jwksServer serves the attacker's key set and counts the requests it gets: authgate must never
// fetch a key from a URL a token names.
type jwksServer struct {
	url  string
	hits atomic.Int64
}

func newJWKSServer(t *testing.T, set object) *jwksServer {
	j := &jwksServer{}
	body, _ := json.Marshal(set)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		j.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	j.url = srv.URL
	return j
}

// adminHeader is the header of the shop policy's access tokens.
var adminHeader = object{"alg": "ES256", "kid": shopKid, "typ": "at+jwt"}

// adminClaims are the claims of an access token the shop policy issues to its admin at now.
func adminClaims(t *testing.T, now time.Time) object {
	return object{
		"iss": shopIssuer, "sub": "admin", "aud": []string{"shop"},
		"exp": now.Add(10 * time.Minute).Unix(), "iat": now.Unix(), "nbf": now.Unix(),
		"jti": b64(randomBytes(t, 16)), "sid": b64(randomBytes(t, 16)),
		"email": harness.AdminEmail, "name": "Demo administrator", "roles": []string{"admin", "editor"},
	}
}

// adminToken is a valid access token of the shop policy's admin, signed with the policy's key
// (without a login, which costs a bcrypt check).
func adminToken(t *testing.T, k keys) string {
	return signES256(t, k.shop, adminHeader, adminClaims(t, time.Now()))
}

// nested is depth levels of JSON arrays around v.
func nested(depth int, v string) string {
	return strings.Repeat("[", depth) + v + strings.Repeat("]", depth)
}

// Forged, confused, expired, mis-addressed and malformed tokens are refused on the JWT rule through
// every adapter, and authgate never fetches a key a token points at. A token crafted the same way
// with every claim right passes everywhere, so each refusal is about the one thing changed.
func testJWT(t *testing.T) {
	t.Parallel()
	s := newSuite(t, lenientLimits)
	k := loadKeys(t)
	now := time.Now()
	header, claims := adminHeader, adminClaims(t, now)
	shop := func(h, c any) string { return signES256(t, k.shop, h, c) }
	attacker := func(h, c any) string { return signES256(t, k.attacker, h, c) }

	jku := newJWKSServer(t, object{"keys": []object{jwk(t, &k.attacker.PublicKey, "attacker-1"), jwk(t, &k.attacker.PublicKey, shopKid)}})
	valid := shop(header, claims)
	parts := strings.Split(valid, ".")
	viewerClaims := claims.with("sub", "viewer@example.com", "roles", []string{"viewer"})
	viewer := strings.Split(shop(header, viewerClaims), ".")
	other := s.APILoginTo(otherPolicy, harness.AdminEmail, harness.AdminPassword)
	big := claims.with("pad", strings.Repeat("x", 64<<10))
	hsHeader := header.with("alg", "HS256")

	attacks := []struct{ name, token string }{
		// unsigned
		{"alg none", signingInput(t, header.with("alg", "none"), claims) + "."},
		{"alg None", signingInput(t, header.with("alg", "None"), claims) + "."},
		{"alg NONE", signingInput(t, header.with("alg", "NONE"), claims) + "."},
		{"alg nOnE", signingInput(t, header.with("alg", "nOnE"), claims) + "."},
		{"alg none keeping a real signature", signingInput(t, header.with("alg", "none"), claims) + "." + parts[2]},
		{"alg none without typ and kid", signingInput(t, object{"alg": "none"}, claims) + "."},
		{"no alg", shop(header.without("alg"), claims)},
		{"alg as a list", shop(header.with("alg", []string{"ES256"}), claims)},
		// algorithm confusion: the public key used as an HMAC secret
		{"HS256 keyed with the public key PEM", signHS256(t, k.shopPubPEM, hsHeader, claims)},
		{"HS256 keyed with the public key PEM without newline", signHS256(t, []byte(strings.TrimSpace(string(k.shopPubPEM))), hsHeader, claims)},
		{"HS256 keyed with the public key DER", signHS256(t, k.shopPubDER, hsHeader, claims)},
		{"HS256 keyed with the public JWK", signHS256(t, mustJSON(t, jwk(t, &k.shop.PublicKey, shopKid)), hsHeader, claims)},
		{"HS256 with an empty secret", signHS256(t, nil, hsHeader, claims)},
		{"HS512 keyed with the public key PEM", signHS256(t, k.shopPubPEM, header.with("alg", "HS512"), claims)},
		{"EdDSA by the attacker under the shop's kid", signEd(t, k.attackerEd, header.with("alg", "EdDSA"), claims)},
		{"RS256 header on an ES256 signature", shop(header.with("alg", "RS256"), claims)},
		{"ES384 header on an ES256 signature", shop(header.with("alg", "ES384"), claims)},
		// kid injection
		{"kid path traversal, HS256 with an empty key", signHS256(t, nil, hsHeader.with("kid", "../../../../../../dev/null"), claims)},
		{"kid path traversal to the key file", attacker(header.with("kid", "../../../../etc/authgate/"+shopKid+".key.pem"), claims)},
		{"kid SQL injection", attacker(header.with("kid", "' OR '1'='1"), claims)},
		{"kid SQL union, HS256 with the selected secret", signHS256(t, []byte("secret"), hsHeader.with("kid", "x' UNION SELECT 'secret' --"), claims)},
		{"kid URL", attacker(header.with("kid", jku.url+"/key.pem"), claims)},
		{"kid file URL", signHS256(t, nil, hsHeader.with("kid", "file:///dev/null"), claims)},
		{"kid with a NUL", shop(header.with("kid", shopKid+"\x00"), claims)},
		{"kid with a trailing space", shop(header.with("kid", shopKid+" "), claims)},
		{"kid upper case", shop(header.with("kid", strings.ToUpper(shopKid)), claims)},
		{"kid as a number", shop(header.with("kid", 1), claims)},
		{"kid as an object", shop(header.with("kid", object{"$ne": ""}), claims)},
		{"no kid", shop(header.without("kid"), claims)},
		// keys the token brings along
		{"jku to the attacker's JWKS", attacker(header.with("kid", "attacker-1", "jku", jku.url+"/jwks.json"), claims)},
		{"jku with the shop's kid", attacker(header.with("jku", jku.url+"/jwks.json"), claims)},
		{"x5u to the attacker", attacker(header.with("kid", "attacker-1", "x5u", jku.url+"/cert.pem"), claims)},
		{"embedded jwk", attacker(header.with("kid", "attacker-1", "jwk", jwk(t, &k.attacker.PublicKey, "attacker-1")), claims)},
		{"embedded jwk under the shop's kid", attacker(header.with("jwk", jwk(t, &k.attacker.PublicKey, shopKid)), claims)},
		{"x5c of the attacker's certificate", attacker(header.with("x5c", []string{k.attackerX5c}), claims)},
		// time
		{"expired an hour ago", shop(header, claims.with("exp", now.Add(-time.Hour).Unix(), "iat", now.Add(-2*time.Hour).Unix(), "nbf", now.Add(-2*time.Hour).Unix()))},
		{"expired beyond the clock skew", shop(header, claims.with("exp", now.Add(-45*time.Second).Unix()))},
		{"exp zero", shop(header, claims.with("exp", 0))},
		{"exp negative", shop(header, claims.with("exp", -1))},
		{"exp as a string", shop(header, claims.with("exp", "9999999999"))},
		{"no exp", shop(header, claims.without("exp"))},
		{"nbf in an hour", shop(header, claims.with("nbf", now.Add(time.Hour).Unix()))},
		{"nbf beyond the clock skew", shop(header, claims.with("nbf", now.Add(2*time.Minute).Unix()))},
		{"iat in an hour", shop(header, claims.with("iat", now.Add(time.Hour).Unix()))},
		// audience
		{"aud of the other policy", shop(header, claims.with("aud", []string{"other"}))},
		{"aud as a plain string of another", shop(header, claims.with("aud", "other"))},
		{"aud empty list", shop(header, claims.with("aud", []string{}))},
		{"aud empty string", shop(header, claims.with("aud", ""))},
		{"aud in upper case", shop(header, claims.with("aud", []string{"SHOP"}))},
		{"aud with a trailing space", shop(header, claims.with("aud", []string{"shop "}))},
		{"no aud", shop(header, claims.without("aud"))},
		// issuer
		{"iss of the attacker", shop(header, claims.with("iss", "http://evil.example.com"))},
		{"iss with a trailing slash", shop(header, claims.with("iss", shopIssuer+"/"))},
		{"iss in upper case", shop(header, claims.with("iss", strings.ToUpper(shopIssuer)))},
		{"iss with a trailing dot", shop(header, claims.with("iss", "http://auth.example.com."))},
		{"iss of the other policy", shop(header, claims.with("iss", "http://other.example.com"))},
		{"no iss", shop(header, claims.without("iss"))},
		// headers the verifier does not understand
		{"crit with an unknown extension", shop(header.with("crit", []string{"x-authgate-bypass"}, "x-authgate-bypass", true), claims)},
		{"crit naming exp", shop(header.with("crit", []string{"exp"}), claims)},
		{"crit empty", shop(header.with("crit", []string{}), claims)},
		{"b64 false", shop(header.with("b64", false, "crit", []string{"b64"}), claims)},
		// token type
		{"typ JWT", shop(header.with("typ", "JWT"), claims)},
		{"typ jwt", shop(header.with("typ", "jwt"), claims)},
		{"typ id_token", shop(header.with("typ", "id_token+jwt"), claims)},
		{"typ with a trailing space", shop(header.with("typ", "at+jwt "), claims)},
		{"no typ", shop(header.without("typ"), claims)},
		// size and nesting
		{"64 KiB token", shop(header, big)},
		{"just over 8 KiB", shop(header, claims.with("pad", strings.Repeat("x", 6<<10)))},
		{"aud nested 3000 deep", shop(header, rawJSON(`{"iss":"`+shopIssuer+`","sub":"admin","aud":`+nested(3000, `"shop"`)+`,"exp":`+itoa(now.Add(10*time.Minute).Unix())+`}`))},
		{"sub as a nested object", shop(header, claims.with("sub", object{"a": object{"b": object{"c": "admin"}}}))},
		{"roles nested", shop(header, claims.with("roles", rawJSON(nested(200, `"admin"`))))},
		{"kid nested 2000 deep", shop(rawJSON(`{"alg":"ES256","typ":"at+jwt","kid":`+nested(2000, `"`+shopKid+`"`)+`}`), claims)},
		{"header nested beyond any parser's depth, unsigned", rawNested(12000)},
		{"duplicate alg members", signingInput(t, rawJSON(`{"alg":"ES256","kid":"`+shopKid+`","typ":"at+jwt","alg":"none"}`), claims) + "."},
		// another policy's valid token, and tampering with a valid one
		{"the other policy's token", other.AccessToken},
		{"the viewer's claims with the admin's signature", viewer[0] + "." + viewer[1] + "." + parts[2]},
		{"claims swapped to admin under the viewer's signature", strings.Join([]string{viewer[0], parts[1], viewer[2]}, ".")},
		{"signature removed", parts[0] + "." + parts[1] + "."},
		{"signature truncated", parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-4]},
		{"signature in ASN.1 DER", parts[0] + "." + parts[1] + "." + derSignature(t, k.shop, parts[0]+"."+parts[1])},
		{"signature padded base64", valid + "=="},
		{"a fourth segment", valid + ".e30"},
		{"JWE-shaped", parts[0] + "..." + parts[1] + "." + parts[2]},
		{"JSON serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`},
	}

	// A token of the shop's own key whose roles claim has the wrong type grants no role: the rule
	// forbids it (403) rather than finding no credentials (401). Either is a refusal.
	forbiddenOK := map[string]bool{"roles nested": true}
	requests := 0
	for _, a := range attacks {
		for _, ad := range adapters {
			p := probe{target: "/api/orders", headers: []string{"Authorization", "Bearer " + a.token, "Accept", "application/json"}}
			if ad.name == "nginx" && strings.ContainsAny(a.token, "\x00") {
				continue
			}
			ans := ad.check(s, p)
			requests++
			what := ad.name + ": token with " + a.name
			expectDenied(t, what, ans)
			if ans.status == http.StatusOK || (ans.status == http.StatusForbidden && !forbiddenOK[a.name]) {
				t.Errorf("%s: %s; a refused token is a 401 (or the proxy's 400/431 for its size), never %d", what, ans, ans.status)
			}
		}
	}
	counted("jwt", len(attacks), requests)
	if n := jku.hits.Load(); n != 0 {
		t.Errorf("the attacker's key server was asked %d times: a key must never be fetched from a URL a token names", n)
	}

	// The controls: the crafted valid token, a real one, and a real-key token naming the attacker's
	// jku (ignored: judged by the configured key) pass every adapter.
	real := s.APILogin(harness.AdminEmail, harness.AdminPassword)
	for name, token := range map[string]string{
		"the crafted valid token":        valid,
		"a token from the login":         real.AccessToken,
		"the shop's key and a jku":       shop(header.with("jku", jku.url+"/jwks.json", "x5u", jku.url+"/cert.pem"), claims),
		"application/at+jwt as the type": shop(header.with("typ", "application/at+jwt"), claims),
	} {
		for _, ad := range adapters {
			expectAllowed(t, ad.name+": "+name, ad.check(s, probe{target: "/api/orders",
				headers: []string{"Authorization", "Bearer " + token, "Accept", "application/json"}}))
		}
	}
	if n := jku.hits.Load(); n != 0 {
		t.Errorf("the attacker's key server was asked %d times", n)
	}
	// The other policy's token is valid where it belongs.
	expectAllowed(t, "envoy-http: the other policy's token on its own host", viaEnvoyHTTP(s, probe{host: otherHost, target: "/",
		headers: []string{"Authorization", "Bearer " + other.AccessToken, "Accept", "application/json"}}))
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func itoa(n int64) string { return big.NewInt(n).String() }

// signEd signs a token with an Ed25519 key.
func signEd(t *testing.T, key ed25519.PrivateKey, header, claims any) string {
	t.Helper()
	in := signingInput(t, header, claims)
	return in + "." + b64(ed25519.Sign(key, []byte(in)))
}

// derSignature is an ES256 signature in ASN.1 DER, which JWS does not use.
func derSignature(t *testing.T, key *ecdsa.PrivateKey, in string) string {
	t.Helper()
	digest := sha256.Sum256([]byte(in))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return b64(sig)
}

// rawNested is an unsigned token whose header nests arrays depth deep.
func rawNested(depth int) string {
	return b64([]byte(`{"alg":`+nested(depth, `"ES256"`)+`}`)) + "." + b64([]byte(`{}`)) + ".c2ln"
}
