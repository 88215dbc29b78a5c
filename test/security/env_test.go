package security

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/authgate/authgate/internal/webhook"
	"github.com/authgate/authgate/test/harness"
)

// The shop policy's identity headers (testdata/policies.yaml). The reference nginx configuration
// forwards the first three; the harness renders the others into its auth-response-headers, as the
// operator would for this policy.
var identityHeaders = []string{
	"X-User-Id", "X-User-Email", "X-User-Role",
	"X-User-Name", "X-User-Tenant", "X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups",
	"X-Auth-Request-Preferred-Username",
}

// adminIdentity is what the upstream must see for admin@example.com: X-User-Tenant and
// X-Auth-Request-Preferred-Username name claims no user has, so they are never set.
var adminIdentity = map[string]string{
	"X-User-Id":             "admin",
	"X-User-Email":          harness.AdminEmail,
	"X-User-Role":           "admin,editor",
	"X-User-Name":           "Demo administrator",
	"X-Auth-Request-User":   "admin",
	"X-Auth-Request-Email":  harness.AdminEmail,
	"X-Auth-Request-Groups": "admin,editor",
}

const (
	otherPolicy = "shop/other"        // the second policy of testdata/policies.yaml
	otherHost   = "other.example.com" // the host it claims
)

// suite is one test's world (see test/harness) with a gRPC client for the ext_authz service.
type suite struct {
	*harness.Env
	grpc authv3.AuthorizationClient
}

// newSuite starts the webhook on testdata/policies.yaml and the demo users and key of the e2e
// tests, with its gRPC service, and nginx with the reference configuration.
func newSuite(t *testing.T, tune ...func(*webhook.Options)) *suite {
	t.Helper()
	e := harness.Start(t, harness.Options{
		Manifests: []string{
			"testdata/policies.yaml",
			"../e2e/testdata/manifests/secret_demo-users.yaml",
			"../e2e/testdata/manifests/secret_shop-jwt-keys.yaml",
		},
		NginxConfig:         "../e2e/testdata/ingress-nginx-auth.conf",
		AuthResponseHeaders: identityHeaders[3:],
		IdentityHeaders:     identityHeaders,
		GRPC:                true,
		Webhook: func(o *webhook.Options) {
			for _, f := range tune {
				f(o)
			}
		},
	})
	conn, err := grpc.NewClient(e.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("connecting to the gRPC service: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &suite{Env: e, grpc: authv3.NewAuthorizationClient(conn)}
}

// lenientLimits lifts the login rate limits for tests that log in more than the defaults allow
// from one address in a minute; the brute-force test keeps them.
func lenientLimits(o *webhook.Options) {
	o.LoginsPerMinuteIP, o.LoginsPerMinuteAccount = 1000, 1000
}

// ---- counting payloads ----

// tally counts, per attack class, the distinct payloads sent and the requests that carried them.
var tally = struct {
	sync.Mutex
	payloads map[string]int
	requests map[string]int
}{payloads: map[string]int{}, requests: map[string]int{}}

// counted records that class sent payloads distinct payloads in requests requests.
func counted(class string, payloads, requests int) {
	tally.Lock()
	defer tally.Unlock()
	tally.payloads[class] += payloads
	tally.requests[class] += requests
}

// minPayloads is the least each class must send for the suite to mean anything.
var minPayloads = map[string]int{
	"redirects": 60,
	"paths":     30,
	"jwt":       30,
	"cookies":   25,
	"headers":   25,
	"logs":      10,
}

// summary reports the tally and, when the whole suite ran, fails t for each class that sent fewer
// payloads than it must.
func summary(t *testing.T, complete bool) string {
	tally.Lock()
	defer tally.Unlock()
	classes := slices.Sorted(maps.Keys(tally.payloads))
	var b strings.Builder
	total, totalRequests := 0, 0
	for _, c := range classes {
		p, r := tally.payloads[c], tally.requests[c]
		total, totalRequests = total+p, totalRequests+r
		fmt.Fprintf(&b, "  %-10s %4d payloads in %5d requests\n", c, p, r)
		if complete && p < minPayloads[c] {
			t.Errorf("class %s sent %d payloads, want at least %d", c, p, minPayloads[c])
		}
	}
	fmt.Fprintf(&b, "  %-10s %4d payloads in %5d requests\n", "total", total, totalRequests)
	for c, want := range minPayloads {
		if _, ok := tally.payloads[c]; complete && !ok && want > 0 {
			t.Errorf("class %s sent no payloads", c)
		}
	}
	return b.String()
}
