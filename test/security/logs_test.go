package security

import (
	"net/http"
	"strings"
	"testing"

	"github.com/authgate/authgate/test/harness"
)

// Requests that the webhook logs (malformed paths, misconfigured proxies, refused logins and
// refreshes) carrying live credentials where clients put them (Cookie, Authorization, a query
// parameter, a form or JSON field): the webhook logs the refusals, and the harness fails the test if
// any line holds a password, cookie or token it used (its scan runs when the test ends), through
// every adapter, gRPC included.
func testCredentialsInLoggedRefusals(t *testing.T) {
	t.Parallel()
	s := newSuite(t, lenientLimits)
	login := s.APILogin(harness.AdminEmail, harness.AdminPassword)
	token, session := login.AccessToken, login.Session
	creds := []string{
		"Cookie", harness.SessionCookie + "=" + session,
		"Authorization", "Bearer " + token,
		"Accept", "application/json",
	}
	before := strings.Count(s.Logs.String(), "\n")
	probes := []struct {
		what string
		ad   adapter
		p    probe
	}{
		{"an encoded slash, the token in the query", adapter{"traefik", viaTraefik}, probe{target: "/orders%2F..?access_token=" + token, headers: creds}},
		{"a target that is not a path, the token in the query", adapter{"traefik", viaTraefik}, probe{target: "orders?access_token=" + token, headers: creds}},
		{"an encoded NUL, the session in the query", adapter{"nginx-endpoint", viaNginxEndpoint}, probe{target: "/orders%00?sid=" + session, headers: creds}},
		{"a fragment, the token after it", adapter{"envoy-http", viaEnvoyHTTP}, probe{target: "/orders?x=1#access_token=" + token, headers: creds}},
		{"double encoding, the token in the query", adapter{"envoy-http", viaEnvoyHTTP}, probe{target: "/orders/%252e?access_token=" + token, headers: creds}},
		{"an encoded slash over gRPC, the token in the query", adapter{"envoy-grpc", viaEnvoyGRPC}, probe{target: "/orders%2F..?access_token=" + token, headers: creds}},
	}
	for _, c := range probes {
		a := c.ad.check(s, c.p)
		expectDenied(t, c.ad.name+": "+c.what, a)
	}
	// A misconfigured nginx: X-Original-URL missing, credentials present.
	r := s.exchange(s.WebhookAddr, http.MethodGet, "/check/nginx?policy=shop%2Fshop", harness.LoginHost,
		append([]string{"X-Original-Method", "GET", "X-Forwarded-Uri", "/orders?access_token=" + token}, creds...))
	if r.StatusCode != http.StatusBadRequest {
		t.Errorf("a check without X-Original-URL: %s, want 400", r.Status)
	}
	// Refused logins: a wrong password, a hostile rd holding the password, a CSRF failure.
	wrong := s.Post(s.NewClient(false), s.AuthURL("/auth/login?policy="+harness.PolicyRef), "application/json",
		`{"email":"`+harness.AdminEmail+`","password":"wrong-`+harness.AdminPassword+`"}`)
	s.ExpectStatus(wrong, http.StatusUnauthorized, "a login with a wrong password")
	rd := s.Post(s.NewClient(false), s.AuthURL("/auth/login?policy="+harness.PolicyRef), "application/json",
		`{"email":"`+harness.AdminEmail+`","password":"`+harness.AdminPassword+`","rd":"https://evil.com/?p=`+harness.AdminPassword+`&t=`+token+`"}`)
	s.ExpectStatus(rd, http.StatusBadRequest, "a login with a hostile rd")
	csrf := s.Post(s.NewClient(false), s.AuthURL("/auth/login?policy="+harness.PolicyRef), "application/x-www-form-urlencoded",
		"email="+harness.AdminEmail+"&password="+harness.AdminPassword+"&csrf="+session)
	s.ExpectStatus(csrf, http.StatusForbidden, "a login form without the CSRF cookie")
	// A refresh with a made-up token and the real access token as the refresh token.
	bad := s.Post(s.NewClient(false), s.AuthURL("/auth/refresh"), "application/json", `{"refresh_token":"`+session+`"}`)
	s.ExpectStatus(bad, http.StatusUnauthorized, "a refresh with a session ID as the refresh token")

	if after := strings.Count(s.Logs.String(), "\n"); after-before < 5 {
		t.Errorf("the refusals logged %d lines; the test wants them logged, to show they are logged clean", after-before)
	}
	counted("logs", len(probes)+5, len(probes)+5)
}
