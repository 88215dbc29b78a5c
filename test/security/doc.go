// Package security is authgate's attack suite: hostile requests sent to a running webhook, through
// every adapter an attack applies to (a real nginx configured as ingress-nginx, Traefik's
// forwardAuth headers, Envoy's ext_authz HTTP service and its gRPC service), each asserting
// something that fails if the attack works.
//
// The classes:
//
//   - redirects: open-redirect payloads for "rd" (scheme-relative, backslashes, encoded slashes,
//     userinfo, look-alike and non-ASCII hosts, script schemes, control characters, ...) refused by
//     the login form, the JSON login and the sign-out form, and never followed when they arrive in
//     the login redirect that Traefik, Envoy and nginx's auth-signin build for browsers;
//   - paths: spellings of a protected path (traversal, encodings, ";" parameters, case, trailing
//     dots and slashes) that must never reach the Public rule anonymously;
//   - jwt: forged, confused, expired, mis-addressed, oversized and otherwise invalid tokens;
//   - cookies: tampered and foreign session cookies, session fixation, CSRF on the login and
//     sign-out forms, and brute force;
//   - headers: forged identity headers, CR/LF injection and oversized headers;
//   - logs: refused requests and logins that carry live credentials, logged without them.
//
// Each test starts its own world with test/harness (the webhook in-process with the memory store
// and the production logger, nginx, the recording proxy and the upstream), so the tests run in
// parallel and share no sessions or rate limits; the harness also fails a test whose webhook logged
// a password, cookie or token it used. TestAttackSuite runs them all and logs how many payloads
// each class sent. The tests run in `make test` and never skip.
package security
