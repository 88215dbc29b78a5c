package operator_test

import (
	"errors"
	"flag"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/operator"
)

// FuzzParseFlags parses arbitrary command lines (arguments separated by newlines): parsing never
// panics, and options it accepts are ones Run accepts too: valid URLs, a finite positive rate, a
// positive burst, 1 to 64 workers.
func FuzzParseFlags(f *testing.F) {
	for _, s := range []string{
		"--webhook-url\nhttp://authgate-webhook.authgate.svc:8080",
		"--webhook-url=http://w:8080\n--login-url=https://auth.example.com/auth/login\n--workers=64",
		"--webhook-url=http://w:8080\n--workers=0", "--webhook-url=http://w:8080\n--kube-api-qps=NaN",
		"--webhook-url=http://w:8080\n--kube-api-qps=-1\n--kube-api-burst=0", "--webhook-url=http://w:8080\n--kube-api-qps=1e-50",
		"--webhook-url=http://w:8080\n--kube-api-qps=1e300", "--webhook-url=w:8080", "--webhook-url=http://u:p@w", "-h",
		"--webhook-url=http://w:8080\nextra", "--webhook-url=http://w:8080\n--shutdown-timeout=-1s", "--login-url=https://a/#f",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cmdline string) {
		o, err := operator.ParseFlags(strings.Split(cmdline, "\n"), io.Discard)
		if err != nil {
			if errors.Is(err, flag.ErrHelp) || err.Error() != "" {
				return
			}
			t.Fatal("an empty error")
		}
		if err := o.Wiring.Validate(); err != nil {
			t.Fatalf("%q: accepted with an invalid wiring: %v", cmdline, err)
		}
		if !(o.KubeAPIQPS > 0) || math.IsInf(float64(o.KubeAPIQPS), 0) || o.KubeAPIBurst < 1 || o.Workers < 1 || o.Workers > 64 {
			t.Fatalf("%q: accepted qps %v, burst %d, workers %d", cmdline, o.KubeAPIQPS, o.KubeAPIBurst, o.Workers)
		}
	})
}
