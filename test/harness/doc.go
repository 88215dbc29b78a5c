// Package harness starts authgate's real parts for the tests under test/: the webhook in-process
// (webhook.Run on a folder of manifests, the memory store, the production JSON logger writing into
// a buffer), a real Debian nginx configured as the ingress-nginx controller configures itself, a
// recording proxy between nginx and the webhook, and an upstream application that echoes what it
// receives. It is used by tests only (test/e2e, test/security); nothing in cmd/ or internal/ may
// import it.
//
// Every address is on 127.0.0.1. Tests use the real host names shop.example.com (the application,
// served by nginx) and auth.example.com (the login host, the webhook itself): the clients of
// Env.NewClient dial them through a custom DialContext, so nothing ever leaves the machine.
//
// Each Start gives a test its own webhook, nginx and upstream (in about 0.1 s), so tests share no
// sessions, cache entries or rate limits and run in parallel. When the test ends the harness holds
// every check answer nginx received to PROTOCOLS.md's rules (no 5xx decision, no-store on denials
// and cookies, one Set-Cookie, each identity header once), and greps every line the webhook logged
// for every secret the test used (passwords, session cookies, access and refresh tokens, CSRF
// tokens, Authorization headers) in its raw, URL- and base64-encoded forms: a secret in a log line
// fails the test. A failing test prints nginx's error.log, the checks and the webhook's log.
//
// The harness never skips: a missing nginx or nginx module fails the test with the Debian package
// to install (`make deps` installs them).
package harness
