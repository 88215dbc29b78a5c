package proxy_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/proxy/envoyhttp"
	"github.com/authgate/authgate/internal/proxy/nginx"
	"github.com/authgate/authgate/internal/proxy/traefik"
	"github.com/authgate/authgate/internal/token"
)

// discard is a ResponseWriter that keeps only what a benchmark checks, reused across iterations.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

// BenchmarkAdapters measures each HTTP adapter end to end in process, for a JWT check that the
// verified-token cache answers: parsing the proxy's request, the decision, writing the answer with
// its identity headers. The server's own cost (reading the request, the socket) is make bench's.
func BenchmarkAdapters(b *testing.B) {
	e, _, p := engine(b, token.WithCache(1000))
	user, _ := p.Login().User("admin@example.com")
	raw, _, err := token.Issue(p, user, "bench-sid", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	type adapterRequest struct {
		h http.Handler
		r *http.Request
	}
	requests := map[string]adapterRequest{}
	r := httptest.NewRequest(http.MethodGet, nginx.Path+"?policy=shop/shop", nil)
	r.Header.Set("X-Original-URL", "https://"+host+"/api/orders?page=2")
	r.Header.Set("X-Original-Method", "GET")
	r.Header.Set("X-Real-IP", "203.0.113.9")
	requests["nginx"] = adapterRequest{nginx.Handler(e), r}
	r = httptest.NewRequest(http.MethodGet, traefik.Path, nil)
	r.Header.Set("X-Forwarded-Method", "GET")
	r.Header.Set("X-Forwarded-Proto", "https")
	r.Header.Set("X-Forwarded-Host", host)
	r.Header.Set("X-Forwarded-Uri", "/api/orders?page=2")
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	requests["traefik"] = adapterRequest{traefik.Handler(e), r}
	r = httptest.NewRequest(http.MethodGet, envoyhttp.PathPrefix+"/api/orders?page=2", nil)
	r.Host = host
	r.Header.Set("X-Forwarded-Proto", "https")
	requests["envoyhttp"] = adapterRequest{envoyhttp.Handler(e), r}
	for _, name := range []string{"nginx", "traefik", "envoyhttp"} {
		tc := requests[name]
		tc.r.Header.Set("Authorization", "Bearer "+raw)
		b.Run(name, func(b *testing.B) {
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				tc.h.ServeHTTP(w, tc.r)
				if w.code != http.StatusOK {
					b.Fatalf("%s answered %d", name, w.code)
				}
			}
		})
	}
}
