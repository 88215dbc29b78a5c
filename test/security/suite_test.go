package security

import (
	"sync/atomic"
	"testing"
)

// TestAttackSuite runs every attack class, each in parallel with its own webhook, and then logs how
// many payloads each class sent (go test -v shows it). A complete run fails when a class sent fewer
// payloads than minPayloads asks.
func TestAttackSuite(t *testing.T) {
	var ran atomic.Int64
	tests := []struct {
		name string
		run  func(*testing.T)
	}{
		{"redirects-at-login-endpoints", testRedirectsAtLoginEndpoints},
		{"redirects-built-for-browsers", testRedirectsBuiltForBrowsers},
		{"paths", testPathSpellings},
		{"jwt", testJWT},
		{"session-cookies", testSessionCookies},
		{"session-fixation", testSessionFixation},
		{"csrf", testCSRF},
		{"brute-force", testBruteForce},
		{"spoofed-identity-headers", testSpoofedIdentityHeaders},
		{"header-injection", testHeaderInjection},
		{"oversized-headers", testOversizedHeaders},
		{"credentials-in-logged-refusals", testCredentialsInLoggedRefusals},
	}
	t.Run("attacks", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				ran.Add(1)
				tc.run(t)
			})
		}
	})
	// With -run choosing some attacks only, or after a failure, a class may have sent part of its
	// payloads: the minimums hold for complete, passing runs.
	complete := ran.Load() == int64(len(tests)) && !t.Failed()
	t.Logf("attack suite, payloads per class:\n%s", summary(t, complete))
}
