package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// goBench is one line of `go test -bench` output: a name and its figures by unit.
type goBench struct {
	pkg     string
	name    string
	metrics map[string]float64
	units   []string // in the order printed
}

// goBenchRuns are the Go benchmarks make bench runs: the hot paths for a second each, and the
// benchmarks that set up real servers once.
var goBenchRuns = []struct {
	pkgs  []string
	bench string
	time  string
}{
	{[]string{"./internal/authz/", "./internal/token/", "./internal/session/", "./internal/policy/", "./internal/proxy/", "./internal/proxy/envoygrpc/", "./internal/store/"},
		"^Benchmark(Check|Verify|Issue|Normalize|PathPrefix|Adapters|Memory|Redis)", "1s"},
	{[]string{"./internal/authz/"}, "^BenchmarkCacheMemory$", "1x"},
	{[]string{"./internal/session/"}, "^BenchmarkRevocationReachesAnotherReplica$", "1x"},
	{[]string{"./internal/webhook/"}, "^BenchmarkPolicyEditEnforced$", "1x"},
	{[]string{"./internal/controller/"}, "^BenchmarkThousandPoliciesReady$", "1x"},
}

func runGoBenchmarks(ctx context.Context) ([]goBench, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, fmt.Errorf("KUBEBUILDER_ASSETS is not set: run make bench, which sets it")
	}
	var out []goBench
	for _, r := range goBenchRuns {
		args := append([]string{"test", "-run", "^$", "-bench", r.bench, "-benchmem", "-benchtime", r.time, "-count", "1"}, r.pkgs...)
		cmd := exec.CommandContext(ctx, "go", args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("go %s: %w\n%s%s", strings.Join(args, " "), err, tail(stdout.String(), 3000), tail(stderr.String(), 3000))
		}
		results := parseGoBench(stdout.String())
		for _, b := range results {
			fmt.Printf("  %-44s %s\n", b.name, b.summary())
		}
		out = append(out, results...)
	}
	return out, nil
}

// parseGoBench reads benchmark lines ("BenchmarkX-2  100  123 ns/op  16 B/op ...") and the
// "pkg:" lines that say which package they belong to.
func parseGoBench(s string) []goBench {
	var out []goBench
	pkg := ""
	suffix := "-" + strconv.Itoa(runtime.GOMAXPROCS(0))
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(p, "github.com/authgate/authgate/")
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		b := goBench{pkg: pkg, name: strings.TrimSuffix(f[0], suffix), metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			b.metrics[f[i+1]] = v
			b.units = append(b.units, f[i+1])
		}
		out = append(out, b)
	}
	return out
}

func (b goBench) summary() string {
	parts := make([]string, 0, len(b.units))
	for _, u := range b.units {
		parts = append(parts, formatMetric(b.metrics[u], u))
	}
	return strings.Join(parts, "  ")
}

func formatMetric(v float64, unit string) string {
	switch {
	case unit == "ns/op" && v >= 10_000:
		return fmt.Sprintf("%.1f us/op", v/1000)
	case v == float64(int64(v)):
		return fmt.Sprintf("%d %s", int64(v), unit)
	default:
		return fmt.Sprintf("%.3g %s", v, unit)
	}
}

// find returns the benchmark named name.
func find(results []goBench, name string) (goBench, bool) {
	for _, b := range results {
		if b.name == name {
			return b, true
		}
	}
	return goBench{}, false
}

func numCPU() int { return runtime.NumCPU() }
