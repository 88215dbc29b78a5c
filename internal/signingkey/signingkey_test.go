package signingkey_test

import (
	"regexp"
	"testing"
	"time"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/signingkey"
)

// TestGeneratedKeysCompile checks that a generated Secret is one internal/policy accepts, for every
// algorithm, and that its key signs.
func TestGeneratedKeysCompile(t *testing.T) {
	now := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	for _, alg := range []authgatev1.Algorithm{authgatev1.AlgorithmES256, authgatev1.AlgorithmRS256, authgatev1.AlgorithmEdDSA, authgatev1.AlgorithmHS256} {
		t.Run(string(alg), func(t *testing.T) {
			kid, data, err := signingkey.Generate(alg, now)
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`^2026-11-29-[a-z2-7]{8}$`).MatchString(kid) {
				t.Errorf("kid %q", kid)
			}
			secrets := fixture.Secrets()
			secrets["shop-jwt-keys"] = data
			ap := fixture.AuthPolicy()
			ap.Spec.JWT.Algorithm = alg
			p, err := policy.Compile(ap, secrets)
			if err != nil {
				t.Fatalf("a generated %s Secret does not compile: %v", alg, err)
			}
			if got := p.JWT().Keys().Active(); got.ID() != kid || got.Algorithm() != alg {
				t.Errorf("active key %s/%s, want %s/%s", got.ID(), got.Algorithm(), kid, alg)
			}
		})
	}
	a, _ := signingkey.KID(now)
	b, _ := signingkey.KID(now)
	if a == b {
		t.Error("two key IDs collided")
	}
	if _, _, err := signingkey.Generate("none", now); err == nil {
		t.Error("generated a key for algorithm none")
	}
}
