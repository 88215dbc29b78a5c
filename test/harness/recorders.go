package harness

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// ---- the upstream application ----

// SeenRequest is a request the upstream received, as it echoes it.
type SeenRequest struct {
	Method  string      `json:"method"`
	URI     string      `json:"uri"` // the request URI, raw
	Host    string      `json:"host"`
	Headers http.Header `json:"headers"`
}

// Upstream is the application behind nginx: it answers every request with a JSON echo of the
// method, URI, host and headers it received, and records them.
type Upstream struct {
	Addr string
	mu   sync.Mutex
	seen []SeenRequest
}

func newUpstream(t *testing.T) *Upstream {
	u := &Upstream{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := SeenRequest{Method: r.Method, URI: r.RequestURI, Host: r.Host, Headers: r.Header.Clone()}
		u.mu.Lock()
		u.seen = append(u.seen, rec)
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rec)
	}))
	t.Cleanup(srv.Close)
	u.Addr = srv.Listener.Addr().String()
	return u
}

// ByRequestID returns the requests the upstream received with this X-Request-ID.
func (u *Upstream) ByRequestID(id string) []SeenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []SeenRequest
	for _, r := range u.seen {
		if r.Headers.Get("X-Request-ID") == id {
			out = append(out, r)
		}
	}
	return out
}

// All returns every request the upstream received so far.
func (u *Upstream) All() []SeenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.seen)
}

// ---- the recording proxy between nginx and the webhook ----

// CheckRecord is one check request nginx sent to the webhook, and the webhook's answer.
type CheckRecord struct {
	OriginalURL string
	RequestID   string
	Status      int
	Header      http.Header // the answer's headers
}

// CheckRecorder is a reverse proxy between nginx's auth-url and the webhook that records every
// check: a test sees how many checks reached the webhook (what nginx's auth cache kept away) and
// the exact headers of each answer.
type CheckRecorder struct {
	Addr    string
	mu      sync.Mutex
	records []CheckRecord
}

func newCheckRecorder(t *testing.T, webhookAddr string) *CheckRecorder {
	c := &CheckRecorder{}
	target := &url.URL{Scheme: "http", Host: webhookAddr}
	transport := &http.Transport{Proxy: nil}
	proxy := &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// Forward what nginx sent, untouched: Rewrite starts without these.
			pr.Out.Host = pr.In.Host
			for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v, ok := pr.In.Header[h]; ok {
					pr.Out.Header[h] = v
				}
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.records = append(c.records, CheckRecord{
				OriginalURL: resp.Request.Header.Get("X-Original-URL"),
				RequestID:   resp.Request.Header.Get("X-Request-ID"),
				Status:      resp.StatusCode,
				Header:      resp.Header.Clone(),
			})
			return nil
		},
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(func() {
		srv.Close()
		transport.CloseIdleConnections()
	})
	c.Addr = srv.Listener.Addr().String()
	return c
}

// All returns a copy of the records so far.
func (c *CheckRecorder) All() []CheckRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.records)
}

// ByRequestID returns the checks made for the request with this X-Request-ID.
func (c *CheckRecorder) ByRequestID(id string) []CheckRecord {
	var out []CheckRecord
	for _, r := range c.All() {
		if r.RequestID == id {
			out = append(out, r)
		}
	}
	return out
}

func (c *CheckRecorder) String() string {
	var b strings.Builder
	for i, r := range c.All() {
		fmt.Fprintf(&b, "  #%d %s (request id %s) -> %d", i, r.OriginalURL, r.RequestID, r.Status)
		for _, k := range []string{"Cache-Control", "Set-Cookie", "WWW-Authenticate", "X-User-Id", "X-User-Email", "X-User-Role"} {
			for _, v := range r.Header.Values(k) {
				if k == "Set-Cookie" {
					v = redactCookie(v)
				}
				fmt.Fprintf(&b, "; %s: %s", k, v)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// redactCookie hides a Set-Cookie value's secret, keeping its name and attributes.
func redactCookie(v string) string {
	name, rest, ok := strings.Cut(v, "=")
	if !ok {
		return v
	}
	value, attrs, _ := strings.Cut(rest, ";")
	if value != "" {
		value = "<" + strconv.Itoa(len(value)) + " bytes>"
	}
	return name + "=" + value + ";" + attrs
}

// VerifyInvariants checks what PROTOCOLS.md requires of every answer to nginx, whatever the test
// did: never a 5xx for a decision; Cache-Control: no-store on every denial and on every answer that
// sets a cookie, so that nginx's auth cache never keeps them; at most one Set-Cookie (nginx 1.22
// keeps the first, 1.23+ joins several into one broken header); each identity header at most once.
func (c *CheckRecorder) VerifyInvariants(t testing.TB, identityHeaders []string) {
	t.Helper()
	for i, r := range c.All() {
		what := fmt.Sprintf("check answer #%d (%s -> %d)", i, r.OriginalURL, r.Status)
		if r.Status >= 500 {
			t.Errorf("%s: a decision must never be a 5xx", what)
		}
		noStore := slices.ContainsFunc(r.Header.Values("Cache-Control"), func(v string) bool {
			return strings.Contains(strings.ToLower(v), "no-store")
		})
		if r.Status != http.StatusOK && !noStore {
			t.Errorf("%s: a denial without Cache-Control: no-store (got %q)", what, r.Header.Values("Cache-Control"))
		}
		cookies := r.Header.Values("Set-Cookie")
		if len(cookies) > 0 && !noStore {
			t.Errorf("%s: an answer with Set-Cookie without Cache-Control: no-store (got %q)", what, r.Header.Values("Cache-Control"))
		}
		if len(cookies) > 1 {
			t.Errorf("%s: %d Set-Cookie headers; nginx mode allows one", what, len(cookies))
		}
		for _, h := range identityHeaders {
			if n := len(r.Header.Values(h)); n > 1 {
				t.Errorf("%s: %s sent %d times; it must be sent at most once", what, h, n)
			}
		}
	}
}
