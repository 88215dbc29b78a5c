package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBenchRuns runs make bench's driver for a moment on every scenario, without the Go benchmarks,
// so that a change that breaks it (a check that is no longer an allow stops it) fails here rather
// than when someone measures. It asserts nothing about speed.
func TestBenchRuns(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join("..", "..")
	for name, pkg := range map[string]string{"webhook": "./cmd/webhook", "noop": "./hack/bench/noop"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", pkg, err, out)
		}
	}
	o := options{
		webhook: filepath.Join(dir, "webhook"), noop: filepath.Join(dir, "noop"),
		out: filepath.Join(dir, "benchmarks.md"), chart: filepath.Join(dir, "latency.svg"),
		duration: 300 * time.Millisecond, rounds: 1, conns: 4,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := run(ctx, o); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(o.out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Targets", "JWT ES256, 10k tokens in turn", "gRPC `Check`, Session", "## Latency", "## Profile findings"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	svg, err := os.ReadFile(o.chart)
	if err != nil || !strings.HasPrefix(string(svg), "<svg") || strings.Count(string(svg), "<polyline") != 4 {
		t.Errorf("the chart is not four curves: %v\n%s", err, svg)
	}
}

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
pkg: github.com/authgate/authgate/internal/authz
BenchmarkCheckJWTCached-2   	 2100115	       582.8 ns/op	     272 B/op	       3 allocs/op
BenchmarkCacheMemory-2      	       1	 912345678 ns/op	        57.25 MiB-heap	       300 B/session
pkg: github.com/authgate/authgate/internal/session
BenchmarkCheck-2   	 3410180	       354.3 ns/op	     144 B/op	       3 allocs/op
PASS
`
	got := parseGoBench(out)
	if len(got) != 3 {
		t.Fatalf("parsed %d benchmarks, want 3: %+v", len(got), got)
	}
	b, ok := find(got, "BenchmarkCheckJWTCached")
	if !ok || b.pkg != "internal/authz" || b.metrics["ns/op"] != 582.8 || b.metrics["allocs/op"] != 3 {
		t.Errorf("JWT benchmark %+v", b)
	}
	if m, _ := find(got, "BenchmarkCacheMemory"); m.metrics["MiB-heap"] != 57.25 || m.metrics["B/session"] != 300 {
		t.Errorf("memory benchmark %+v", m)
	}
	if s, _ := find(got, "BenchmarkCheck"); s.pkg != "internal/session" {
		t.Errorf("session benchmark %+v", s)
	}
}

func TestReadResponse(t *testing.T) {
	tests := map[string]struct {
		in      string
		code    int
		wantErr bool
	}{
		"allow":        {in: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-User-Id: a\r\n\r\n", code: 200},
		"with a body":  {in: "HTTP/1.1 401 Unauthorized\r\ncontent-length: 5\r\n\r\nhello", code: 401},
		"chunked":      {in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", wantErr: true},
		"no length":    {in: "HTTP/1.1 200 OK\r\n\r\n", wantErr: true},
		"not HTTP/1.1": {in: "HTTP/2 200\r\n\r\n", wantErr: true},
		"short body":   {in: "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, err := readResponse(bufio.NewReader(strings.NewReader(tc.in)))
			if (err != nil) != tc.wantErr || (!tc.wantErr && code != tc.code) {
				t.Errorf("readResponse = %d, %v", code, err)
			}
		})
	}
}
