package token

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzRefreshInterval reads the Cache-Control headers of a JWKS response, which the issuer (or
// anything between it and authgate) controls: the refresh interval stays within
// [jwksMinRefresh, jwksMaxRefresh], and follows a plain max-age that is within those bounds.
func FuzzRefreshInterval(f *testing.F) {
	for _, s := range []string{
		"", "max-age=120", "public, max-age=300, must-revalidate", "Max-Age=600", `max-age="900"`, "max-age=5",
		"max-age=-5", "max-age=9223372036854775807", "max-age=99999999999999999999", "no-cache", "No-Store",
		"max-age", "max-age=", "=", ",,,", "max-age=1e3", "max-age=0x10", "max-age=+60", "max-age=\"60",
	} {
		f.Add(s, "")
	}
	f.Add("private", "max-age=600")
	f.Fuzz(func(t *testing.T, first, second string) {
		h := http.Header{}
		for _, v := range []string{first, second} {
			if v != "" {
				h.Add("Cache-Control", v)
			}
		}
		got := refreshInterval(h)
		if got < jwksMinRefresh || got > jwksMaxRefresh {
			t.Fatalf("Cache-Control %q: refresh after %v, outside [%v, %v]", h.Values("Cache-Control"), got, jwksMinRefresh, jwksMaxRefresh)
		}
		if second == "" {
			if v, ok := strings.CutPrefix(first, "max-age="); ok {
				if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs >= 60 && secs <= 86400 && got != time.Duration(secs)*time.Second {
					t.Fatalf("Cache-Control %q: refresh after %v", first, got)
				}
			}
		}
	})
}
