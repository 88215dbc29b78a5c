package controller

import (
	"errors"
	"fmt"
	"maps"
	"net/textproto"
	"net/url"
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"

	authgatev1 "github.com/authgate/authgate/api/v1"
)

// The ingress-nginx annotations authgate manages on an Ingress that names a policy.
const (
	// AnnotationAuthURL is where ingress-nginx sends each request's auth check.
	AnnotationAuthURL = "nginx.ingress.kubernetes.io/auth-url"
	// AnnotationAuthSignin is where ingress-nginx redirects a browser whose check answered 401,
	// adding the original URL as "rd".
	AnnotationAuthSignin = "nginx.ingress.kubernetes.io/auth-signin"
	// AnnotationAuthResponseHeaders lists the headers ingress-nginx copies from an allowed check's
	// answer to the upstream request (and strips from the client's request when the answer has none).
	AnnotationAuthResponseHeaders = "nginx.ingress.kubernetes.io/auth-response-headers"
	// AnnotationAuthAlwaysSetCookie makes ingress-nginx pass the check's Set-Cookie headers to the
	// browser whatever the upstream answers, not only on 2xx.
	AnnotationAuthAlwaysSetCookie = "nginx.ingress.kubernetes.io/auth-always-set-cookie"
)

// manageable are the only annotations authgate ever sets. A managed-annotations record naming any
// other key (edited by hand, or written by a future version) never makes authgate remove it: the
// record decides which of these keys are authgate's, not what authgate may touch.
var manageable = map[string]bool{
	AnnotationAuthURL:             true,
	AnnotationAuthSignin:          true,
	AnnotationAuthResponseHeaders: true,
	AnnotationAuthAlwaysSetCookie: true,
}

// Wiring says where ingress-nginx sends auth checks and browsers.
type Wiring struct {
	// WebhookURL is the base URL of the webhook Service (scheme, host, optional port; no path).
	WebhookURL string
	// LoginURL is the login page for policies that name none in spec.login.url; empty: none.
	LoginURL string
}

// Validate checks the URLs: WebhookURL is an absolute http(s) URL with nothing after the host (a
// path would be joined with /check/nginx in ways nobody expects), LoginURL, when set, an absolute
// http(s) URL without a fragment (ingress-nginx appends "rd" to it, which a fragment would swallow).
// Errors name the operator flag that sets the field.
func (w Wiring) Validate() error {
	if w.WebhookURL == "" {
		return errors.New("--webhook-url is required: it is where ingress-nginx sends auth checks")
	}
	u, err := parseAbsolute(w.WebhookURL)
	if err != nil {
		return fmt.Errorf("--webhook-url: %w", err)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return fmt.Errorf("--webhook-url: %q must be scheme, host and optional port only, with no path, query or fragment", w.WebhookURL)
	}
	if w.LoginURL == "" {
		return nil
	}
	u, err = parseAbsolute(w.LoginURL)
	if err != nil {
		return fmt.Errorf("--login-url: %w", err)
	}
	if u.Fragment != "" {
		return fmt.Errorf("--login-url: %q must have no fragment: ingress-nginx appends rd= to it", w.LoginURL)
	}
	return nil
}

// parseAbsolute parses an absolute http or https URL with a host. Credentials are refused: the URL
// ends up in annotations everyone who can read the Ingress sees.
func parseAbsolute(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parsing %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q must be an absolute http:// or https:// URL", raw)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%q has no host", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q must not carry credentials", raw)
	}
	return u, nil
}

// Desired returns the annotations authgate sets for an Ingress guarded by p; nil for a nil p.
func (w Wiring) Desired(p *authgatev1.AuthPolicy) map[string]string {
	if p == nil {
		return nil
	}
	ref := p.Namespace + "/" + p.Name
	out := map[string]string{
		AnnotationAuthURL: strings.TrimSuffix(w.WebhookURL, "/") + "/check/nginx?policy=" + ref,
		// A session the check extends or ends comes back as Set-Cookie; without this, nginx drops it
		// whenever the upstream answers other than 2xx, and the browser keeps a stale cookie.
		AnnotationAuthAlwaysSetCookie: "true",
	}
	if hasBrowserRules(p) {
		if login := signinURL(w.loginURL(p), ref); login != "" {
			out[AnnotationAuthSignin] = login
		}
	}
	if headers := responseHeaders(p.Spec.IdentityHeaders); headers != "" {
		out[AnnotationAuthResponseHeaders] = headers
	}
	return out
}

// loginURL is the policy's own login page, else the operator's.
func (w Wiring) loginURL(p *authgatev1.AuthPolicy) string {
	if p.Spec.Login != nil && p.Spec.Login.URL != "" {
		return string(p.Spec.Login.URL)
	}
	return w.LoginURL
}

// hasBrowserRules reports whether some rule accepts sessions: only those send browsers to log in.
// JWT-only policies serve API clients, which must get the 401 rather than a redirect to a page.
func hasBrowserRules(p *authgatev1.AuthPolicy) bool {
	return slices.ContainsFunc(p.Spec.Rules, func(r authgatev1.Rule) bool { return r.Mode.UsesSession() })
}

// signinURL is login with "policy=<ref>" in its query, or "" when login is empty or does not parse.
// The login page is usually on a host of its own that no policy claims, so it learns the policy only
// from the query, as it does from the redirects the webhook builds for other proxies; ingress-nginx
// then appends "rd" itself. A fragment is dropped: it would swallow that "rd".
func signinURL(login, ref string) string {
	if login == "" {
		return ""
	}
	u, err := url.Parse(login)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	q := u.Query()
	q.Del("policy")
	query := q.Encode()
	if query != "" {
		query += "&"
	}
	// Namespace and name are DNS labels and subdomains: "/" is the only character that could need
	// escaping, and a query may hold it as is, which keeps the annotation readable.
	u.RawQuery = query + "policy=" + ref
	u.ForceQuery = false
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// responseHeaders is the sorted, comma-separated list of the canonical names of headers. Names that
// are not HTTP tokens are left out: the schema refuses them, and a comma in one would smuggle another
// name into the list.
func responseHeaders(headers map[string]authgatev1.ClaimName) string {
	var names []string
	for h := range headers {
		if !isToken(h) {
			continue
		}
		names = append(names, textproto.CanonicalMIMEHeaderKey(h))
	}
	slices.Sort(names)
	return strings.Join(slices.Compact(names), ",")
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2), which header names are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// IngressPlan is what reconciling one Ingress changes.
type IngressPlan struct {
	// Annotations is the Ingress's complete annotation map after the plan.
	Annotations map[string]string
	// Changed reports whether Annotations differs from the Ingress's current ones.
	Changed bool
	// Conflicts are the annotation keys a person set that authgate would otherwise manage, sorted.
	Conflicts []string
	// Removed are the managed keys the plan removes, sorted.
	Removed []string
}

// Plan computes the annotations of ing when guarded by p; p is nil when the Ingress names no policy
// or the policy does not exist. It never modifies ing, and depends on nothing but its arguments.
//
// A key authgate wants is set when the Ingress lacks it or the managed-annotations record lists it;
// otherwise a person wrote it and it is a conflict, left as it is. A recorded key authgate no longer
// wants is removed. The record is rewritten to list exactly the keys authgate now sets, and dropped
// when there are none.
func (w Wiring) Plan(ing *networkingv1.Ingress, p *authgatev1.AuthPolicy) IngressPlan {
	if ing == nil {
		return IngressPlan{}
	}
	current := ing.Annotations
	managed := managedKeys(current)
	desired := w.Desired(p)

	out := maps.Clone(current)
	if out == nil {
		out = map[string]string{}
	}
	var plan IngressPlan
	var applied []string
	for _, k := range slices.Sorted(maps.Keys(desired)) {
		if _, exists := current[k]; exists && !managed[k] {
			plan.Conflicts = append(plan.Conflicts, k)
			continue
		}
		out[k] = desired[k]
		applied = append(applied, k)
	}
	for _, k := range slices.Sorted(maps.Keys(managed)) {
		if _, want := desired[k]; want {
			continue
		}
		if _, exists := current[k]; exists {
			delete(out, k)
			plan.Removed = append(plan.Removed, k)
		}
	}
	if len(applied) > 0 {
		out[authgatev1.ManagedAnnotationsAnnotation] = strings.Join(applied, ",")
	} else {
		delete(out, authgatev1.ManagedAnnotationsAnnotation)
	}

	plan.Annotations = out
	plan.Changed = !maps.Equal(current, out)
	return plan
}

// managedKeys parses the managed-annotations record of annotations, keeping only keys authgate can
// set.
func managedKeys(annotations map[string]string) map[string]bool {
	keys := map[string]bool{}
	for k := range strings.SplitSeq(annotations[authgatev1.ManagedAnnotationsAnnotation], ",") {
		if k = strings.TrimSpace(k); manageable[k] {
			keys[k] = true
		}
	}
	return keys
}
