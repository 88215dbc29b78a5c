// Package audittest captures log entries in tests, so that they can assert what was logged (audit
// events and their fields) and what was not (secrets).
package audittest

import (
	"encoding/json"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
)

// Log holds the entries written to its logger, each as the JSON object funcr renders: "logger",
// "msg", "level" (or "error" for errors) and the entry's key/value pairs.
type Log struct {
	mu    sync.Mutex
	lines []string
}

// New returns a Log and the root logger that writes to it, verbosity 1 included.
func New() (*Log, logr.Logger) {
	l := &Log{}
	return l, funcr.NewJSON(func(obj string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, obj)
	}, funcr.Options{Verbosity: 1})
}

// Text returns every entry, one per line.
func (l *Log) Text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// Entries returns every entry, decoded.
func (l *Log) Entries() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]map[string]any, 0, len(l.lines))
	for _, line := range l.lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			m = map[string]any{"unparsable": line}
		}
		out = append(out, m)
	}
	return out
}

// Audit returns the entries marked "audit"=true whose "event" is event (any event when empty).
func (l *Log) Audit(event string) []map[string]any {
	var out []map[string]any
	for _, e := range l.Entries() {
		if e["audit"] == true && (event == "" || e["event"] == event) {
			out = append(out, e)
		}
	}
	return out
}
