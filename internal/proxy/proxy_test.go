package proxy_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/proxy"
)

func TestPolicyFromQuery(t *testing.T) {
	shop := policy.Ref{Namespace: "shop", Name: "web"}
	tests := map[string]struct {
		query   string
		want    policy.Ref
		wantErr string
	}{
		"absent":                 {query: "", want: policy.Ref{}},
		"other parameters only":  {query: "a=1&policyx=shop/web", want: policy.Ref{}},
		"plain":                  {query: "policy=shop/web", want: shop},
		"among others":           {query: "a=1&policy=shop/web&b=2", want: shop},
		"escaped slash":          {query: "policy=shop%2Fweb", want: shop},
		"escaped key":            {query: "%70olicy=shop/web", want: shop},
		"twice":                  {query: "policy=shop/web&policy=shop/web", wantErr: "more than once"},
		"twice, one escaped":     {query: "policy=shop/web&%70olicy=other/web", wantErr: "more than once"},
		"empty":                  {query: "policy=", wantErr: "want <namespace>/<name>"},
		"bad escape":             {query: "policy=shop%2", wantErr: "percent-encoding"},
		"upper case":             {query: "policy=Shop/web", wantErr: "namespace"},
		"plus is a space":        {query: "policy=shop/web+x", wantErr: "name"},
		"no name":                {query: "policy=shop/", wantErr: "name"},
		"dotted name":            {query: "policy=shop/web.v2", want: policy.Ref{Namespace: "shop", Name: "web.v2"}},
		"dotted namespace":       {query: "policy=shop.v2/web", wantErr: "namespace"},
		"name with double dot":   {query: "policy=shop/web..v2", wantErr: "name"},
		"name ending with dash":  {query: "policy=shop/web-", wantErr: "name"},
		"long namespace":         {query: "policy=" + strings.Repeat("a", 64) + "/web", wantErr: "namespace"},
		"longest namespace":      {query: "policy=" + strings.Repeat("a", 63) + "/web", want: policy.Ref{Namespace: strings.Repeat("a", 63), Name: "web"}},
		"escaped and with space": {query: "policy=" + url.QueryEscape("shop/ web"), wantErr: "name"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := proxy.PolicyFromQuery(tc.query)
			if tc.wantErr != "" {
				var m *proxy.Misconfigured
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.As(err, &m) {
					t.Fatalf("PolicyFromQuery(%q) = %v, %v; want a misconfiguration containing %q", tc.query, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("PolicyFromQuery(%q) = %v, %v; want %v", tc.query, got, err, tc.want)
			}
		})
	}
}
