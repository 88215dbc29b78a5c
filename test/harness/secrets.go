package harness

import (
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// MinSecretLen is the shortest value a SecretSet keeps: shorter values (a cookie "a=b" of an
// attack, an empty field) would match log lines by chance and prove nothing.
const MinSecretLen = 8

// SecretSet is every secret value a test used: what no log line may contain, in any encoding.
// It is safe for concurrent use.
type SecretSet struct {
	mu     sync.Mutex
	values map[string]string // value -> what it is ("password", "Set-Cookie authgate_session", ...)
}

// NewSecretSet returns an empty set.
func NewSecretSet() *SecretSet { return &SecretSet{values: map[string]string{}} }

// Add adds values, saying what they are. Values shorter than MinSecretLen are left out. A value
// that is a compact JWS (three base64url segments) adds its payload and signature too: a log line
// holding either leaks the token.
func (s *SecretSet) Add(what string, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range values {
		s.addLocked(what, v)
		if parts := strings.Split(v, "."); len(parts) == 3 {
			s.addLocked(what+" (JWT payload)", parts[1])
			s.addLocked(what+" (JWT signature)", parts[2])
		}
	}
}

func (s *SecretSet) addLocked(what, v string) {
	if len(v) < MinSecretLen {
		return
	}
	if _, ok := s.values[v]; !ok {
		s.values[v] = what
	}
}

// AddHeaders adds the credentials of request headers: every Authorization value (and its token),
// and every cookie value of every Cookie header, read leniently so that malformed attack cookies
// count too.
func (s *SecretSet) AddHeaders(h http.Header) {
	for _, v := range h.Values("Authorization") {
		s.Add("Authorization header", v)
		if _, token, ok := strings.Cut(v, " "); ok {
			s.Add("Authorization token", strings.TrimSpace(token))
		}
	}
	for _, line := range h.Values("Cookie") {
		s.Add("Cookie header", line)
		for part := range strings.SplitSeq(line, ";") {
			if _, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok {
				s.Add("cookie value", v)
			}
		}
	}
}

// secretFields are the form and JSON fields that carry secrets.
var secretFields = []string{"password", "csrf", "refresh_token", "access_token"}

// AddBody adds the secret fields of a form or JSON body.
func (s *SecretSet) AddBody(contentType string, body []byte) {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return
		}
		for _, f := range secretFields {
			s.Add("form field "+f, form[f]...)
		}
	case "application/json":
		var m map[string]any
		if json.Unmarshal(body, &m) != nil {
			return
		}
		for _, f := range secretFields {
			if v, ok := m[f].(string); ok {
				s.Add("JSON field "+f, v)
			}
		}
	}
}

// Len returns how many values the set holds.
func (s *SecretSet) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.values)
}

// Encodings returns the spellings of v a log line could hold it in: raw, percent-encoded (query and
// path), base64 (standard and URL alphabets, padded and not), and escaped as a JSON or Go string.
func Encodings(v string) []string {
	jsonQuoted, _ := json.Marshal(v)
	out := []string{
		v,
		url.QueryEscape(v),
		url.PathEscape(v),
		base64.StdEncoding.EncodeToString([]byte(v)),
		base64.RawStdEncoding.EncodeToString([]byte(v)),
		base64.URLEncoding.EncodeToString([]byte(v)),
		base64.RawURLEncoding.EncodeToString([]byte(v)),
		strings.Trim(string(jsonQuoted), `"`),
		strings.Trim(strconv.Quote(v), `"`),
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Leak is a secret found in a log line.
type Leak struct {
	Line     int    // 1-based
	What     string // what the secret is
	Encoding string // the spelling found
	Text     string // the line, the secret replaced by <secret>
}

// Find returns every secret of the set found in log, one Leak per line and secret.
func (s *SecretSet) Find(log string) []Leak {
	s.mu.Lock()
	type secret struct{ what, value string }
	secrets := make([]secret, 0, len(s.values))
	for v, what := range s.values {
		secrets = append(secrets, secret{what, v})
	}
	s.mu.Unlock()
	encoded := make([][]string, len(secrets))
	for i, sec := range secrets {
		encoded[i] = Encodings(sec.value)
	}
	var leaks []Leak
	n := 0
	for line := range strings.Lines(log) {
		n++
		for i, sec := range secrets {
			for _, enc := range encoded[i] {
				if strings.Contains(line, enc) {
					leaks = append(leaks, Leak{Line: n, What: sec.what, Encoding: enc,
						Text: strings.TrimSpace(strings.ReplaceAll(line, enc, "<secret>"))})
					break
				}
			}
		}
	}
	return leaks
}

// VerifyLogs fails the test when a line of the webhook's log holds a secret the test used, or is
// not a JSON object with a level and a message (the production logger writes nothing else).
func (e *Env) VerifyLogs(t testing.TB) {
	t.Helper()
	log := e.Logs.String()
	if log == "" {
		t.Errorf("the webhook logged nothing: the log scan would prove nothing")
	}
	n := 0
	for line := range strings.Lines(log) {
		n++
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("webhook log line %d is not JSON (%v): %.300s", n, err, line)
			continue
		}
		if _, ok := entry["level"]; !ok {
			t.Errorf("webhook log line %d has no level: %.300s", n, line)
		}
		if _, ok := entry["msg"]; !ok {
			t.Errorf("webhook log line %d has no msg: %.300s", n, line)
		}
	}
	for _, l := range e.Secrets.Find(log) {
		t.Errorf("webhook log line %d holds a secret (%s): the log must never carry credentials:\n%.1000s", l.Line, l.What, l.Text)
	}
}
