package authz

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzCookieValue reads a cookie out of arbitrary Cookie headers, as clients send them: the value
// is one the header holds, without ';'; where net/http reads the header
// without error, both find the same first cookie of that name; and a cookie added after the header
// is found unless the header has one of that name already.
func FuzzCookieValue(f *testing.F) {
	for _, s := range []string{
		"shop_session=abc", "a=1; shop_session=abc; shop_session=def", `shop_session="abc"`, "shop_session= abc ;x=1",
		"shop_session", "shop_session=", "=abc; shop_session", "SHOP_SESSION=x", " shop_session = abc", `shop_session="`,
		"shop_session=a=b", "x=1;;;;", "shop_session=\x00", "shop_session=abc, other=def",
	} {
		f.Add(s, "shop_session")
	}
	f.Add("a b=1; a b=2", "a b")
	f.Fuzz(func(t *testing.T, header, name string) {
		v, ok := cookieValue(header, name)
		if !ok && v != "" {
			t.Fatalf("cookieValue(%q, %q) = %q without a cookie", header, name, v)
		}
		if ok && (strings.Contains(v, ";") || !strings.Contains(header, v)) {
			t.Fatalf("cookieValue(%q, %q) = %q", header, name, v)
		}
		if cookies, err := http.ParseCookie(header); err == nil && name != "" && name == strings.TrimSpace(name) {
			want, found := "", false
			for _, c := range cookies {
				if c.Name == name {
					want, found = c.Value, true
					break
				}
			}
			// Blanks around a value are dropped here and kept by net/http (session IDs and tokens
			// have none).
			if found != ok || found && strings.TrimSpace(want) != strings.TrimSpace(v) {
				t.Fatalf("cookieValue(%q, %q) = %q, %v; net/http reads %q, %v", header, name, v, ok, want, found)
			}
		}
		if name == "" || name != strings.TrimSpace(name) || strings.ContainsAny(name, ";=") {
			return
		}
		const added = "0123456789abcdef"
		got, _ := cookieValue(header+"; "+name+"="+added, name)
		if !ok && got != added || ok && got != v {
			t.Fatalf("cookieValue(%q + %q) = %q", header, "; "+name+"="+added, got)
		}
	})
}

// FuzzBearerToken reads arbitrary Authorization headers: a token is found only after a "Bearer "
// scheme in any case, is never empty, and is the rest of the header without surrounding blanks.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer abc", "BEARER  abc  ", "Bearer ", "Bearer", "Basic abc", "Bearerabc", "Bearer\tabc", "Bearer a b", "Bearer \u00a0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := BearerToken(h)
		if !ok {
			if tok != "" {
				t.Fatalf("BearerToken(%q) = %q without a token", h, tok)
			}
			return
		}
		if tok == "" || len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") || tok != strings.TrimSpace(h[7:]) {
			t.Fatalf("BearerToken(%q) = %q", h, tok)
		}
	})
}
