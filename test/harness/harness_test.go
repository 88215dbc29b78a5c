package harness

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
)

// The log scan finds a secret in each spelling a logger could write it in, including the parts of
// a JWT, and nothing in a clean log: otherwise the redaction tests built on it would prove nothing.
func TestSecretSetFindsEverySpelling(t *testing.T) {
	const password = `pa ss/wörd+"1"`
	jwt := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlLWJ5dGVzLWhlcmU"
	s := NewSecretSet()
	s.Add("password", password)
	s.Add("token", jwt)
	s.Add("short", "abc") // too short to mean anything: ignored
	if s.Len() != 4 {     // the password, the token, its payload and its signature
		t.Fatalf("the set holds %d values, want 4", s.Len())
	}
	quoted, _ := json.Marshal(password)
	spellings := map[string]string{
		"raw":               password,
		"query-escaped":     url.QueryEscape(password),
		"path-escaped":      url.PathEscape(password),
		"base64":            base64.StdEncoding.EncodeToString([]byte(password)),
		"base64url":         base64.RawURLEncoding.EncodeToString([]byte(password)),
		"JSON-escaped":      string(quoted),
		"the JWT":           jwt,
		"the JWT payload":   "payload=" + strings.Split(jwt, ".")[1],
		"the JWT signature": `"sig":"` + strings.Split(jwt, ".")[2] + `"`,
	}
	for name, spelling := range spellings {
		log := `{"msg":"clean"}` + "\n" + `{"msg":"leak","value":` + spelling + "}\n"
		leaks := s.Find(log)
		if len(leaks) == 0 || leaks[0].Line != 2 || strings.Contains(leaks[0].Text, spelling) {
			t.Errorf("%s: found %+v, want a leak on line 2 with the secret masked", name, leaks)
		}
	}
	if leaks := s.Find(`{"msg":"Login failed","reason":"wrong_password","abc":"abc"}` + "\n"); len(leaks) != 0 {
		t.Errorf("a clean log: found %+v", leaks)
	}
}

// The recording transport collects what a client sends and receives: Authorization and Cookie
// values, posted passwords and CSRF fields, Set-Cookie values and the tokens of JSON answers.
func TestRecordingTransportCollectsCredentials(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.SetCookie(w, &http.Cookie{Name: "authgate_session", Value: "session-value-from-the-server"})
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"access-token-value","refresh_token":"refresh-token-value"}`)
	}))
	defer srv.Close()
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	s := NewSecretSet()
	c := &http.Client{Transport: &recordingTransport{next: transport, secrets: s}}
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("email=a%40example.com&password=posted-password&csrf=posted-csrf-field"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer bearer-token-value")
	req.Header.Set("Cookie", "authgate_session=sent-session-value; other=x")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "access-token-value") {
		t.Errorf("the answer's body was not passed on: %q", body)
	}
	for _, want := range []string{
		"Bearer bearer-token-value", "bearer-token-value", "sent-session-value", "posted-password",
		"posted-csrf-field", "session-value-from-the-server", "access-token-value", "refresh-token-value",
	} {
		if len(s.Find(want+"\n")) == 0 {
			t.Errorf("%q was not collected", want)
		}
	}
}

// The logger is the production one: JSON objects with a level and a message, debug lines included.
func TestNewLoggerWritesJSONAtEveryVerbosity(t *testing.T) {
	var b LockedBuffer
	log := NewLogger(&b)
	log.Info("Info line", "k", "v")
	log.V(5).Info("Debug line")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), b.String())
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["level"] == nil || m["msg"] == nil {
			t.Errorf("line %q: not a JSON object with level and msg (%v)", l, err)
		}
	}
}

// Extra auth-response-headers are rendered into both locations of the reference configuration the
// way the controller renders them, and a configuration without the anchor is refused.
func TestRenderAuthResponseHeaders(t *testing.T) {
	b, err := os.ReadFile("../e2e/testdata/ingress-nginx-auth.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf, err := RenderAuthResponseHeaders(string(b), []string{"X-Auth-Request-User"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"auth_request_set    $authHeader3 $upstream_http_x_auth_request_user;",
		"proxy_set_header    'X-Auth-Request-User' $authHeader3;",
	} {
		if n := strings.Count(conf, want); n != 2 {
			t.Errorf("%q appears %d times, want 2 (locations / and /api/)", want, n)
		}
	}
	if _, err := RenderAuthResponseHeaders("http {}", []string{"X-A"}); err == nil {
		t.Errorf("a configuration without the auth-response-headers lines was accepted")
	}
}
