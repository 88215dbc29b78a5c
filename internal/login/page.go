package login

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"net/url"
	"strings"
)

// PageData fills the login page. Every field is text: html/template escapes each for where it
// appears, so none may hold markup.
type PageData struct {
	// PolicyName is shown in the title and heading ("Sign in to <PolicyName>"); PolicyRef when empty.
	PolicyName string
	// PolicyRef is the policy's "<namespace>/<name>". It is not shown; when Action is empty, the form
	// posts to /auth/login?policy=<PolicyRef>.
	PolicyRef string
	// Redirect is the validated return URL (ValidateRedirect), posted back in the hidden "rd" field.
	Redirect string
	// CSRFField is the token from CSRF.Issue or CSRF.Field, posted back in the hidden "csrf" field.
	CSRFField string
	// Error is a message for the user, shown above the form in a role="alert" element; none when
	// empty. It must not say whether the email or the password was wrong.
	Error string
	// Email refills the email input after a failed attempt. The password is never refilled.
	Email string
	// SignOut renders the sign-out page instead: a form that posts to Action (/auth/logout) with an
	// "everywhere" checkbox.
	SignOut bool
	// Action is the form's action URL, e.g. /auth/login?policy=ns%2Fname. html/template refuses
	// javascript: and similar URLs here.
	Action string
}

// loginPath is where the form posts when PageData.Action is empty.
const loginPath = "/auth/login"

//go:embed templates/login.html
var loginPageSource string

// loginPage is parsed once, when the package is initialized; a template that does not parse fails
// every test, never a request.
var loginPage = template.Must(template.New("login.html").Parse(loginPageSource))

var loginPageCSP = buildLoginPageCSP(loginPageSource)

// buildLoginPageCSP allows the page's one inline <style> element by its hash and nothing else: no
// script (the page has none), no images, fonts, frames or connections, no <base>, and no framing by
// other pages (clickjacking).
//
// A hash rather than style-src 'unsafe-inline': 'unsafe-inline' would also let any markup that ever
// slipped past escaping style the page (CSS can exfiltrate attribute values, such as the CSRF field).
// The hash is computed from the embedded template, so editing the CSS cannot leave a stale hash; the
// <style> element must therefore hold no template actions.
//
// There is no form-action directive: Chrome applies it to the redirect that follows the form post
// too, and that redirect goes to the application, on another host.
func buildLoginPageCSP(src string) string {
	_, rest, ok := strings.Cut(src, "<style>")
	style, _, ok2 := strings.Cut(rest, "</style>")
	if !ok || !ok2 || strings.Contains(style, "{{") {
		panic("login page template: want one <style> element without template actions")
	}
	sum := sha256.Sum256([]byte(style))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; base-uri 'none'; frame-ancestors 'none'"
}

// LoginPageCSP returns the Content-Security-Policy header value to send with the login page.
func LoginPageCSP() string { return loginPageCSP }

// RenderLoginPage writes the login page for d to w. The page is rendered in full before anything is
// written, so an error leaves w untouched. It works without JavaScript and loads nothing else.
func RenderLoginPage(w io.Writer, d PageData) error {
	if d.PolicyName == "" {
		d.PolicyName = d.PolicyRef
	}
	if d.Action == "" && d.PolicyRef != "" {
		d.Action = loginPath + "?policy=" + url.QueryEscape(d.PolicyRef)
	}
	var buf bytes.Buffer
	if err := loginPage.Execute(&buf, d); err != nil {
		return fmt.Errorf("rendering the login page: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}
