package token_test

import (
	"context"
	"testing"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/token"
)

func benchmarkVerify(b *testing.B, alg authgatev1.Algorithm) {
	p, _ := ownPolicy(b, alg)
	raw, _, err := token.Issue(p, admin(b, p), "family", testNow)
	if err != nil {
		b.Fatal(err)
	}
	v := newVerifier(b)
	ctx := context.Background()
	if _, err := v.Verify(ctx, p, raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, p, raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyES256(b *testing.B) { benchmarkVerify(b, authgatev1.AlgorithmES256) }
func BenchmarkVerifyEdDSA(b *testing.B) { benchmarkVerify(b, authgatev1.AlgorithmEdDSA) }
func BenchmarkVerifyRS256(b *testing.B) { benchmarkVerify(b, authgatev1.AlgorithmRS256) }
func BenchmarkVerifyHS256(b *testing.B) { benchmarkVerify(b, authgatev1.AlgorithmHS256) }

// BenchmarkVerifyTrustedES256 verifies a trusted issuer's token whose JWKS is cached.
func BenchmarkVerifyTrustedES256(b *testing.B) {
	issuer := newIdP(b)
	key := p256(b)
	issuer.addKey(b, "idp-1", key.Public(), "ES256")
	p := trustedPolicy(b, issuer.URL(), nil)
	raw := craft(b, idpHeader("ES256", "idp-1"), trustedClaims(), "ES256", key)
	v := newVerifier(b)
	ctx := context.Background()
	if _, err := v.Verify(ctx, p, raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, p, raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssueES256(b *testing.B) {
	p, _ := ownPolicy(b, authgatev1.AlgorithmES256)
	user := admin(b, p)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := token.Issue(p, user, "family", testNow); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyES256Cached verifies a token seen before: the verified-token cache answers, with
// exp and the denylist still checked.
func BenchmarkVerifyES256Cached(b *testing.B) {
	p, _ := ownPolicy(b, authgatev1.AlgorithmES256)
	raw, _, err := token.Issue(p, admin(b, p), "family", testNow)
	if err != nil {
		b.Fatal(err)
	}
	v := newVerifier(b, token.WithCache(1000))
	ctx := context.Background()
	if _, err := v.Verify(ctx, p, raw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, p, raw); err != nil {
			b.Fatal(err)
		}
	}
}
