package e2e

import (
	"net/http"
	"testing"

	"github.com/authgate/authgate/test/harness"
)

// The names the tests use (test/harness explains them). The nginx configuration and the policy
// name them too.
const (
	appHost       = harness.AppHost
	loginHost     = harness.LoginHost
	policyRef     = harness.PolicyRef
	sessionCookie = harness.SessionCookie
	csrfCookie    = harness.CSRFCookie

	adminEmail     = harness.AdminEmail
	adminPassword  = harness.AdminPassword
	viewerEmail    = harness.ViewerEmail
	viewerPassword = harness.ViewerPassword

	browserAccept = harness.BrowserAccept
)

// identityHeaders are the headers the policy sends upstream (identityHeaders) and nginx forwards
// (auth-response-headers).
var identityHeaders = []string{"X-User-Id", "X-User-Email", "X-User-Role"}

// adminIdentity is what the upstream must see for admin@example.com (config/samples demo users).
var adminIdentity = map[string]string{
	"X-User-Id":    "admin",
	"X-User-Email": adminEmail,
	"X-User-Role":  "admin,editor",
}

// sessionTimes are the policy's session.ttl and session.refreshThreshold.
type sessionTimes struct{ ttl, refreshThreshold string }

var (
	// stableSession never slides during a test: a check extends the session only when less than 5m
	// of its hour remains.
	stableSession = sessionTimes{ttl: "1h", refreshThreshold: "5m"}
	// slidingSession slides on every check that comes at least one second after the login or the
	// last extension: then less than 59m59s of the hour remains.
	slidingSession = sessionTimes{ttl: "1h", refreshThreshold: "59m59s"}
)

// newEnv starts the test's own webhook (on testdata/manifests, the shop policy with the session
// times given), recording proxy, upstream and nginx (testdata/ingress-nginx-auth.conf).
func newEnv(t *testing.T, times sessionTimes) *harness.Env {
	t.Helper()
	return harness.Start(t, harness.Options{
		Manifests: []string{"testdata/manifests"},
		Values: map[string]string{
			"SESSION_TTL":               times.ttl,
			"SESSION_REFRESH_THRESHOLD": times.refreshThreshold,
		},
		NginxConfig:     "testdata/ingress-nginx-auth.conf",
		IdentityHeaders: identityHeaders,
	})
}

// expectIdentity fails the test unless the headers hold each identity header exactly once with the
// wanted value, and none of the identity headers want leaves out.
func expectIdentity(t *testing.T, what string, h http.Header, want map[string]string) {
	t.Helper()
	harness.ExpectIdentity(t, what, h, identityHeaders, want)
}
