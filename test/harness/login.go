package harness

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// LoginForm is the login (or sign-out) page's form.
type LoginForm struct {
	Title  string
	H1     string
	Action string     // the form's action, resolved against the page's URL
	Fields url.Values // every input with a name, with its value
}

// ParseLoginForm reads the login page's title, heading and form, with the fields a browser would
// post (every named input, but unchecked checkboxes and radio buttons).
func ParseLoginForm(pageURL, body string) (LoginForm, error) {
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		return LoginForm{}, err
	}
	f := LoginForm{Fields: url.Values{}}
	forms := 0
	var walk func(n *html.Node, inForm bool)
	walk = func(n *html.Node, inForm bool) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "title":
				f.Title = textOf(n)
			case "h1":
				f.H1 = textOf(n)
			case "form":
				forms++
				inForm = true
				f.Action = Attr(n, "action")
			case "input":
				// As a browser: an unchecked checkbox or radio button sends nothing.
				typ := strings.ToLower(Attr(n, "type"))
				unchecked := (typ == "checkbox" || typ == "radio") && !hasAttr(n, "checked")
				if name := Attr(n, "name"); inForm && name != "" && !unchecked {
					f.Fields.Set(name, Attr(n, "value"))
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inForm)
		}
	}
	walk(doc, false)
	if forms != 1 {
		return f, fmt.Errorf("want one form on the login page, found %d", forms)
	}
	base, err := url.Parse(pageURL)
	if err != nil {
		return f, err
	}
	action, err := base.Parse(f.Action)
	if err != nil {
		return f, fmt.Errorf("form action %q: %w", f.Action, err)
	}
	f.Action = action.String()
	return f, nil
}

// Attr returns the value of a node's attribute, or "".
func Attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, name string) bool {
	for _, a := range n.Attr {
		if a.Key == name {
			return true
		}
	}
	return false
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}

// OpenLoginPage GETs the login (or sign-out) page at pageURL with c (which keeps its CSRF cookie)
// and returns its form. The form's CSRF field joins the Env's secrets.
func (e *Env) OpenLoginPage(c *http.Client, pageURL string) (Response, LoginForm) {
	e.t.Helper()
	page, _ := e.Get(c, pageURL, "Accept", BrowserAccept)
	e.ExpectStatus(page, http.StatusOK, "GET "+pageURL)
	form, err := ParseLoginForm(pageURL, page.Body)
	if err != nil {
		e.t.Fatalf("the page at %s: %v\n%s", pageURL, err, page.Body)
	}
	e.Secrets.Add("CSRF field", form.Fields.Get("csrf"))
	return page, form
}

// SubmitLogin posts the login form with an email and a password, keeping its hidden fields.
func (e *Env) SubmitLogin(c *http.Client, form LoginForm, email, password string) Response {
	e.t.Helper()
	return e.SubmitForm(c, form, "email", email, "password", password)
}

// SubmitForm posts a form with its hidden fields, after setting the fields given as name, value
// pairs.
func (e *Env) SubmitForm(c *http.Client, form LoginForm, fieldPairs ...string) Response {
	e.t.Helper()
	values := url.Values{}
	for k, v := range form.Fields {
		values[k] = slices.Clone(v)
	}
	for i := 0; i+1 < len(fieldPairs); i += 2 {
		values.Set(fieldPairs[i], fieldPairs[i+1])
	}
	return e.Post(c, form.Action, "application/x-www-form-urlencoded", values.Encode())
}

// BrowserLogin logs in as a browser does, through nginx: the application redirects to the login
// page, the form is posted, and the login redirects back. It returns the session cookie, which c's
// jar also holds.
func (e *Env) BrowserLogin(c *http.Client, email, password string) *http.Cookie {
	e.t.Helper()
	original := e.AppURL("/orders")
	r, _ := e.Get(c, original, "Accept", BrowserAccept)
	e.ExpectStatus(r, http.StatusFound, "GET "+original+" without a session")
	_, form := e.OpenLoginPage(c, r.Header.Get("Location"))
	login := e.SubmitLogin(c, form, email, password)
	e.ExpectStatus(login, http.StatusSeeOther, "POST the login form")
	if loc := login.Header.Get("Location"); loc != original {
		e.t.Fatalf("the login redirects to %q, want %q", loc, original)
	}
	return e.SessionCookieOf(login.Response)
}

// SessionCookieOf returns the session cookie an answer sets, failing the test if there is none.
func (e *Env) SessionCookieOf(resp *http.Response) *http.Cookie {
	e.t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie {
			return c
		}
	}
	e.t.Fatalf("no %s cookie in %q", SessionCookie, resp.Header.Values("Set-Cookie"))
	return nil
}

// TokenAnswer is the JSON answer of a login with JSON.
type TokenAnswer struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	// Session is the session cookie the login set, for policies with sessions ("" otherwise).
	Session string `json:"-"`
}

// APILogin logs in to the shop policy with JSON at the login host and returns the tokens.
func (e *Env) APILogin(email, password string) TokenAnswer {
	e.t.Helper()
	return e.APILoginTo(PolicyRef, email, password)
}

// APILoginTo logs in to a policy with JSON at the login host and returns the tokens.
func (e *Env) APILoginTo(policyRef, email, password string) TokenAnswer {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	r := e.Post(e.NewClient(false), e.AuthURL("/auth/login?policy="+policyRef), "application/json", string(body))
	e.ExpectStatus(r, http.StatusOK, "POST /auth/login?policy="+policyRef+" with JSON")
	var a TokenAnswer
	if err := json.Unmarshal([]byte(r.Body), &a); err != nil {
		e.t.Fatalf("the JSON login's answer: %v\n%s", err, r.Body)
	}
	if a.AccessToken == "" || a.RefreshToken == "" || a.TokenType != "Bearer" {
		e.t.Fatalf("the JSON login's answer lacks tokens: %s", r.Body)
	}
	for _, c := range r.Cookies() {
		if c.Name == SessionCookie {
			a.Session = c.Value
		}
	}
	return a
}

// APILogout logs out of the shop policy with JSON at the login host: body is the JSON body, cookie
// a Cookie header (or "").
func (e *Env) APILogout(body, cookie string) Response {
	e.t.Helper()
	var headers []string
	if cookie != "" {
		headers = append(headers, "Cookie", cookie)
	}
	r := e.Post(e.NewClient(false), e.AuthURL("/auth/logout?policy="+PolicyRef), "application/json", body, headers...)
	e.ExpectStatus(r, http.StatusOK, "POST /auth/logout with JSON")
	return r
}

// ---- assertions ----

// ExpectIdentity fails the test unless the headers hold each of names that want has exactly once
// with the wanted value, and none of the names want leaves out.
func ExpectIdentity(t testing.TB, what string, h http.Header, names []string, want map[string]string) {
	t.Helper()
	for _, name := range names {
		got := h.Values(name)
		if w, ok := want[name]; ok {
			if len(got) != 1 || got[0] != w {
				t.Errorf("%s: %s = %q, want exactly [%q]", what, name, got, w)
			}
		} else if len(got) != 0 {
			t.Errorf("%s: %s = %q, want none", what, name, got)
		}
	}
}

// UpstreamSaw returns the one request the upstream received with this request id.
func (e *Env) UpstreamSaw(id string) SeenRequest {
	e.t.Helper()
	seen := e.Upstream.ByRequestID(id)
	if len(seen) != 1 {
		e.t.Fatalf("the upstream received %d requests with X-Request-ID %s, want 1", len(seen), id)
	}
	return seen[0]
}

// PollUntil calls cond every interval until it reports done, and reports false if timeout passes
// first. It is how tests wait: never a bare sleep.
func PollUntil(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
	return true
}
