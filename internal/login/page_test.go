package login

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

func render(t *testing.T, d PageData) string {
	t.Helper()
	var buf bytes.Buffer
	if err := RenderLoginPage(&buf, d); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func parsePage(t *testing.T, page string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if match(d) {
			out = append(out, d)
		}
	}
	return out
}

func elements(n *html.Node, a atom.Atom) []*html.Node {
	return findAll(n, func(d *html.Node) bool { return d.Type == html.ElementNode && d.DataAtom == a })
}

func byID(t *testing.T, doc *html.Node, id string) *html.Node {
	t.Helper()
	got := findAll(doc, func(d *html.Node) bool {
		v, ok := attr(d, "id")
		return d.Type == html.ElementNode && ok && v == id
	})
	if len(got) != 1 {
		t.Fatalf("%d elements with id %q; want 1", len(got), id)
	}
	return got[0]
}

func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

func TestRenderLoginPageStructure(t *testing.T) {
	page := render(t, PageData{
		PolicyName: "Shop", PolicyRef: "shop/shop", Redirect: "https://shop.example.com/orders?id=1",
		CSRFField: "tok", Action: "/auth/login?policy=shop%2Fshop",
	})
	if !strings.HasPrefix(page, "<!doctype html>\n") {
		t.Errorf("page does not start with <!doctype html>: %.40q", page)
	}
	doc := parsePage(t, page)

	htmls := elements(doc, atom.Html)
	if lang, _ := attr(htmls[0], "lang"); lang != "en" {
		t.Errorf("<html lang=%q>; want en", lang)
	}
	var viewport, charset bool
	for _, m := range elements(doc, atom.Meta) {
		if n, _ := attr(m, "name"); n == "viewport" {
			c, _ := attr(m, "content")
			viewport = strings.Contains(c, "width=device-width")
		}
		if c, _ := attr(m, "charset"); c == "utf-8" {
			charset = true
		}
	}
	if !viewport || !charset {
		t.Errorf("viewport meta %v, charset meta %v; want both", viewport, charset)
	}
	if titles := elements(doc, atom.Title); len(titles) != 1 || text(titles[0]) != "Sign in to Shop" {
		t.Errorf("title is not \"Sign in to Shop\"")
	}

	mains := elements(doc, atom.Main)
	if len(mains) != 1 {
		t.Fatalf("%d <main> elements; want 1", len(mains))
	}
	h1s := elements(mains[0], atom.H1)
	if len(h1s) != 1 || text(h1s[0]) != "Sign in to Shop" {
		t.Fatalf("<h1> is not \"Sign in to Shop\"")
	}
	forms := elements(mains[0], atom.Form)
	if len(forms) != 1 {
		t.Fatalf("%d forms; want 1", len(forms))
	}
	form := forms[0]
	if m, _ := attr(form, "method"); m != "post" {
		t.Errorf("form method %q; want post", m)
	}
	if a, _ := attr(form, "action"); a != "/auth/login?policy=shop%2Fshop" {
		t.Errorf("form action %q", a)
	}

	// Labelled inputs with the attributes password managers and phones need.
	for _, want := range []struct{ id, typ, autocomplete, label string }{
		{"email", "email", "username", "Email"},
		{"password", "password", "current-password", "Password"},
	} {
		in := byID(t, doc, want.id)
		if in.DataAtom != atom.Input {
			t.Fatalf("#%s is a <%s>", want.id, in.Data)
		}
		name, _ := attr(in, "name")
		typ, _ := attr(in, "type")
		ac, _ := attr(in, "autocomplete")
		_, required := attr(in, "required")
		if name != want.id || typ != want.typ || ac != want.autocomplete || !required {
			t.Errorf("#%s: name %q type %q autocomplete %q required %v", want.id, name, typ, ac, required)
		}
		labels := findAll(form, func(d *html.Node) bool {
			f, _ := attr(d, "for")
			return d.DataAtom == atom.Label && f == want.id
		})
		if len(labels) != 1 || text(labels[0]) != want.label {
			t.Errorf("#%s has no label %q", want.id, want.label)
		}
	}
	if v, _ := attr(byID(t, doc, "password"), "value"); v != "" {
		t.Errorf("password input has a value %q", v)
	}

	hidden := map[string]string{}
	for _, in := range elements(form, atom.Input) {
		if typ, _ := attr(in, "type"); typ == "hidden" {
			name, _ := attr(in, "name")
			hidden[name], _ = attr(in, "value")
		}
	}
	if len(hidden) != 2 || hidden["rd"] != "https://shop.example.com/orders?id=1" || hidden["csrf"] != "tok" {
		t.Errorf("hidden fields %v; want rd and csrf", hidden)
	}
	buttons := elements(form, atom.Button)
	if len(buttons) != 1 || text(buttons[0]) != "Sign in" {
		t.Fatal("no \"Sign in\" button")
	}
	if typ, _ := attr(buttons[0], "type"); typ != "submit" {
		t.Errorf("button type %q; want submit", typ)
	}

	// Without an error there is no alert, and nothing claims the inputs are invalid.
	if got := findAll(doc, func(d *html.Node) bool { r, _ := attr(d, "role"); return r == "alert" }); len(got) != 0 {
		t.Errorf("%d role=alert elements without an error", len(got))
	}
	if strings.Contains(page, "aria-invalid") {
		t.Error("aria-invalid without an error")
	}
}

func TestRenderLoginPageNoScriptsNoExternalResources(t *testing.T) {
	page := render(t, PageData{PolicyName: "Shop", PolicyRef: "shop/shop", Error: "x", Email: "a@example.com"})
	doc := parsePage(t, page)
	for _, a := range []atom.Atom{atom.Script, atom.Link, atom.Img, atom.Iframe, atom.Object, atom.Embed, atom.Base, atom.Noscript} {
		if n := len(elements(doc, a)); n != 0 {
			t.Errorf("%d <%s> elements; want none", n, a)
		}
	}
	for d := range doc.Descendants() {
		for _, at := range d.Attr {
			switch {
			case strings.HasPrefix(at.Key, "on"):
				t.Errorf("<%s %s>: event handler attribute", d.Data, at.Key)
			case at.Key == "style", at.Key == "src", at.Key == "href", at.Key == "srcset":
				t.Errorf("<%s %s=%q>: inline style or resource", d.Data, at.Key, at.Val)
			}
		}
	}
	styles := elements(doc, atom.Style)
	if len(styles) != 1 {
		t.Fatalf("%d <style> elements; want 1", len(styles))
	}
	css := text(styles[0])
	for _, bad := range []string{"url(", "@import", "http:", "https:", "//"} {
		if strings.Contains(css, bad) {
			t.Errorf("style loads something: contains %q", bad)
		}
	}
	for _, want := range []string{":focus-visible", "outline"} {
		if !strings.Contains(css, want) {
			t.Errorf("style has no %q: focus must stay visible", want)
		}
	}
}

// TestLoginPageCSPMatchesTheStyle: the hash in the CSP is the hash of the <style> the browser gets,
// so the page is styled under the CSP, and nothing else is allowed.
func TestLoginPageCSPMatchesTheStyle(t *testing.T) {
	page := render(t, PageData{PolicyName: "<Shop>", Error: "</style><script>", Email: "x"})
	_, rest, _ := strings.Cut(page, "<style>")
	style, _, _ := strings.Cut(rest, "</style>")
	sum := sha256.Sum256([]byte(style))
	want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	csp := LoginPageCSP()
	if !strings.Contains(csp, want) {
		t.Fatalf("CSP %q lacks %q", csp, want)
	}
	for _, want := range []string{"default-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "script-src", "*"} {
		if strings.Contains(csp, bad) {
			t.Errorf("CSP %q contains %q", csp, bad)
		}
	}
}

func TestRenderLoginPageEscapes(t *testing.T) {
	hostile := []string{
		`<script>alert(1)</script>`,
		`"><script>alert(1)</script>`,
		`' onfocus='alert(1)' autofocus='`,
		`" onmouseover="alert(1)`,
		`</style><script>alert(1)</script>`,
		`</textarea></title><img src=x onerror=alert(1)>`,
		"{{.Email}}",
		`&lt;script&gt;`,
		"\u2028\u2029\x00",
	}
	for _, h := range hostile {
		d := PageData{
			PolicyName: "Shop " + h, PolicyRef: "shop/shop", Redirect: "https://shop.example.com/?q=" + h,
			CSRFField: "tok" + h, Error: "Wrong " + h, Email: h + "@example.com",
		}
		page := render(t, d)
		doc := parsePage(t, page)
		if n := len(elements(doc, atom.Script)) + len(elements(doc, atom.Img)); n != 0 {
			t.Fatalf("%q: injected %d elements", h, n)
		}
		for n := range doc.Descendants() {
			for _, a := range n.Attr {
				if strings.HasPrefix(a.Key, "on") {
					t.Fatalf("%q: injected attribute %s", h, a.Key)
				}
			}
		}
		if strings.Contains(page, "<script>") || strings.Contains(page, `"><`) {
			t.Fatalf("%q appears unescaped", h)
		}
		// What the browser reads back is exactly the value given (NUL aside, which HTML parsers
		// replace).
		clean := func(s string) string { return strings.ReplaceAll(s, "\x00", "\ufffd") }
		if got := text(elements(doc, atom.H1)[0]); got != clean("Sign in to "+d.PolicyName) {
			t.Errorf("%q: <h1> reads %q", h, got)
		}
		if got := text(elements(doc, atom.Title)[0]); got != "Sign in to "+d.PolicyName && got != clean("Sign in to "+d.PolicyName) {
			t.Errorf("%q: <title> reads %q", h, got)
		}
		alerts := findAll(doc, func(n *html.Node) bool { r, _ := attr(n, "role"); return r == "alert" })
		if len(alerts) != 1 || text(alerts[0]) != clean(d.Error) {
			t.Errorf("%q: alert reads %v", h, alerts)
		}
		for id, want := range map[string]string{"email": d.Email} {
			if got, _ := attr(byID(t, doc, id), "value"); got != clean(want) {
				t.Errorf("%q: #%s value reads %q", h, id, got)
			}
		}
		for _, in := range elements(doc, atom.Input) {
			name, _ := attr(in, "name")
			got, _ := attr(in, "value")
			switch name {
			case "rd":
				if got != clean(d.Redirect) {
					t.Errorf("%q: rd reads %q", h, got)
				}
			case "csrf":
				if got != clean(d.CSRFField) {
					t.Errorf("%q: csrf reads %q", h, got)
				}
			}
		}
	}
}

func TestRenderLoginPageError(t *testing.T) {
	page := render(t, PageData{PolicyName: "Shop", PolicyRef: "shop/shop", Error: "Wrong email or password.", Email: "a@example.com"})
	doc := parsePage(t, page)
	alert := byID(t, doc, "login-error")
	if r, _ := attr(alert, "role"); r != "alert" || text(alert) != "Wrong email or password." {
		t.Fatalf("error element: role %q, text %q", r, text(alert))
	}
	email := byID(t, doc, "email")
	if v, _ := attr(email, "aria-invalid"); v != "true" {
		t.Error("email is not marked aria-invalid")
	}
	for _, id := range []string{"email", "password"} {
		if v, _ := attr(byID(t, doc, id), "aria-describedby"); v != "login-error" {
			t.Errorf("#%s is not described by the error", id)
		}
	}
	if v, _ := attr(email, "value"); v != "a@example.com" {
		t.Errorf("email value %q", v)
	}
	// With the email filled in, the password has the focus.
	if _, ok := attr(byID(t, doc, "password"), "autofocus"); !ok {
		t.Error("password input has no autofocus")
	}
	if _, ok := attr(email, "autofocus"); ok {
		t.Error("email input has autofocus too")
	}
}

func TestRenderLoginPageDefaults(t *testing.T) {
	// Without a name, the reference; without an action, the login path for the policy.
	doc := parsePage(t, render(t, PageData{PolicyRef: "shop/shop"}))
	if got := text(elements(doc, atom.H1)[0]); got != "Sign in to shop/shop" {
		t.Errorf("<h1> %q", got)
	}
	if a, _ := attr(elements(doc, atom.Form)[0], "action"); a != "/auth/login?policy=shop%2Fshop" {
		t.Errorf("form action %q", a)
	}
	// A script URL never becomes the action.
	doc = parsePage(t, render(t, PageData{PolicyName: "Shop", Action: "javascript:alert(1)"}))
	if a, _ := attr(elements(doc, atom.Form)[0], "action"); strings.Contains(strings.ToLower(a), "javascript") {
		t.Errorf("form action %q", a)
	}
	// No action and no reference: the form posts back to the page's URL.
	doc = parsePage(t, render(t, PageData{PolicyName: "Shop"}))
	if _, ok := attr(elements(doc, atom.Form)[0], "action"); ok {
		t.Error("form has an action without Action or PolicyRef")
	}
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.n++
	return 0, errors.New("client went away")
}

func TestRenderLoginPageWritesOnce(t *testing.T) {
	w := &failingWriter{}
	if err := RenderLoginPage(w, PageData{PolicyName: "Shop"}); err == nil {
		t.Fatal("no error from a failing writer")
	}
	if w.n != 1 {
		t.Fatalf("%d writes; want the page in one", w.n)
	}
}
