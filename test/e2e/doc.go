// Package e2e tests authgate end to end with real parts: the webhook runs in-process (webhook.Run on
// a folder of manifests, the memory store), a real nginx sits in front of it configured as the
// ingress-nginx controller configures itself (testdata/ingress-nginx-auth.conf, a verbatim copy of
// the reference configuration), a test server plays the application behind the ingress, and a real
// headless Chromium logs in through the login page.
//
// Every address is on 127.0.0.1. The tests use the real host names shop.example.com (the
// application, served by nginx) and auth.example.com (the login host, the webhook itself): the Go
// clients dial them through a custom DialContext, Chromium through --host-resolver-rules. Nothing
// ever leaves the machine.
//
// Each test starts its own webhook, nginx and upstream (in about 0.1 s) with the harness of
// test/harness, so tests share no sessions, cache entries or rate limits and run in parallel. Between
// nginx and the webhook sits a small recording proxy: tests count the checks nginx makes (what its
// auth cache keeps away) and read the exact answers, and every answer is held to PROTOCOLS.md's rules
// (no 5xx decision, no-store on denials and cookies, one Set-Cookie, each identity header once) when
// the test ends. The webhook logs through the production JSON logger into a buffer, and when the
// test ends every line is searched for every password, cookie, token and CSRF token the test used:
// one found fails the test. A failing test prints nginx's error.log, the checks and the webhook's log.
//
// Run them alone with `go test -v ./test/e2e/`; set AUTHGATE_E2E_ARTIFACTS to a directory to keep
// the browser's screenshots.
//
// The tests run in `make test` (plain `go test ./...`, no build tag) and never skip: a missing nginx,
// nginx module or Chromium fails the test with the Debian package to install (`make deps` installs
// them). They do not cover Envoy, Traefik or Redis, which have their own tests, and they do not test
// the decision core's corner cases, which the unit tests of internal/authz and internal/policy do.
package e2e
