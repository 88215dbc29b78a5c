package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"time"
)

// NewClient returns a client that reaches shop.example.com at nginx and auth.example.com at the
// webhook, whatever DNS says, and nothing else; it never follows redirects (tests follow them by
// hand and check each hop). With jar, it keeps cookies as a browser does. Every credential it sends
// or receives is added to the Env's secrets.
func (e *Env) NewClient(jar bool) *http.Client {
	transport := &http.Transport{
		Proxy:             nil,
		DialContext:       e.Dial,
		ForceAttemptHTTP2: false,
	}
	e.t.Cleanup(transport.CloseIdleConnections)
	c := &http.Client{
		Transport: &recordingTransport{next: transport, secrets: e.Secrets},
		// Generous: a login costs a bcrypt check, about a second with the race detector, and more on
		// a machine busy with other test binaries.
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if jar {
		// No public suffix list is needed: example.com is not a public suffix, and a nil list lets
		// the jar accept Domain=example.com from auth.example.com, as a browser does.
		j, err := cookiejar.New(nil)
		if err != nil {
			e.t.Fatal(err)
		}
		c.Jar = j
	}
	return c
}

// Dial sends shop.example.com to nginx and auth.example.com to the webhook, and refuses the rest.
func (e *Env) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var target string
	switch {
	case host == AppHost && port == e.NginxPort && e.NginxAddr != "":
		target = e.NginxAddr
	case host == LoginHost && port == e.WebhookPort:
		target = e.WebhookAddr
	default:
		return nil, fmt.Errorf("harness: refusing to dial %s: the test knows only %s:%s and %s:%s",
			addr, AppHost, e.NginxPort, LoginHost, e.WebhookPort)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, target)
}

// recordingTransport adds the credentials of every request and answer to a SecretSet: the
// Authorization and Cookie headers sent, password, csrf and refresh_token fields posted, the
// Set-Cookie values received, and the tokens of JSON answers.
type recordingTransport struct {
	next    http.RoundTripper
	secrets *SecretSet
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.secrets.AddHeaders(req.Header)
	if req.GetBody != nil {
		if body, err := req.GetBody(); err == nil {
			b, _ := io.ReadAll(body)
			body.Close()
			rt.secrets.AddBody(req.Header.Get("Content-Type"), b)
		}
	}
	resp, err := rt.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	for _, c := range resp.Cookies() {
		rt.secrets.Add("Set-Cookie "+c.Name, c.Value)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		rt.secrets.AddBody("application/json", b)
		resp.Body = io.NopCloser(bytes.NewReader(b))
	}
	return resp, nil
}

// Response is an answer with its body read.
type Response struct {
	*http.Response
	Body string
}

// Do sends req and reads the answer. Transport errors fail the test.
func (e *Env) Do(c *http.Client, req *http.Request) Response {
	e.t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return Response{Response: resp, Body: string(body)}
}

// NewRequest builds a request with the headers given as name, value pairs ("Host" sets the Host
// the request names, whatever the URL dials).
func (e *Env) NewRequest(method, u string, body io.Reader, headerPairs ...string) *http.Request {
	e.t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(headerPairs); i += 2 {
		if http.CanonicalHeaderKey(headerPairs[i]) == "Host" {
			req.Host = headerPairs[i+1]
			continue
		}
		req.Header.Add(headerPairs[i], headerPairs[i+1])
	}
	return req
}

// Get sends a GET with the headers given as name, value pairs, and an X-Request-ID, which it
// returns with the answer.
func (e *Env) Get(c *http.Client, u string, headerPairs ...string) (Response, string) {
	e.t.Helper()
	req := e.NewRequest(http.MethodGet, u, nil, headerPairs...)
	id := e.NewRequestID()
	req.Header.Set("X-Request-ID", id)
	return e.Do(c, req), id
}

// Post sends a POST with a body of the given content type.
func (e *Env) Post(c *http.Client, u, contentType, body string, headerPairs ...string) Response {
	e.t.Helper()
	req := e.NewRequest(http.MethodPost, u, strings.NewReader(body), headerPairs...)
	req.Header.Set("Content-Type", contentType)
	return e.Do(c, req)
}

// ExpectStatus fails the test unless r has the status.
func (e *Env) ExpectStatus(r Response, want int, what string) {
	e.t.Helper()
	if r.StatusCode != want {
		e.t.Fatalf("%s: got %s, want %d %s\nheaders: %v\nbody: %.2000s", what, r.Status, want,
			http.StatusText(want), r.Header, r.Body)
	}
}
