package token_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/token"
)

// FuzzClaimHeaderValues signs valid claims plus one arbitrary claim (a string, or a list of two
// strings) with the policy's HS256 secret: whatever a signed token carries, Claim never hands out a
// value that could split or corrupt an identity header, and hands out a clean extra claim as sent.
func FuzzClaimHeaderValues(f *testing.F) {
	k := newKey(f, authgatev1.AlgorithmHS256, "k1")
	p := compile(f, authgatev1.AlgorithmHS256, secretData(k, nil, nil), nil)
	v := newVerifier(f)
	for _, s := range [][3]string{
		{"groups", "admins", ""}, {"groups", "a", "b"}, {"tenant", "a\r\nX-Injected: 1", ""}, {"name", "Ann\x00", ""},
		{"email", "a@example.com\n", ""}, {"roles", "admin", "x\x7f"}, {"https://example.com/tenant", "t1", ""},
		{"sub", "admin\tuser", ""}, {"exp", "soon", ""}, {"aud", "shop", "other"}, {"x", "", ""}, {"x", "\xff", ""},
	} {
		f.Add(s[0], s[1], s[2], s[2] != "")
	}
	f.Fuzz(func(t *testing.T, name, first, second string, list bool) {
		var value any = first
		if list {
			value = []string{first, second}
		}
		raw := craft(t, ownHeader(k), with(ownClaims(), name, value), "HS256", k.secret)
		claims, err := v.Verify(context.Background(), p, raw)
		if err != nil {
			var te *token.Error
			if !errors.As(err, &te) {
				t.Fatalf("error %v (%T)", err, err)
			}
			return
		}
		for _, n := range []string{name, "iss", "sub", "aud", "email", "name", "roles", "sid", "jti"} {
			got, ok := claims.Claim(n)
			if !ok {
				continue
			}
			if got == "" || strings.ContainsFunc(got, func(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }) {
				t.Fatalf("Claim(%q) = %q: not a header value", n, got)
			}
		}
		registered := strings.Contains(" iss sub aud exp nbf iat jti sid email name roles ", " "+name+" ")
		want := first
		if list {
			want = first + "," + second
		}
		clean := utf8.ValidString(want) && !strings.ContainsFunc(want, func(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f })
		if !registered && clean && want != "" && utf8.ValidString(name) {
			if got, ok := claims.Claim(name); !ok || got != want {
				t.Fatalf("Claim(%q) = %q, %v; the token carries %q", name, got, ok, want)
			}
		}
	})
}
