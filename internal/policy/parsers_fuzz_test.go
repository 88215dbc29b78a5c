package policy

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/fixture"
)

// maxEchoedError bounds an error about a client- or user-supplied value: the value is quoted at
// most normMaxQuoted bytes (escaped, so up to four times longer) plus the explanation.
const maxEchoedError = 4*normMaxQuoted + 300

// FuzzParseHostPattern: a pattern parses to its canonical form, which parses to itself; an exact
// pattern matches its own host as NormalizeHost gives it, a wildcard exactly one more label.
func FuzzParseHostPattern(f *testing.F) {
	for _, s := range []string{
		"shop.example.com", "*.example.com", "SHOP.Example.COM.", "*.", "*", "*.*.a", "a.*.com", "*x.com", "[::1]", "::1",
		"[::1]:80", "a:80", "a..b", ".a", "a_b", "xn--bcher-kva.ch", "127.0.0.1", "*.127.0.0.1", strings.Repeat("a.", 127) + "a",
		"*." + strings.Repeat("a", 64), "[fe80::1%eth0]", "*.[::1]", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseHostPattern(s)
		if err != nil {
			if p != (HostPattern{}) {
				t.Fatalf("ParseHostPattern(%q) = %+v with error %v", s, p, err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "host pattern") || len(msg) > maxEchoedError {
				t.Fatalf("ParseHostPattern(%q): error %q does not say what it refuses, or is too long", s, msg)
			}
			return
		}
		c := p.String()
		if c == "" || c != strings.ToLower(c) || strings.HasSuffix(c, ".") || p.IsWildcard() != strings.HasPrefix(c, "*.") {
			t.Fatalf("ParseHostPattern(%q) = %q: not canonical", s, c)
		}
		again, err := ParseHostPattern(c)
		if err != nil || again != p {
			t.Fatalf("ParseHostPattern(%q) = %+v, but its canonical form %q parses to %+v, %v", s, p, c, again, err)
		}
		if !p.IsWildcard() {
			h, err := NormalizeHost(c)
			if err != nil || !p.Matches(h) {
				t.Fatalf("exact pattern %q does not match NormalizeHost(%q) = %q, %v", c, c, h, err)
			}
			return
		}
		domain := strings.TrimPrefix(c, "*.")
		if p.Matches(domain) || p.Matches("a.b."+domain) || p.Matches(".") {
			t.Fatalf("wildcard %q matches %q or a deeper name", c, domain)
		}
		if h, err := NormalizeHost("a." + domain); err == nil && !p.Matches(h) {
			t.Fatalf("wildcard %q does not match %q", c, h)
		}
	})
}

// FuzzSplitRequestURI: an accepted request-target is split losslessly into an origin-form path and
// a query; a refused one gets an error that says so without echoing more than the path.
func FuzzSplitRequestURI(f *testing.F) {
	for _, s := range []string{"", "/", "/a?b", "/a?b?c", "?x", "/#", "/a#b?c", "http://h/p", "*", "a", "/%zz?%", "//x?y=1&token=secret"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		path, query, err := SplitRequestURI(uri)
		if err != nil {
			if path != "" || query != "" {
				t.Fatalf("SplitRequestURI(%q) = %q, %q with error %v", uri, path, query, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "request-target ") || len(msg) > maxEchoedError {
				t.Fatalf("SplitRequestURI(%q): error %q", uri, msg)
			}
			return
		}
		if path == "" || path[0] != '/' || strings.ContainsAny(path, "?#") || strings.Contains(query, "#") {
			t.Fatalf("SplitRequestURI(%q) = %q, %q", uri, path, query)
		}
		rebuilt := path
		if strings.Contains(uri, "?") {
			rebuilt += "?" + query
		}
		if rebuilt != uri && !(uri == "" || uri[0] == '?') {
			t.Fatalf("SplitRequestURI(%q) = %q, %q: parts lost", uri, path, query)
		}
	})
}

// FuzzNewMethodSet: a method list (comma-separated here) builds a set whose String lists its
// methods, builds the same set again, and matches each given method in any ASCII case and nothing
// that differs from all of them.
func FuzzNewMethodSet(f *testing.F) {
	for _, s := range []string{"GET", "get,POST", "GET,get", "", ",", "GET,", "PoſT", "M-SEARCH", "G ET", "a,b,c,d,e,f,g,h,i,j", "\x80"} {
		f.Add(s, "HEAD")
	}
	f.Fuzz(func(t *testing.T, list, probe string) {
		var methods []string
		if list != "" {
			methods = strings.Split(list, ",")
		}
		s, err := NewMethodSet(methods)
		if err != nil {
			if len(err.Error()) > maxEchoedError {
				t.Fatalf("NewMethodSet(%q): error of %d bytes", methods, len(err.Error()))
			}
			return
		}
		str := s.String()
		if len(methods) == 0 {
			if str != "*" || !s.Matches(probe) {
				t.Fatalf("the empty set is %q and does not match %q", str, probe)
			}
			return
		}
		again, err := NewMethodSet(strings.Split(str, ","))
		if err != nil || again.String() != str {
			t.Fatalf("NewMethodSet(%q) = %q, which builds %q, %v", methods, str, again.String(), err)
		}
		for _, m := range methods {
			if !s.Matches(m) || !s.Matches(strings.ToLower(m)) || !s.Matches(strings.ToUpper(m)) {
				t.Fatalf("set %q does not match its own method %q", str, m)
			}
		}
		want := slices.ContainsFunc(methods, func(m string) bool { return normEqualUpperASCII(probe, strings.ToUpper(m)) }) ||
			(normEqualUpperASCII(probe, "HEAD") && slices.ContainsFunc(methods, func(m string) bool { return strings.EqualFold(m, "get") }))
		if s.Matches(probe) != want {
			t.Fatalf("set %q matches %q: %v, want %v", str, probe, !want, want)
		}
	})
}

// FuzzParseUsers reads arbitrary users.yaml files: every user accepted has a plain lower-case email
// (its key), a unique printable ID and a bcrypt hash of cost 10 or more; a refused file says where,
// and no error ever repeats a password hash.
func FuzzParseUsers(f *testing.F) {
	good := fixture.Secrets()["shop-users"][authgatev1.UsersSecretKey]
	f.Add(good)
	f.Add([]byte("- email: A@Example.com \n  passwordHash: $2a$10$abcdefghijklmnopqrstuu5W0fFdpqHgU4bAa7OVEHcm1bbb2hV0u\n"))
	f.Add([]byte("- email: a@example.com\n  passwordHash: $2a$04$abcdefghijklmnopqrstuu5W0fFdpqHgU4bAa7OVEHcm1bbb2hV0u\n"))
	f.Add([]byte("- email: Admin <a@example.com>\n  passwordHash: x\n"))
	f.Add([]byte("- email: a@example.com\n  id: a b\n  passwordHash: $2y$12$abcdefghijklmnopqrstuu5W0fFdpqHgU4bAa7OVEHcm1bbb2hV0u\n  roles: [-x, ok]\n"))
	f.Add([]byte("- email: a@example.com\n  Email: b@example.com\n  passwordHash: $2b$10$\n"))
	f.Add([]byte("- {email: a@example.com, passwordHash: '$2a$10$abcdefghijklmnopqrstuu5W0fFdpqHgU4bAa7OVEHcm1bbb2hV0u', unknown: 1}\n"))
	f.Add([]byte("[{\"email\": \"a@example.com\"}, {\"email\": \"A@EXAMPLE.COM\"}]"))
	f.Add([]byte("{}"))
	f.Add([]byte("- &a {email: a@example.com}\n- *a\n"))
	path := field.NewPath("spec", "login", "usersSecretRef", "name")
	f.Fuzz(func(t *testing.T, file []byte) {
		users, errs := parseUsers(path, "shop-users", map[string][]byte{authgatev1.UsersSecretKey: file})
		var hashes []string
		var entries []map[string]any
		if yaml.Unmarshal(file, &entries) == nil {
			for _, e := range entries {
				// A hash written elsewhere in the file too (as an email, say) may be echoed as that.
				if h, ok := e["passwordHash"].(string); ok && len(h) >= 16 && bytes.Count(file, []byte(h)) == 1 {
					hashes = append(hashes, h)
				}
			}
		}
		for _, e := range errs {
			msg := e.Error()
			if !strings.HasPrefix(e.Field, path.String()) {
				t.Fatalf("error at %s, outside %s: %v", e.Field, path, e)
			}
			for _, h := range hashes {
				if strings.Contains(msg, h) {
					t.Fatalf("error repeats a password hash: %s", msg)
				}
			}
		}
		if len(errs) > 0 {
			return
		}
		ids := map[string]bool{}
		for email, u := range users {
			if email != u.Email || email != strings.ToLower(strings.TrimSpace(email)) || !strings.Contains(email, "@") {
				t.Fatalf("user %+v under %q", u, email)
			}
			if u.ID == "" || len(u.ID) > 256 || !claimValue.MatchString(u.ID) || ids[u.ID] {
				t.Fatalf("user %q has ID %q", email, u.ID)
			}
			ids[u.ID] = true
			if cost, err := bcrypt.Cost(u.PasswordHash()); err != nil || cost < minBcryptCost {
				t.Fatalf("user %q has a hash of cost %d (%v)", email, cost, err)
			}
			for _, r := range u.Roles() {
				if !roleName.MatchString(r) || len(r) > 63 {
					t.Fatalf("user %q has role %q", email, r)
				}
			}
		}
	})
}

// FuzzParseSigningKeys reads a signing-key Secret with one arbitrary entry besides active-kid: it
// never panics, never repeats key material in an error, and accepts only a key set whose active key
// has a valid kid, suits the algorithm and verifies first.
func FuzzParseSigningKeys(f *testing.F) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	es := fixture.PrivateKeyPEM(fixture.ES256Key())
	rs := fixture.PrivateKeyPEM(rsaKey)
	ed := fixture.PrivateKeyPEM(edKey)
	f.Add("k1.key.pem", es, "k1", uint8(0))
	f.Add("k1.key.pem", rs, "", uint8(1))
	f.Add("k1.key.pem", ed, "k1", uint8(2))
	f.Add("k1.secret", []byte("0123456789abcdef0123456789abcdef"), "k1", uint8(3))
	f.Add("k1.pub.pem", fixture.PublicKeyPEM(rsaKey.Public()), "k1", uint8(1))
	f.Add("k1.key.pem", es, "k1", uint8(1))
	f.Add("k 1.key.pem", es, "", uint8(0))
	f.Add("k1.key.pem", append(append([]byte{}, es...), es...), "", uint8(0))
	f.Add("k1.key.pem", []byte("-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----\n"), "", uint8(1))
	f.Add("k1.key.pem", []byte("-----BEGIN EC PRIVATE KEY-----\n-----END EC PRIVATE KEY-----\n"), "k2", uint8(0))
	f.Add("k1.secret", []byte("short"), "k1", uint8(3))
	f.Add("active-kid", []byte("k1"), "", uint8(0))
	algs := []authgatev1.Algorithm{authgatev1.AlgorithmES256, authgatev1.AlgorithmRS256, authgatev1.AlgorithmEdDSA, authgatev1.AlgorithmHS256}
	path := field.NewPath("spec", "jwt", "signingKeySecretRef", "name")
	f.Fuzz(func(t *testing.T, key string, value []byte, active string, which uint8) {
		alg := algs[int(which)%len(algs)]
		data := map[string][]byte{key: value}
		if active != "" {
			data[authgatev1.SigningKeyActiveKey] = []byte(active)
		}
		set, errs := parseSigningKeys(path, "keys", alg, data)
		for _, e := range errs {
			msg := e.Error()
			if len(value) >= 16 && key != authgatev1.SigningKeyActiveKey && strings.Contains(msg, string(value)) {
				t.Fatalf("error repeats key material: %s", msg)
			}
			if !strings.HasPrefix(e.Field, path.String()) {
				t.Fatalf("error at %s, outside %s: %v", e.Field, path, e)
			}
		}
		if len(errs) > 0 {
			if set != nil {
				t.Fatal("a key set with errors")
			}
			return
		}
		a := set.Active()
		if !kidPattern.MatchString(a.ID()) || a.Algorithm() != alg || key != a.ID()+privateSuffixOf(alg) {
			t.Fatalf("active key %q (%s) from entry %q for %s", a.ID(), a.Algorithm(), key, alg)
		}
		first, ok := set.Verifier(a.ID())
		if !ok || first.ID() != a.ID() || set.verify[0].ID() != a.ID() {
			t.Fatalf("the active key %q does not verify first", a.ID())
		}
	})
}

func privateSuffixOf(alg authgatev1.Algorithm) string {
	if alg == authgatev1.AlgorithmHS256 {
		return authgatev1.SigningKeySecretSuffix
	}
	return authgatev1.SigningKeyPrivateSuffix
}
