package policy_test

import (
	"errors"
	"maps"
	"testing"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
)

// FuzzCompileSecrets feeds arbitrary users files and signing keys to Compile: it must never panic,
// and must either compile or report the Secret as unresolved, never as a spec problem.
func FuzzCompileSecrets(f *testing.F) {
	good := fixture.Secrets()
	f.Add(good["shop-users"]["users.yaml"], []byte("fixture-1"), good["shop-jwt-keys"]["fixture-1.key.pem"], uint8(0))
	f.Add([]byte("- email: a@example.com\n  passwordHash: $2a$10$\n"), []byte(""), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), uint8(1))
	f.Add([]byte("[{email: 1}]"), []byte("k"), []byte("0123456789abcdef0123456789abcdef"), uint8(3))
	f.Add([]byte("{"), []byte("\x00"), []byte("-----BEGIN EC PRIVATE KEY-----\n-----END EC PRIVATE KEY-----\n"), uint8(2))
	algs := []authgatev1.Algorithm{authgatev1.AlgorithmES256, authgatev1.AlgorithmRS256, authgatev1.AlgorithmEdDSA, authgatev1.AlgorithmHS256}
	f.Fuzz(func(t *testing.T, users, activeKid, key []byte, alg uint8) {
		a := algs[int(alg)%len(algs)]
		keyName := "k1.key.pem"
		if a == authgatev1.AlgorithmHS256 {
			keyName = "k1.secret"
		}
		secrets := maps.Clone(good)
		secrets["shop-users"] = map[string][]byte{"users.yaml": users}
		secrets["shop-jwt-keys"] = map[string][]byte{"active-kid": activeKid, keyName: key, "k0.pub.pem": key}
		p := fixture.AuthPolicy()
		p.Spec.JWT.Algorithm = a
		compiled, err := policy.Compile(p, secrets)
		if err == nil {
			if compiled == nil {
				t.Fatal("nil policy without an error")
			}
			return
		}
		var ce *policy.CompileError
		if !errors.As(err, &ce) {
			t.Fatalf("error is not a CompileError: %v", err)
		}
		if len(ce.Invalid) > 0 {
			t.Fatalf("Secret content reported as a spec problem: %v", ce.Invalid)
		}
		if len(ce.Unresolved) == 0 {
			t.Fatal("CompileError without problems")
		}
	})
}
