package harness

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/authgate/authgate/internal/webhook"
)

// The names the tests use. The nginx configuration (../e2e/testdata/ingress-nginx-auth.conf) and
// the policies name them too.
const (
	AppHost   = "shop.example.com" // the application, behind nginx
	LoginHost = "auth.example.com" // the login host: the webhook itself
	PolicyRef = "shop/shop"        // what the nginx configuration passes in ?policy=

	SessionCookie = "authgate_session"
	CSRFCookie    = "authgate_csrf"

	// BrowserAccept is what Chromium sends on a navigation.
	BrowserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
)

// The demo users of config/samples (their passwords are public).
const (
	AdminEmail     = "admin@example.com"
	AdminPassword  = "admin-demo-password"
	EditorEmail    = "editor@example.com"
	EditorPassword = "editor-demo-password"
	ViewerEmail    = "viewer@example.com"
	ViewerPassword = "viewer-demo-password"
)

// The programs the harness runs, and the Debian packages that provide them (hack/deps.sh installs
// them).
const (
	NginxBin      = "/usr/sbin/nginx"
	SetMiscModule = "/usr/lib/nginx/modules/ngx_http_set_misc_module.so"
	NDKModule     = "/usr/lib/nginx/modules/ndk_http_module.so"
	ChromiumBin   = "/usr/bin/chromium"
)

// RequireFile fails the test, naming the Debian package to install, when path does not exist. The
// tests never skip: a missing server is an environment to fix, not a test to leave out.
func RequireFile(t testing.TB, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is missing (%v): install the Debian package %s (`make deps` does it as root, "+
			"or: sudo apt-get install -y %s)", path, err, pkg, pkg)
	}
}

// Options say what Start runs.
type Options struct {
	// Manifests are the manifest files, or folders of them (*.yaml), for the webhook's standalone
	// mode. They are templates: ${NAME} placeholders are filled from Values, and ${LOGIN_URL} with
	// the login page of the webhook started (http://auth.example.com:<port>/auth/login). A
	// placeholder left unfilled fails the test.
	// Manifests that name no namespace are in "shop".
	Manifests []string
	Values    map[string]string
	// NginxConfig is the ingress-nginx reference configuration template to run nginx with; empty
	// runs no nginx.
	NginxConfig string
	// AuthResponseHeaders are more headers for the configuration's auth-response-headers, rendered
	// into the "/" and "/api/" locations as the controller renders them (see RenderAuthResponseHeaders).
	AuthResponseHeaders []string
	// IdentityHeaders are the policy's identity headers, which the check answers must each carry
	// at most once.
	IdentityHeaders []string
	// GRPC serves Envoy's ext_authz gRPC service too, at Env.GRPCAddr.
	GRPC bool
	// Webhook, when set, adjusts the webhook's options before it starts (rate limits, for example).
	Webhook func(*webhook.Options)
}

// Env is one test's world: the webhook, a recording proxy in front of its checks, the upstream
// application and nginx.
type Env struct {
	t *testing.T

	WebhookAddr string // 127.0.0.1:port of the webhook (logins, and direct checks)
	WebhookPort string
	GRPCAddr    string // 127.0.0.1:port of the gRPC service, with Options.GRPC
	NginxAddr   string // 127.0.0.1:port nginx listens on
	NginxPort   string
	nginxDir    string // nginx's prefix: configuration, logs, cache

	Upstream *Upstream
	Checks   *CheckRecorder
	Logs     *LockedBuffer // the webhook's log, one JSON object a line
	Secrets  *SecretSet    // every secret the test used, which no log line may hold

	requestIDs atomic.Int64
}

// Start starts everything Options name and registers the shutdown with t.Cleanup.
func Start(t *testing.T, o Options) *Env {
	t.Helper()
	if o.NginxConfig != "" {
		RequireFile(t, NginxBin, "nginx-light")
		RequireFile(t, NDKModule, "libnginx-mod-http-set-misc")
		RequireFile(t, SetMiscModule, "libnginx-mod-http-set-misc")
	}
	e := &Env{t: t, Logs: &LockedBuffer{}, Secrets: NewSecretSet()}
	// Registered first, so it runs last: after the webhook has stopped, on every line it wrote.
	t.Cleanup(func() { e.VerifyLogs(t) })
	e.Upstream = newUpstream(t)
	e.startWebhook(o)
	e.Checks = newCheckRecorder(t, e.WebhookAddr)
	if o.NginxConfig != "" {
		e.startNginx(o)
	}

	// Cleanups run last-registered first: the checks' invariants, then the diagnostics, then the
	// shutdowns registered above, and the log scan.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error.log:\n%s", e.ErrorLog())
			t.Logf("check requests nginx sent to the webhook:\n%s", e.Checks.String())
			t.Logf("webhook log:\n%s", e.Logs.String())
		}
	})
	t.Cleanup(func() { e.Checks.VerifyInvariants(t, o.IdentityHeaders) })
	return e
}

// T is the test the Env reports to.
func (e *Env) T() *testing.T { return e.t }

// AppURL is an absolute URL of the application, through nginx.
func (e *Env) AppURL(pathAndQuery string) string {
	return "http://" + AppHost + ":" + e.NginxPort + pathAndQuery
}

// AuthURL is an absolute URL on the login host, the webhook.
func (e *Env) AuthURL(pathAndQuery string) string {
	return "http://" + LoginHost + ":" + e.WebhookPort + pathAndQuery
}

// ErrorLog returns nginx's error.log.
func (e *Env) ErrorLog() string {
	if e.nginxDir == "" {
		return "(nginx was not started)"
	}
	b, err := os.ReadFile(e.nginxDir + "/error.log")
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return string(b)
}

// CheckCount returns how many checks of application paths under prefix reached the webhook.
func (e *Env) CheckCount(prefix string) int {
	n := 0
	for _, r := range e.Checks.All() {
		if strings.HasPrefix(r.OriginalURL, e.AppURL(prefix)) {
			n++
		}
	}
	return n
}

// NewRequestID returns a fresh X-Request-ID. nginx passes a client's X-Request-ID on to the check
// and to the upstream, which lets a test find both.
func (e *Env) NewRequestID() string {
	name := strings.NewReplacer("/", "-", " ", "_").Replace(e.t.Name())
	return fmt.Sprintf("e2e-%s-%d", name, e.requestIDs.Add(1))
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago. Servers that take an address
// rather than a listener (nginx, webhook.Run) get it; the small window in which another process can
// take it is covered by retrying with another port when the bind fails.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

const bindAttempts = 3

// Fill replaces the ${NAME} placeholders of a template and fails the test if any is left.
func Fill(t testing.TB, template string, values map[string]string) string {
	t.Helper()
	var pairs []string
	for k, v := range values {
		pairs = append(pairs, "${"+k+"}", v)
	}
	out := strings.NewReplacer(pairs...).Replace(template)
	if left := placeholder.FindString(out); left != "" {
		t.Fatalf("the placeholder %s is left unfilled", left)
	}
	return out
}

// placeholder is a ${NAME} the templates hold ("${...}" in their comments is not one).
var placeholder = regexp.MustCompile(`\$\{[A-Z_]+\}`)
