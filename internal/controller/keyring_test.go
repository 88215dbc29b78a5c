package controller

import (
	"strings"
	"testing"
	"time"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
)

// compileKeys compiles the fixture policy with ring's data as its signing-key Secret and returns
// the active kid and every kid that verifies.
func compileKeys(t *testing.T, alg authgatev1.Algorithm, data map[string][]byte) (string, []string) {
	t.Helper()
	secrets := fixture.Secrets()
	secrets["shop-jwt-keys"] = data
	ap := fixture.AuthPolicy()
	ap.Spec.JWT.Algorithm = alg
	p, err := policy.Compile(ap, secrets)
	if err != nil {
		t.Fatalf("the ring does not compile: %v", err)
	}
	var verify []string
	for k := range p.JWT().Keys().Verifiers() {
		verify = append(verify, k.ID())
	}
	return p.JWT().Keys().Active().ID(), verify
}

func TestKeyRingLifecycle(t *testing.T) {
	const period, keep = 720 * time.Hour, 15*time.Minute + 30*time.Second
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	for _, alg := range []authgatev1.Algorithm{authgatev1.AlgorithmES256, authgatev1.AlgorithmRS256, authgatev1.AlgorithmEdDSA, authgatev1.AlgorithmHS256} {
		t.Run(string(alg), func(t *testing.T) {
			ring, err := newKeyRing(alg, t0)
			if err != nil {
				t.Fatal(err)
			}
			first, next := ring.active, ring.next
			active, verify := compileKeys(t, alg, ring.data)
			if active != first || len(verify) != 2 || !strings.Contains(strings.Join(verify, " "), next) {
				t.Fatalf("new ring: active %s verify %v; want %s signing and %s published ahead", active, verify, first, next)
			}
			if got := ring.nextEvent(period, keep); !got.Equal(t0.Add(period)) {
				t.Errorf("next event %s, want the rotation at %s", got, t0.Add(period))
			}

			// The annotations carry the schedule to the next reconcile, or the next operator.
			t1 := t0.Add(period)
			ring, err = parseKeyRing(alg, ring.annotations(), ring.data)
			if err != nil {
				t.Fatalf("reading the ring back: %v", err)
			}
			if err := ring.rotate(t1); err != nil {
				t.Fatal(err)
			}
			active, verify = compileKeys(t, alg, ring.data)
			if active != next || len(verify) != 3 {
				t.Fatalf("after rotation: active %s verify %v; want %s signing and the retired %s still verifying", active, verify, next, first)
			}
			if alg != authgatev1.AlgorithmHS256 {
				if _, ok := ring.data[first+authgatev1.SigningKeyPrivateSuffix]; ok {
					t.Error("the retired key's private half is still in the Secret")
				}
				if _, ok := ring.data[first+authgatev1.SigningKeyPublicSuffix]; !ok {
					t.Error("the retired key's public half is gone")
				}
			}
			if got := ring.nextEvent(period, keep); !got.Equal(t1.Add(keep)) {
				t.Errorf("next event %s, want the prune at %s", got, t1.Add(keep))
			}
			if gone := ring.prune(t1.Add(keep-time.Second), keep); len(gone) != 0 {
				t.Errorf("pruned %v before the last token it signed expired", gone)
			}
			ring, err = parseKeyRing(alg, ring.annotations(), ring.data)
			if err != nil {
				t.Fatalf("reading the rotated ring back: %v", err)
			}
			if gone := ring.prune(t1.Add(keep), keep); len(gone) != 1 || gone[0] != first {
				t.Errorf("pruned %v, want [%s]", gone, first)
			}
			active, verify = compileKeys(t, alg, ring.data)
			if active != next || len(verify) != 2 {
				t.Errorf("after pruning: active %s verify %v", active, verify)
			}
			if got := ring.nextEvent(period, keep); !got.Equal(t1.Add(period)) {
				t.Errorf("next event %s, want the rotation at %s", got, t1.Add(period))
			}
		})
	}
}

func TestParseKeyRingRefusesHandEdits(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	ring, err := newKeyRing(authgatev1.AlgorithmES256, t0)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]func(a map[string]string, d map[string][]byte){
		"no active-since": func(a map[string]string, _ map[string][]byte) { delete(a, annotationActiveSince) },
		"garbled retired": func(a map[string]string, _ map[string][]byte) { a[annotationRetired] = "{" },
		"retired time":    func(a map[string]string, _ map[string][]byte) { a[annotationRetired] = `{"k":"yesterday"}` },
		"next key missing": func(_ map[string]string, d map[string][]byte) {
			delete(d, ring.next+authgatev1.SigningKeyPrivateSuffix)
		},
		"active names no key": func(_ map[string]string, d map[string][]byte) { d[authgatev1.SigningKeyActiveKey] = []byte("other") },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			a := ring.annotations()
			d := map[string][]byte{}
			for k, v := range ring.data {
				d[k] = v
			}
			mutate(a, d)
			if _, err := parseKeyRing(authgatev1.AlgorithmES256, a, d); err == nil {
				t.Error("a hand-edited ring was read")
			}
		})
	}
}
