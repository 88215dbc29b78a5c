package webhook_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/webhook"
)

// FuzzParseFlags parses arbitrary command lines (arguments separated by newlines): parsing never
// panics, and every option it accepts is within the bounds the flags document.
func FuzzParseFlags(f *testing.F) {
	for _, s := range []string{
		"--manifests\nm", "--manifests=m\n--kubeconfig=k", "--store=redis\n--redis-url=redis://127.0.0.1:6379/0",
		"--store=redis\n--redis-addrs=a:1,b:2\n--redis-db=1", "--store=redis\n--redis-addrs= , ,", "--store=redis\n--redis-url=http://x",
		"--refresh-grace=1m0.000000001s", "--cache-max-staleness=10m", "--store-check-timeout=999us", "--cache-size=-0",
		"--login-attempts-per-minute-ip=0", "--grpc-tls-cert-file=c", "--redis-timeout=-1s\n--store=redis\n--redis-addrs=a:1",
		"--store=redis\n--redis-url=rediss://:pw@h:1\n--redis-ca-file=/nonexistent", "hash-password", "-h", "--", "--\nx",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cmdline string) {
		o, err := webhook.ParseFlags(strings.Split(cmdline, "\n"), io.Discard)
		if err != nil {
			return
		}
		switch {
		case o.Manifests != "" && o.Kubeconfig != "":
			t.Fatalf("%q: accepted with a folder and a kubeconfig", cmdline)
		case o.Store != "memory" && o.Store != "redis":
			t.Fatalf("%q: accepted store %q", cmdline, o.Store)
		case o.Store == "redis" && o.Redis.Validate() != nil:
			t.Fatalf("%q: accepted a Redis configuration that does not validate: %v", cmdline, o.Redis.Validate())
		case (o.GRPCCertFile == "") != (o.GRPCKeyFile == ""):
			t.Fatalf("%q: accepted a gRPC certificate without its key, or the reverse", cmdline)
		case o.LoginsPerMinuteIP < 1 || o.LoginsPerMinuteAccount < 1 || o.CacheSize < 0:
			t.Fatalf("%q: accepted %d and %d logins a minute, a cache of %d", cmdline, o.LoginsPerMinuteIP, o.LoginsPerMinuteAccount, o.CacheSize)
		case o.MaxStaleness <= 0 || o.MaxStaleness > 10*time.Minute:
			t.Fatalf("%q: accepted staleness %v", cmdline, o.MaxStaleness)
		case o.StoreCheckTimeout < time.Millisecond || o.StoreCheckTimeout > 10*time.Second:
			t.Fatalf("%q: accepted store check timeout %v", cmdline, o.StoreCheckTimeout)
		case o.RefreshGrace < 0 || o.RefreshGrace > time.Minute:
			t.Fatalf("%q: accepted refresh grace %v", cmdline, o.RefreshGrace)
		}
	})
}
