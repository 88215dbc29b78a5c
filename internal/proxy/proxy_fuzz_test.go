package proxy_test

import (
	"errors"
	"net/url"
	"testing"

	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/proxy"
)

// FuzzPolicyFromQuery reads the policy a proxy names in arbitrary check URL queries. Where
// net/url parses the query without error, both agree: no policy parameter is the zero Ref, two are a
// misconfiguration, one is exactly what ParseRef makes of its value. Every error is a
// Misconfigured (answered 400), and a Ref found is one ParseRef accepts.
func FuzzPolicyFromQuery(f *testing.F) {
	for _, s := range []string{
		"", "policy=shop/web", "policy=shop%2Fweb", "a=1&policy=shop/web&b=2", "policy=shop/web&policy=shop/web", "%70olicy=shop/web",
		"policy=shop+web", "policy=Shop/Web", "policy=%zz", "policy", "policy=", "policy=shop/web;x=1", "policy=shop/web#f",
		"&&policy=shop/a.b&&", "policy=shop/web&%zz", "policy%3dshop/web",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		ref, err := proxy.PolicyFromQuery(raw)
		if err != nil {
			var m *proxy.Misconfigured
			if !errors.As(err, &m) || ref != (policy.Ref{}) {
				t.Fatalf("PolicyFromQuery(%q) = %v, %v (%T)", raw, ref, err, err)
			}
		} else if ref != (policy.Ref{}) {
			if again, perr := policy.ParseRef(ref.String()); perr != nil || again != ref {
				t.Fatalf("PolicyFromQuery(%q) = %v, which ParseRef does not give back: %v", raw, ref, perr)
			}
		}
		q, qerr := url.ParseQuery(raw)
		if qerr != nil {
			return
		}
		switch values := q["policy"]; len(values) {
		case 0:
			if err != nil || ref != (policy.Ref{}) {
				t.Fatalf("PolicyFromQuery(%q) = %v, %v; the query names no policy", raw, ref, err)
			}
		case 1:
			want, werr := policy.ParseRef(values[0])
			if (werr == nil) != (err == nil) || want != ref {
				t.Fatalf("PolicyFromQuery(%q) = %v, %v; ParseRef(%q) = %v, %v", raw, ref, err, values[0], want, werr)
			}
		default:
			if err == nil {
				t.Fatalf("PolicyFromQuery(%q) = %v: the policy is named %d times", raw, ref, len(values))
			}
		}
	})
}
