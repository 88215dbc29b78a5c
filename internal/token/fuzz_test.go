package token_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/token"
)

var reasons = map[token.Reason]bool{
	token.Malformed: true, token.TooLarge: true, token.UnknownIssuer: true, token.UnknownKey: true,
	token.BadAlgorithm: true, token.BadSignature: true, token.Expired: true, token.NotYetValid: true,
	token.WrongAudience: true, token.WrongIssuer: true, token.Revoked: true, token.Unavailable: true,
}

// FuzzVerify feeds arbitrary strings to Verify against policies of each algorithm, one of them
// trusting an issuer served over HTTP: Verify must never panic, must return claims exactly when it
// returns no error, and every error must be a *token.Error with a known reason.
func FuzzVerify(f *testing.F) {
	issuer := newIdP(f)
	idpKey := p256(f)
	issuer.addKey(f, "idp-1", idpKey.Public(), "ES256")

	var policies []*policy.Policy
	var keys []testKey
	for _, alg := range []authgatev1.Algorithm{authgatev1.AlgorithmES256, authgatev1.AlgorithmEdDSA, authgatev1.AlgorithmHS256} {
		k := newKey(f, alg, "k1")
		policies = append(policies, trustedPolicy2(f, alg, k, issuer.URL()))
		keys = append(keys, k)
	}
	v := newVerifier(f, token.WithDenylist(&denylist{sids: map[string]bool{"revoked": true}}))

	for i, p := range policies {
		raw, _, err := token.Issue(p, admin(f, p), "family", testNow)
		if err != nil {
			f.Fatal(err)
		}
		segs := strings.Split(raw, ".")
		which := uint8(i)
		f.Add(raw, which)
		f.Add(segs[0]+"."+segs[1]+".", which)
		f.Add(segs[0]+"."+segs[1], which)
		f.Add(raw+"."+segs[2], which)
		f.Add(segs[0]+"."+segs[1]+"."+segs[2][:len(segs[2])-2], which)
		f.Add(craft(f, ownHeader(keys[i]), with(ownClaims(), "sid", "revoked"), string(keys[i].alg), keys[i].material()), which)
		f.Add(craft(f, with(ownHeader(keys[i]), "alg", "none"), ownClaims(), "none", nil), which)
		f.Add(craft(f, with(ownHeader(keys[i]), "crit", []string{"exp"}), ownClaims(), string(keys[i].alg), keys[i].material()), which)
		f.Add(craft(f, ownHeader(keys[i]), []byte(`{"iss":"https://auth.example.com","exp":1e999}`), string(keys[i].alg), keys[i].material()), which)
		f.Add(craft(f, idpHeader("ES256", "idp-1"), trustedClaims(), "ES256", idpKey), which)
		f.Add(craft(f, idpHeader("ES256", "idp-2"), trustedClaims(), "ES256", idpKey), which)
	}
	f.Add("", uint8(0))
	f.Add("..", uint8(0))
	f.Add("e30.e30.e30", uint8(0))
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2F1dGguZXhhbXBsZS5jb20ifQ.", uint8(0))
	f.Add(strings.Repeat("A", token.MaxTokenSize+1), uint8(1))

	f.Fuzz(func(t *testing.T, raw string, which uint8) {
		p := policies[int(which)%len(policies)]
		claims, err := v.Verify(context.Background(), p, raw)
		if (claims == nil) == (err == nil) {
			t.Fatalf("Verify returned claims %v and error %v", claims, err)
		}
		if err != nil {
			var te *token.Error
			if !errors.As(err, &te) {
				t.Fatalf("error %v (%T) is not a *token.Error", err, err)
			}
			if !reasons[te.Reason] {
				t.Fatalf("unknown reason %q", te.Reason)
			}
			if len(raw) >= 32 && strings.Contains(te.Detail, raw) {
				t.Fatalf("the detail quotes the token: %s", te.Detail)
			}
			return
		}
		if claims.ExpiresAt.IsZero() || (claims.Issuer != p.JWT().Issuer && claims.Issuer != trustedIssuer) {
			t.Fatalf("accepted claims %+v", claims)
		}
	})
}

// trustedPolicy2 is the fixture policy issuing with k and trusting the issuer at jwksURL.
func trustedPolicy2(t testing.TB, alg authgatev1.Algorithm, k testKey, jwksURL string) *policy.Policy {
	t.Helper()
	return compile(t, alg, secretData(k, nil, nil), func(ap *authgatev1.AuthPolicy) {
		ap.Spec.JWT.TrustedIssuers[0].JWKSURL = authgatev1.URL(jwksURL)
	})
}

// FuzzVerifySigned signs arbitrary header and payload bytes with the policy's HS256 secret, so that
// they get past the signature to the claim checks: Verify must never panic, and must accept only
// unexpired tokens of the policy's issuer with its audience.
func FuzzVerifySigned(f *testing.F) {
	k := newKey(f, authgatev1.AlgorithmHS256, "k1")
	p := compile(f, authgatev1.AlgorithmHS256, secretData(k, nil, nil), nil)
	v := newVerifier(f)
	f.Add(mustJSON(f, ownHeader(k)), mustJSON(f, ownClaims()))
	f.Add(mustJSON(f, ownHeader(k)), mustJSON(f, with(ownClaims(), "aud", "shop", "exp", 1.8e9+0.5)))
	f.Add(mustJSON(f, with(ownHeader(k), "crit", []string{"b64"}, "b64", false)), mustJSON(f, ownClaims()))
	f.Add([]byte(`{"alg":"HS256","kid":"k1","typ":"at+jwt","alg":"none"}`), []byte(`{"iss":"https://auth.example.com","iss":"x"}`))
	f.Add([]byte(`{"alg":"HS256","kid":"k1","typ":"at+jwt"}`), []byte(`{"iss":"https://auth.example.com","aud":["shop"],"exp":1e10,"roles":"a","groups":[1]}`))
	f.Add([]byte(`{"alg":"HS256","kid":"k\u0031","typ":"AT+JWT"}`), []byte("{\"iss\":\"https://auth.example.com\",\"aud\":[\"shop\"],\"exp\":18e8,\"sub\":\"\\ud800\"}"))
	f.Fuzz(func(t *testing.T, header, payload []byte) {
		raw := signRaw(t, b64(header)+"."+b64(payload), "HS256", k.secret)
		claims, err := v.Verify(context.Background(), p, raw)
		if (claims == nil) == (err == nil) {
			t.Fatalf("Verify returned claims %v and error %v", claims, err)
		}
		if err != nil {
			var te *token.Error
			if !errors.As(err, &te) || !reasons[te.Reason] {
				t.Fatalf("error %v (%T)", err, err)
			}
			return
		}
		if claims.Issuer != p.JWT().Issuer || !p.JWT().AcceptsAudience(claims.Audience) ||
			!testNow.Before(claims.ExpiresAt.Add(p.JWT().ClockSkew)) {
			t.Fatalf("accepted claims %+v", claims)
		}
	})
}
