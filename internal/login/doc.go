// Package login holds the building blocks of authgate's login and logout endpoints (the login page,
// POST /auth/login, /auth/logout and /auth/refresh), so that the handlers only wire them together:
//
//   - ValidateRedirect decides where a browser may be sent after login or logout. An open redirect
//     on the login host is a phishing tool with a trusted name, so it accepts only http(s) URLs on
//     a host the policy allows, or a path on the page's own host, and re-serializes what it checked;
//   - CSRF issues and checks stateless double-submit tokens, and CrossOrigin wraps the standard
//     library's Sec-Fetch-Site/Origin check; handlers use both (csrf.go explains why);
//   - Limiter rate-limits login attempts per client address and per account, in bounded memory;
//   - RenderLoginPage renders the login form, and LoginPageCSP the Content-Security-Policy for it.
//
// What the package deliberately does not do:
//
//   - It registers no HTTP handlers, reads no requests and sets no headers or cookies itself:
//     which cookie, status and header go with each outcome is the handlers' decision, and keeping
//     it out of here keeps every block testable without a server.
//   - It does not check passwords, create sessions or issue tokens; the compiled policy
//     (policy.LoginSettings) holds the users and other packages own sessions and tokens.
//   - It keeps no state shared between replicas. CSRF tokens need none (replicas share the key); the
//     Limiter's buckets are per replica, so n replicas allow n times the configured rate.
//   - It does not trust what the proxy says about the client: the caller decides which address is
//     the client's (RemoteAddr, or a forwarded header from a trusted proxy) before calling Allow.
//   - The login page has no JavaScript and loads no external resources (fonts, images, scripts):
//     it works with scripts disabled, offline from the internet, and under a CSP that allows
//     nothing but its own inline style.
//   - It does not log. Errors say what was wrong without repeating more than 100 bytes of client
//     input, and never a token, cookie or password.
package login
