package store_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/store"
)

// FuzzRedisConfig reads the AUTHGATE_REDIS_* environment (URL, addresses, flags, passwords): reading
// and validating never panics, and neither an error nor the configuration's String ever carries a
// password, whether it came from AUTHGATE_REDIS_PASSWORD, AUTHGATE_REDIS_SENTINEL_PASSWORD or the URL.
func FuzzRedisConfig(f *testing.F) {
	f.Add("redis://:hunter2hunter2@redis:6379/0", "", "", "", "", "")
	f.Add("rediss://user:p%40ssw0rd-long@redis.example.com:6380/1?dial_timeout=3s&pool_size=5", "", "", "", "", "true")
	f.Add("redis://:pw-of-a-length@redis:6379/0?db=x", "", "", "", "", "")
	f.Add("redis://:pw-of-a-length@redis:notaport/", "", "", "", "", "")
	f.Add("redis://:pw of a length@redis/", "", "", "", "", "")
	f.Add("http://:pw-of-a-length@redis/", "", "", "", "", "")
	f.Add("redis://redis:6379/99999999999999999999", "", "", "", "", "")
	f.Add("redis://redis/?dial_timeout=forever&password=query-secret", "", "", "", "", "")
	f.Add("", "a:1, b:2,c:3", "", "sentinel-secret-x", "", "")
	f.Add("", "a:1", "mymaster", "sentinel-secret-x", "true", "")
	f.Add("", "a", "", "", "", "yes")
	f.Add("", "[::1]:6379,:6379,host:", "", "", "maybe", "")
	f.Add("redis://a:1", "a:1", "", "", "", "")
	f.Add(" redis://x ", "", "", "", "", "1")
	f.Fuzz(func(t *testing.T, rawURL, addrs, master, sentinelPassword, cluster, tlsOn string) {
		const password = "env-password-3d6f1c"
		env := map[string]string{
			"AUTHGATE_REDIS_URL": rawURL, "AUTHGATE_REDIS_ADDRS": addrs, "AUTHGATE_REDIS_SENTINEL_MASTER": master,
			"AUTHGATE_REDIS_PASSWORD": password, "AUTHGATE_REDIS_SENTINEL_PASSWORD": sentinelPassword,
			"AUTHGATE_REDIS_CLUSTER": cluster, "AUTHGATE_REDIS_TLS": tlsOn,
		}
		c := store.RedisConfigFromEnv(func(k string) string { return env[k] })
		err := c.Validate()
		shown := c.String()
		if err != nil {
			shown += "\n" + err.Error()
		}
		others := rawURL + addrs + master + cluster + tlsOn
		secrets := []string{password, sentinelPassword}
		if u, perr := url.Parse(strings.TrimSpace(rawURL)); perr == nil {
			if p, ok := u.User.Password(); ok {
				// The URL holds its password once, in its user information, and maybe escaped.
				rest := strings.Replace(rawURL, u.User.String(), "", 1)
				if !strings.Contains(rest, p) && !strings.Contains(rest, url.QueryEscape(p)) {
					secrets = append(secrets, p, url.QueryEscape(p))
					others = rest + addrs + master + cluster + tlsOn
				}
			}
		}
		for _, s := range secrets {
			if len(s) >= 6 && strings.Contains(shown, s) && !strings.Contains(others, s) && !strings.Contains("REDACTED", s) {
				t.Fatalf("a password shows:\n%s", shown)
			}
		}
	})
}
