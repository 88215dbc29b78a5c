package token_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/token"
)

func decodeSegment(t *testing.T, raw string, i int) map[string]any {
	t.Helper()
	seg := strings.Split(raw, ".")[i]
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("segment %d: %v", i, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("segment %d: %v", i, err)
	}
	return m
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(string(alg), func(t *testing.T) {
			p, key := ownPolicy(t, alg)
			user := admin(t, p)
			raw, issued, err := token.Issue(p, user, "family-1", testNow.Add(500*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}

			hdr := decodeSegment(t, raw, 0)
			if want := map[string]any{"alg": string(alg), "kid": key.kid, "typ": "at+jwt"}; !reflect.DeepEqual(hdr, want) {
				t.Errorf("header %v, want %v", hdr, want)
			}
			payload := decodeSegment(t, raw, 1)
			for _, name := range []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "email", "roles"} {
				if _, ok := payload[name]; !ok {
					t.Errorf("claim %s missing from %v", name, payload)
				}
			}
			if _, ok := payload["name"]; ok {
				t.Errorf("empty name issued: %v", payload)
			}

			want := token.Claims{
				Issuer: ownIssuer, Subject: user.ID, Audience: []string{"shop"},
				IssuedAt: testNow, NotBefore: testNow, ExpiresAt: testNow.Add(15 * time.Minute),
				SessionID: "family-1", Email: "admin@example.com", Roles: []string{"admin", "editor"},
				ID: issued.ID,
			}
			if !reflect.DeepEqual(issued, want) {
				t.Errorf("Issue claims\n%+v\nwant\n%+v", issued, want)
			}
			if jti, err := base64.RawURLEncoding.DecodeString(issued.ID); err != nil || len(jti) != 16 {
				t.Errorf("jti %q is not 128 bits of base64url", issued.ID)
			}

			v := newVerifier(t)
			got, err := v.Verify(context.Background(), p, raw)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !reflect.DeepEqual(*got, issued) {
				t.Errorf("verified claims\n%+v\nwant\n%+v", *got, issued)
			}
			for name, want := range map[string]string{
				"sub": "admin@example.com", "email": "admin@example.com", "roles": "admin,editor",
				"sid": "family-1", "jti": issued.ID, "iss": ownIssuer, "aud": "shop",
			} {
				if v, ok := got.Claim(name); !ok || v != want {
					t.Errorf("Claim(%q) = %q, %v; want %q", name, v, ok, want)
				}
			}
			for _, name := range []string{"name", "exp", "iat", "unknown"} {
				if v, ok := got.Claim(name); ok {
					t.Errorf("Claim(%q) = %q, want absent", name, v)
				}
			}

			// A second token of the same user differs in jti.
			raw2, issued2, err := token.Issue(p, user, "family-1", testNow)
			if err != nil {
				t.Fatal(err)
			}
			if raw2 == raw || issued2.ID == issued.ID {
				t.Error("two tokens share a jti")
			}
		})
	}
}

// Tokens authgate issues verify with any JWT library given the published keys.
func TestIssuedTokensVerifyWithPublishedKeys(t *testing.T) {
	for _, alg := range algorithms[:3] {
		t.Run(string(alg), func(t *testing.T) {
			p, _ := ownPolicy(t, alg)
			raw, _, err := token.Issue(p, admin(t, p), "f", testNow)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := token.PublicJWKS([]*policy.Policy{p})
			if err != nil {
				t.Fatal(err)
			}
			set, err := jwk.Parse(doc)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jws.Verify([]byte(raw), jws.WithKeySet(set, jws.WithRequireKid(true))); err != nil {
				t.Errorf("jws.Verify with the published JWKS: %v", err)
			}
		})
	}
}

func TestIssueRefuses(t *testing.T) {
	p, _ := ownPolicy(t, authgatev1.AlgorithmES256)
	user := admin(t, p)
	verifyOnly := compile(t, authgatev1.AlgorithmES256, secretData(newKey(t, authgatev1.AlgorithmES256, "k1"), nil, nil),
		func(ap *authgatev1.AuthPolicy) { ap.Spec.JWT.Issuer = "" })
	noJWT := compile(t, authgatev1.AlgorithmES256, nil, func(ap *authgatev1.AuthPolicy) {
		ap.Spec.JWT = nil
		ap.Spec.Rules[1].Mode = authgatev1.ModeSession
	})
	for name, tc := range map[string]struct {
		p    *policy.Policy
		user policy.User
		sid  string
	}{
		"policy that only verifies": {verifyOnly, user, "f"},
		"policy without jwt":        {noJWT, user, "f"},
		"nil policy":                {nil, user, "f"},
		"user without ID":           {p, policy.User{Email: "x@example.com"}, "f"},
		"no sid":                    {p, user, ""},
	} {
		t.Run(name, func(t *testing.T) {
			raw, claims, err := token.Issue(tc.p, tc.user, tc.sid, testNow)
			if err == nil || raw != "" || claims.Issuer != "" {
				t.Errorf("Issue = %q, %+v, %v; want an error", raw, claims, err)
			}
		})
	}
}

func TestRetiredAndPrunedKeys(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(string(alg), func(t *testing.T) {
			k1, k2 := newKey(t, alg, "k1"), newKey(t, alg, "k2")
			before := compile(t, alg, secretData(k1, nil, nil), nil)
			old, _, err := token.Issue(before, admin(t, before), "f", testNow)
			if err != nil {
				t.Fatal(err)
			}

			// Rotation: k2 signs, k1 still verifies (as a retired public key, or for HS256 as a
			// second secret, the only way HS256 keeps one).
			var rotated *policy.Policy
			if alg == authgatev1.AlgorithmHS256 {
				rotated = compile(t, alg, secretData(k2, []testKey{k1}, nil), nil)
			} else {
				rotated = compile(t, alg, secretData(k2, nil, []testKey{k1}), nil)
			}
			v := newVerifier(t)
			if _, err := v.Verify(context.Background(), rotated, old); err != nil {
				t.Errorf("token of the retired key: %v", err)
			}
			fresh, _, err := token.Issue(rotated, admin(t, rotated), "f", testNow)
			if err != nil {
				t.Fatal(err)
			}
			if hdr := decodeSegment(t, fresh, 0); hdr["kid"] != "k2" {
				t.Errorf("new token signed by %v, want k2", hdr["kid"])
			}
			if _, err := v.Verify(context.Background(), rotated, fresh); err != nil {
				t.Errorf("token of the new key: %v", err)
			}

			// k1 pruned.
			pruned := compile(t, alg, secretData(k2, nil, nil), nil)
			claims, err := v.Verify(context.Background(), pruned, old)
			wantRefusal(t, old, claims, err, token.UnknownKey)
		})
	}
}

type denylist struct {
	mu     sync.Mutex
	sids   map[string]bool
	called []string
}

func (d *denylist) Revoked(policy string, c *token.Claims) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.called = append(d.called, policy)
	return d.sids[c.SessionID]
}

func TestVerifyRefuses(t *testing.T) {
	p, k := ownPolicy(t, authgatev1.AlgorithmES256)
	rsaPolicy, rk := ownPolicy(t, authgatev1.AlgorithmRS256)
	stranger := newKey(t, authgatev1.AlgorithmES256, "k1") // same kid, another key
	now := testNow.Unix()
	hdr, claims := ownHeader(k), ownClaims()
	good := craft(t, hdr, claims, "ES256", k.signer)

	pubDER, err := x509.MarshalPKIXPublicKey(k.public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := fixture.PublicKeyPEM(k.public())
	rsaDER, err := x509.MarshalPKIXPublicKey(rk.public())
	if err != nil {
		t.Fatal(err)
	}

	// Another policy: same issuer and keys, its own audience.
	other := compile(t, authgatev1.AlgorithmES256, secretData(k, nil, nil), func(ap *authgatev1.AuthPolicy) {
		ap.Name = "other"
		ap.Spec.JWT.Audiences = nil
	})
	otherToken, _, err := token.Issue(other, admin(t, other), "f", testNow)
	if err != nil {
		t.Fatal(err)
	}

	// An attacker's JWKS, which must never be fetched.
	attacker := p256(t)
	attackerJWK, err := jwk.Import(attacker.Public())
	if err != nil {
		t.Fatal(err)
	}
	_ = attackerJWK.Set(jwk.KeyIDKey, "evil")
	attackerJWKJSON := mustJSON(t, attackerJWK)
	var attackerHits sync.Mutex
	hits := 0
	attackerSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attackerHits.Lock()
		hits++
		attackerHits.Unlock()
		t.Errorf("the attacker's server was fetched: %s", r.URL)
		_, _ = w.Write([]byte(`{"keys":[` + string(attackerJWKJSON) + `]}`))
	}))
	defer attackerSrv.Close()

	segs := strings.Split(good, ".")
	flip := func(s string, i int) string {
		b, _ := base64.RawURLEncoding.DecodeString(s)
		b[i%len(b)] ^= 0x01
		return base64.RawURLEncoding.EncodeToString(b)
	}

	deny := &denylist{sids: map[string]bool{"revoked-family": true}}

	cases := []struct {
		name   string
		p      *policy.Policy
		raw    string
		reason token.Reason
	}{
		// Structure.
		{"empty", p, "", token.Malformed},
		{"one segment", p, segs[0], token.Malformed},
		{"two segments", p, segs[0] + "." + segs[1], token.Malformed},
		{"four segments", p, good + "." + segs[2], token.Malformed},
		{"empty payload", p, segs[0] + ".." + segs[2], token.Malformed},
		{"no signature", p, segs[0] + "." + segs[1] + ".", token.Malformed},
		{"bad base64 character", p, segs[0] + ".!!!" + segs[1] + "." + segs[2], token.Malformed},
		{"base64 padding", p, segs[0] + "=." + segs[1] + "." + segs[2], token.Malformed},
		{"standard base64 alphabet", p, strings.ReplaceAll(segs[0], "J", "+") + "/." + segs[1] + "." + segs[2], token.Malformed},
		{"white space", p, segs[0] + ". " + segs[1] + "." + segs[2], token.Malformed},
		{"line break", p, segs[0] + ".\n" + segs[1] + "." + segs[2], token.Malformed},
		{"impossible base64 length", p, segs[0] + ".AAAAA." + segs[2], token.Malformed},
		{"non-canonical base64", p, segs[0] + "." + segs[1] + "." + segs[2][:len(segs[2])-1] + "B", token.Malformed},
		{"oversized", p, good + strings.Repeat("A", token.MaxTokenSize), token.TooLarge},
		{"oversized garbage", p, strings.Repeat("\x00", token.MaxTokenSize+1), token.TooLarge},
		{"header not JSON", p, b64([]byte("alg=ES256")) + "." + segs[1] + "." + segs[2], token.Malformed},
		{"header a JSON array", p, b64([]byte(`["ES256"]`)) + "." + segs[1] + "." + segs[2], token.Malformed},
		{"header null", p, b64([]byte(`null`)) + "." + segs[1] + "." + segs[2], token.Malformed},
		{"payload not JSON", p, craft(t, hdr, []byte("sub=admin"), "ES256", k.signer), token.Malformed},
		{"payload a JSON string", p, craft(t, hdr, []byte(`"admin"`), "ES256", k.signer), token.Malformed},
		{"payload null", p, craft(t, hdr, []byte(`null`), "ES256", k.signer), token.Malformed},
		{"payload trailing garbage", p, craft(t, hdr, append(mustJSON(t, claims), '}'), "ES256", k.signer), token.Malformed},
		{"payload not UTF-8", p, craft(t, hdr, []byte("{\"iss\":\""+ownIssuer+"\",\"name\":\"\xff\"}"), "ES256", k.signer), token.Malformed},

		// Algorithms.
		{"alg none", p, craft(t, with(hdr, "alg", "none"), claims, "none", nil), token.BadAlgorithm},
		{"alg None", p, craft(t, with(hdr, "alg", "None"), claims, "none", nil), token.BadAlgorithm},
		{"alg none with a signature", p, craft(t, with(hdr, "alg", "none"), claims, "none", nil) + segs[2], token.BadAlgorithm},
		{"alg missing", p, craft(t, with(hdr, "alg", nil), claims, "ES256", k.signer), token.BadAlgorithm},
		{"alg not a string", p, craft(t, with(hdr, "alg", 256), claims, "ES256", k.signer), token.Malformed},
		{"alg unsupported", p, craft(t, with(hdr, "alg", "ES384"), claims, "ES256", k.signer), token.BadAlgorithm},
		{"alg HS256 MACed with the public key PEM", p, craft(t, with(hdr, "alg", "HS256"), claims, "HS256", pubPEM), token.BadAlgorithm},
		{"alg HS256 MACed with the public key DER", p, craft(t, with(hdr, "alg", "HS256"), claims, "HS256", pubDER), token.BadAlgorithm},
		{"RS256 policy, HS256 MACed with the public key PEM", rsaPolicy, craft(t, with(ownHeader(rk), "alg", "HS256"), claims, "HS256", fixture.PublicKeyPEM(rk.public())), token.BadAlgorithm},
		{"RS256 policy, HS256 MACed with the public key DER", rsaPolicy, craft(t, with(ownHeader(rk), "alg", "HS256"), claims, "HS256", rsaDER), token.BadAlgorithm},
		{"alg of another supported algorithm", p, craft(t, with(hdr, "alg", "RS256"), claims, "RS256", rk.signer), token.BadAlgorithm},
		{"crit header", p, craft(t, with(hdr, "crit", []string{"exp"}, "exp", now+600), claims, "ES256", k.signer), token.Malformed},
		{"empty crit header", p, craft(t, with(hdr, "crit", []string{}), claims, "ES256", k.signer), token.Malformed},
		{"b64 header", p, craft(t, with(hdr, "b64", true), claims, "ES256", k.signer), token.Malformed},

		// Type and keys.
		{"typ missing", p, craft(t, with(hdr, "typ", nil), claims, "ES256", k.signer), token.Malformed},
		{"typ JWT", p, craft(t, with(hdr, "typ", "JWT"), claims, "ES256", k.signer), token.Malformed},
		{"kid missing", p, craft(t, with(hdr, "kid", nil), claims, "ES256", k.signer), token.UnknownKey},
		{"kid empty", p, craft(t, with(hdr, "kid", ""), claims, "ES256", k.signer), token.UnknownKey},
		{"kid not a string", p, craft(t, with(hdr, "kid", 1), claims, "ES256", k.signer), token.Malformed},
		{"kid unknown", p, craft(t, with(hdr, "kid", "k9"), claims, "ES256", k.signer), token.UnknownKey},
		{"jku to an attacker's JWKS", p, craft(t, with(hdr, "kid", "evil", "jku", attackerSrv.URL), claims, "ES256", attacker), token.UnknownKey},
		{"jku with the policy's kid", p, craft(t, with(hdr, "jku", attackerSrv.URL), claims, "ES256", attacker), token.BadSignature},
		{"x5u to an attacker", p, craft(t, with(hdr, "x5u", attackerSrv.URL), claims, "ES256", attacker), token.BadSignature},
		{"embedded jwk", p, craft(t, with(hdr, "jwk", json.RawMessage(attackerJWKJSON)), claims, "ES256", attacker), token.BadSignature},
		{"embedded jwk, its kid", p, craft(t, with(hdr, "kid", "evil", "jwk", json.RawMessage(attackerJWKJSON)), claims, "ES256", attacker), token.UnknownKey},

		// Signatures.
		{"signature bit flip", p, segs[0] + "." + segs[1] + "." + flip(segs[2], 7), token.BadSignature},
		{"signature truncated", p, segs[0] + "." + segs[1] + "." + segs[2][:40], token.BadSignature},
		{"payload changed", p, segs[0] + "." + b64(mustJSON(t, with(claims, "roles", []string{"root"}))) + "." + segs[2], token.BadSignature},
		{"header changed", p, b64(mustJSON(t, with(hdr, "typ", "application/at+jwt"))) + "." + segs[1] + "." + segs[2], token.BadSignature},
		{"same kid, another key", p, craft(t, hdr, claims, "ES256", stranger.signer), token.BadSignature},

		// Issuers.
		{"iss of nobody", p, craft(t, hdr, with(claims, "iss", "https://evil.example.com"), "ES256", stranger.signer), token.UnknownIssuer},
		{"iss missing", p, craft(t, hdr, with(claims, "iss", nil), "ES256", k.signer), token.UnknownIssuer},
		{"iss not a string", p, craft(t, hdr, with(claims, "iss", 7), "ES256", k.signer), token.Malformed},
		{"iss differing in case", p, craft(t, hdr, with(claims, "iss", strings.ToUpper(ownIssuer)), "ES256", stranger.signer), token.UnknownIssuer},
		{"wrong iss signed with the policy's key", p, craft(t, hdr, with(claims, "iss", "https://old.example.com"), "ES256", k.signer), token.WrongIssuer},
		{"policy without jwt", compile(t, authgatev1.AlgorithmES256, nil, func(ap *authgatev1.AuthPolicy) {
			ap.Spec.JWT = nil
			ap.Spec.Rules[1].Mode = authgatev1.ModeSession
		}), good, token.UnknownIssuer},
		{"nil policy", nil, good, token.UnknownIssuer},

		// Audiences.
		{"wrong aud", p, craft(t, hdr, with(claims, "aud", []string{"other"}), "ES256", k.signer), token.WrongAudience},
		{"aud as a string", p, craft(t, hdr, with(claims, "aud", "billing"), "ES256", k.signer), token.WrongAudience},
		{"aud missing", p, craft(t, hdr, with(claims, "aud", nil), "ES256", k.signer), token.WrongAudience},
		{"aud empty", p, craft(t, hdr, with(claims, "aud", []string{}), "ES256", k.signer), token.WrongAudience},
		{"aud not strings", p, craft(t, hdr, with(claims, "aud", []any{"shop", 1}), "ES256", k.signer), token.Malformed},
		{"aud with null", p, craft(t, hdr, with(claims, "aud", []any{"shop", nil}), "ES256", k.signer), token.Malformed},
		{"token of another policy", p, otherToken, token.WrongAudience},

		// Times (clock skew 30s).
		{"expired", p, craft(t, hdr, with(claims, "exp", now-60, "iat", now-700, "nbf", now-700), "ES256", k.signer), token.Expired},
		{"expired just beyond the skew", p, craft(t, hdr, with(claims, "exp", now-30), "ES256", k.signer), token.Expired},
		{"exp missing", p, craft(t, hdr, with(claims, "exp", nil), "ES256", k.signer), token.Malformed},
		{"exp a string", p, craft(t, hdr, with(claims, "exp", "2099-01-01"), "ES256", k.signer), token.Malformed},
		{"exp numeric string", p, craft(t, hdr, with(claims, "exp", "9999999999"), "ES256", k.signer), token.Malformed},
		{"exp negative", p, craft(t, hdr, with(claims, "exp", -1), "ES256", k.signer), token.Malformed},
		{"exp huge", p, craft(t, hdr, with(claims, "exp", 1e300), "ES256", k.signer), token.Malformed},
		{"exp zero", p, craft(t, hdr, with(claims, "exp", 0), "ES256", k.signer), token.Expired},
		{"nbf in the future", p, craft(t, hdr, with(claims, "nbf", now+120), "ES256", k.signer), token.NotYetValid},
		{"nbf just beyond the skew", p, craft(t, hdr, with(claims, "nbf", now+31), "ES256", k.signer), token.NotYetValid},
		{"iat in the future", p, craft(t, hdr, with(claims, "iat", now+120, "nbf", nil), "ES256", k.signer), token.NotYetValid},
		{"nbf not a number", p, craft(t, hdr, with(claims, "nbf", true), "ES256", k.signer), token.Malformed},

		// Other claims.
		{"sub not a string", p, craft(t, hdr, with(claims, "sub", 42), "ES256", k.signer), token.Malformed},
		{"sid not a string", p, craft(t, hdr, with(claims, "sid", []string{"a"}), "ES256", k.signer), token.Malformed},
		{"jti null", p, craft(t, hdr, with(claims, "jti", json.RawMessage("null")), "ES256", k.signer), token.Malformed},

		// Revocation.
		{"revoked", p, craft(t, hdr, with(claims, "sid", "revoked-family"), "ES256", k.signer), token.Revoked},
	}
	v := newVerifier(t, token.WithDenylist(deny))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v.Verify(context.Background(), tc.p, tc.raw)
			wantRefusal(t, tc.raw, got, err, tc.reason)
		})
	}
	attackerHits.Lock()
	if hits != 0 {
		t.Errorf("the attacker's server was hit %d times", hits)
	}
	attackerHits.Unlock()
	deny.mu.Lock()
	if !slices.Contains(deny.called, "shop/shop") {
		t.Errorf("the denylist was asked for policies %v, want shop/shop", deny.called)
	}
	deny.mu.Unlock()
}

func TestVerifyAccepts(t *testing.T) {
	p, k := ownPolicy(t, authgatev1.AlgorithmES256)
	now := testNow.Unix()
	hdr, claims := ownHeader(k), ownClaims()
	deny := &denylist{sids: map[string]bool{"revoked-family": true}}
	v := newVerifier(t, token.WithDenylist(deny))
	for _, tc := range []struct {
		name   string
		raw    string
		wantFn func(*token.Claims) bool
	}{
		{"valid", craft(t, hdr, claims, "ES256", k.signer), nil},
		{"expired within the skew", craft(t, hdr, with(claims, "exp", now-29), "ES256", k.signer), nil},
		{"nbf within the skew", craft(t, hdr, with(claims, "nbf", now+29, "iat", now+29), "ES256", k.signer), nil},
		{"no nbf or iat", craft(t, hdr, with(claims, "nbf", nil, "iat", nil), "ES256", k.signer), nil},
		{"typ application/at+jwt", craft(t, with(hdr, "typ", "application/at+jwt"), claims, "ES256", k.signer), nil},
		{"typ AT+JWT", craft(t, with(hdr, "typ", "AT+JWT"), claims, "ES256", k.signer), nil},
		{"aud among others", craft(t, hdr, with(claims, "aud", []string{"billing", "shop"}), "ES256", k.signer), nil},
		{"aud a string", craft(t, hdr, with(claims, "aud", "shop"), "ES256", k.signer), nil},
		{"fractional exp", craft(t, hdr, with(claims, "exp", float64(now)+600.5), "ES256", k.signer), func(c *token.Claims) bool {
			return c.ExpiresAt.Equal(time.Unix(now+600, 5e8))
		}},
		{"ignored header members", craft(t, with(hdr, "x5t", "abc", "cty", "text/plain", "zip", "DEF"), claims, "ES256", k.signer), nil},
		{"escaped strings", craft(t, hdr, with(claims, "sub", "a\u00e9\"b"), "ES256", k.signer), func(c *token.Claims) bool {
			return c.Subject == "a\u00e9\"b"
		}},
		{"email and roles of other types ignored", craft(t, hdr, with(claims, "email", 5, "roles", map[string]any{"a": 1}), "ES256", k.signer), func(c *token.Claims) bool {
			return c.Email == "" && c.Roles == nil
		}},
		{"roles as a string", craft(t, hdr, with(claims, "roles", "admin"), "ES256", k.signer), func(c *token.Claims) bool {
			return slices.Equal(c.Roles, []string{"admin"})
		}},
		{"repeated member: the last counts", signRaw(t, b64(mustJSON(t, hdr))+"."+b64([]byte(strings.Replace(string(mustJSON(t, claims)), `"sub":`, `"sub":"first","sub":`, 1))), "ES256", k.signer), func(c *token.Claims) bool {
			return c.Subject == "admin@example.com"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(context.Background(), p, tc.raw)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tc.wantFn != nil && !tc.wantFn(c) {
				t.Errorf("claims %+v", c)
			}
		})
	}
}

func TestClaimHeaderValues(t *testing.T) {
	p, k := ownPolicy(t, authgatev1.AlgorithmES256)
	v := newVerifier(t)
	raw := craft(t, ownHeader(k), with(ownClaims(), "name", "Ann\r\nX-Admin: yes", "roles", []string{}), "ES256", k.signer)
	c, err := v.Verify(context.Background(), p, raw)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := c.Claim("name"); ok {
		t.Errorf("Claim(name) = %q: control characters must not reach a header", v)
	}
	if v, ok := c.Claim("roles"); ok {
		t.Errorf("Claim(roles) = %q for no roles", v)
	}
	var zero token.Claims
	if v, ok := zero.Claim("sub"); ok {
		t.Errorf("zero Claims: Claim(sub) = %q", v)
	}
}

func TestErrorMessage(t *testing.T) {
	e := &token.Error{Reason: token.Expired, Detail: "expired at 2027-01-15T08:00:00Z"}
	if got := e.Error(); got != "token refused: expired: expired at 2027-01-15T08:00:00Z" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&token.Error{Reason: token.Revoked}).Error(); got != "token refused: revoked" {
		t.Errorf("Error() = %q", got)
	}
}

// Details quote header values, shortened and escaped, never the token.
func TestErrorDetailIsSafe(t *testing.T) {
	p, k := ownPolicy(t, authgatev1.AlgorithmES256)
	v := newVerifier(t)
	kid := "k\n\x1b[31m" + strings.Repeat("k", 500)
	raw := craft(t, with(ownHeader(k), "kid", kid), ownClaims(), "ES256", k.signer)
	_, err := v.Verify(context.Background(), p, raw)
	var te *token.Error
	if !errors.As(err, &te) || te.Reason != token.UnknownKey {
		t.Fatalf("err = %v", err)
	}
	if strings.ContainsAny(te.Detail, "\n\x1b") || len(te.Detail) > 200 {
		t.Errorf("unsafe detail %q", te.Detail)
	}
}

// The HS256 policy's secret MACs tokens; a token MACed with anything else is refused.
func TestHS256(t *testing.T) {
	p, k := ownPolicy(t, authgatev1.AlgorithmHS256)
	v := newVerifier(t)
	good := craft(t, ownHeader(k), ownClaims(), "HS256", k.secret)
	if _, err := v.Verify(context.Background(), p, good); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	other := newKey(t, authgatev1.AlgorithmHS256, "k1")
	raw := craft(t, ownHeader(k), ownClaims(), "HS256", other.secret)
	c, err := v.Verify(context.Background(), p, raw)
	wantRefusal(t, raw, c, err, token.BadSignature)
	es := newKey(t, authgatev1.AlgorithmES256, "k1")
	raw = craft(t, with(ownHeader(k), "alg", "ES256"), ownClaims(), "ES256", es.signer)
	c, err = v.Verify(context.Background(), p, raw)
	wantRefusal(t, raw, c, err, token.BadAlgorithm)
}

// jwx reads the alg of issued tokens as the active key's.
func TestIssueUsesActiveKeyAlgorithm(t *testing.T) {
	for _, alg := range algorithms {
		p, _ := ownPolicy(t, alg)
		raw, _, err := token.Issue(p, admin(t, p), "f", testNow)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := jws.Parse([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := msg.Signatures()[0].ProtectedHeaders().Algorithm()
		want, _ := jwa.LookupSignatureAlgorithm(string(alg))
		if got != want {
			t.Errorf("%s: header alg %v", alg, got)
		}
	}
}
