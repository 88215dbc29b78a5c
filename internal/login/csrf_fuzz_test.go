package login

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// FuzzCSRFCheck checks arbitrary form fields against arbitrary cookie values: a pair passes only
// when the field is exactly the one Field gives for the cookie and purpose; a refusal is one of the
// documented errors and repeats neither value. A pair Issue makes passes for its own purpose only.
func FuzzCSRFCheck(f *testing.F) {
	c, err := NewCSRF(testKey(7))
	if err != nil {
		f.Fatal(err)
	}
	field, cookie, err := c.Issue("login")
	if err != nil {
		f.Fatal(err)
	}
	f.Add("login", field, cookie)
	f.Add("logout", field, cookie)
	f.Add("login", field+"=", cookie)
	f.Add("login", field, cookie[:len(cookie)-1]+"B")
	f.Add("login", strings.ToUpper(field), cookie)
	f.Add("login", field, strings.Repeat("A", len(cookie)))
	f.Add("", field, cookie)
	f.Add("login", "", "")
	f.Add("login", "x", strings.Repeat("_", 1<<16))
	f.Fuzz(func(t *testing.T, purpose, field, cookie string) {
		err := c.Check(purpose, field, cookie)
		if err == nil {
			want, ferr := c.Field(purpose, cookie)
			if ferr != nil || want != field {
				t.Fatalf("Check accepted field %q for cookie %q (%q); Field gives %q, %v", field, cookie, purpose, want, ferr)
			}
		} else {
			if !errors.Is(err, ErrCSRFCookieMissing) && !errors.Is(err, ErrCSRFFieldMissing) && !errors.Is(err, ErrCSRFMismatch) &&
				err.Error() != "csrf: purpose is empty" {
				t.Fatalf("Check: undocumented error %v", err)
			}
			for _, v := range []string{field, cookie} {
				if len(v) >= 8 && strings.Contains(err.Error(), v) {
					t.Fatalf("Check: error %q repeats a value", err)
				}
			}
		}
		if purpose == "" {
			return
		}
		issued, fresh, err := c.Issue(purpose)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Check(purpose, issued, fresh); err != nil {
			t.Fatalf("a pair issued for %q fails: %v", purpose, err)
		}
		if again, err := c.Field(purpose, fresh); err != nil || again != issued {
			t.Fatalf("Field(%q) for an issued cookie = %q, %v; Issue gave %q", purpose, again, err, issued)
		}
		if err := c.Check(purpose+"\x00", issued, fresh); !errors.Is(err, ErrCSRFMismatch) {
			t.Fatalf("a field issued for %q passes for another purpose: %v", purpose, err)
		}
	})
}

// FuzzLimiterIPKey reads client addresses as proxies report them: one address counts once however
// it is written (with a port, IPv4-mapped, with a zone), and IPv6 addresses share their /64.
func FuzzLimiterIPKey(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "192.0.2.1:443", "::ffff:192.0.2.1", "[::ffff:192.0.2.1]:80", "2001:db8::1",
		"[2001:db8::1]:443", "fe80::1%eth0", "", "unknown", "1.2.3.4, 5.6.7.8", "[::1", "0:0:0:0:0:0:0:1"} {
		f.Add(s, uint64(0xdeadbeef))
	}
	f.Fuzz(func(t *testing.T, ip string, hostBits uint64) {
		l := NewLimiter(LimiterConfig{Clock: func() time.Time { return time.Unix(0, 0) }})
		k := l.ipKey(ip)
		if ok, _ := l.Allow(ip, "account"); !ok {
			t.Fatalf("a first attempt from %q is refused", ip)
		}
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			return
		}
		same := []string{netip.AddrPortFrom(addr.WithZone(""), 443).String(), addr.Unmap().String(), addr.WithZone("").String()}
		if addr.Is4() {
			same = append(same, netip.AddrFrom16(addr.As16()).String())
		}
		if a := addr.Unmap(); a.Is6() {
			b := a.As16()
			for i := 8; i < 16; i++ {
				b[i] ^= byte(hostBits >> (8 * (i - 8)))
			}
			same = append(same, netip.AddrFrom16(b).String())
		}
		for _, s := range same {
			if l.ipKey(s) != k {
				t.Fatalf("%q and %q count as different clients", ip, s)
			}
		}
	})
}
