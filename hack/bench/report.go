package main

import (
	_ "embed"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// findings is the hand-written part of the report: what the profiles showed. It lives in
// hack/bench/findings.md and is kept current by whoever changes the check path.
//
//go:embed findings.md
var findings string

type report struct {
	began     time.Time
	took      time.Duration
	opts      options
	scenarios []*scenario
	noop      []latency
	webhook   []latency
	fractions []float64
	maxRate   float64
	goBench   []goBench
}

// target is one line of the targets table.
type target struct {
	what, want, got string
	met             bool
	measured        bool
}

func (r *report) targetList() []target {
	var out []target
	for _, s := range r.scenarios {
		out = append(out, target{what: s.name + ", throughput / no-op", want: fmt.Sprintf(">= %.2f", s.min),
			got: fmt.Sprintf("%.2f", s.ratio), met: s.ratio >= s.min, measured: true})
	}
	if half := r.at(0.5); half >= 0 {
		n, w := r.noop[half], r.webhook[half]
		ratio := float64(w.p99) / float64(n.p99)
		out = append(out, target{what: fmt.Sprintf("p99 at %.0f/s (half the no-op's maximum) / no-op's p99", w.rate), want: "<= 2.0",
			got: fmt.Sprintf("%.2f (%s vs %s)", ratio, w.p99.Round(time.Microsecond), n.p99.Round(time.Microsecond)), met: ratio <= 2, measured: true})
	}
	metric := func(what, bench, unit, want string, limit float64, scale float64, format string) {
		t := target{what: what, want: want}
		if b, ok := find(r.goBench, bench); ok {
			if v, ok := b.metrics[unit]; ok {
				t.measured = true
				t.got = fmt.Sprintf(format, v*scale)
				t.met = v*scale <= limit
			}
		}
		out = append(out, t)
	}
	metric("One JWT check, cache hit (BenchmarkCheckJWTCached)", "BenchmarkCheckJWTCached", "ns/op", "<= 2 us", 2, 1e-3, "%.2f us")
	metric("... its allocations", "BenchmarkCheckJWTCached", "allocs/op", "<= 10", 10, 1, "%.0f")
	metric("One session check, cache hit (BenchmarkCheckSessionCached)", "BenchmarkCheckSessionCached", "ns/op", "<= 2 us", 2, 1e-3, "%.2f us")
	metric("100k cached sessions + 100k cached tokens, heap (BenchmarkCacheMemory)", "BenchmarkCacheMemory", "MiB-heap", "<= 128 MiB", 128, 1, "%.1f MiB")
	metric("Revocation reaching a second replica, p99 (BenchmarkRevocationReachesAnotherReplica)", "BenchmarkRevocationReachesAnotherReplica", "p99-ms", "<= 50 ms", 50, 1, "%.2f ms")
	metric("Policy edit enforced by the in-cluster webhook, p99 (BenchmarkPolicyEditEnforced)", "BenchmarkPolicyEditEnforced", "p99-ms", "<= 1000 ms", 1000, 1, "%.0f ms")
	metric("1000 AuthPolicies all Ready (BenchmarkThousandPoliciesReady)", "BenchmarkThousandPoliciesReady", "s-all-ready", "< 60 s", 60, 1, "%.1f s")
	return out
}

// at returns the index of fraction f in the latency curves, or -1.
func (r *report) at(f float64) int {
	for i, x := range r.fractions {
		if x == f && i < len(r.noop) && i < len(r.webhook) {
			return i
		}
	}
	return -1
}

// targets renders the targets as a plain-text table for the terminal.
func (r *report) targets() string {
	var b strings.Builder
	b.WriteString("Targets\n")
	for _, t := range r.targetList() {
		fmt.Fprintf(&b, "  %-4s %-92s %-10s %s\n", verdict(t), strings.ReplaceAll(t.what, "`", ""), t.want, t.got)
	}
	return b.String()
}

func verdict(t target) string {
	switch {
	case !t.measured:
		return "n/a"
	case t.met:
		return "ok"
	default:
		return "MISS"
	}
}

func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Benchmarks\n\n")
	p("Written by `make bench` on %s (it took %s). Do not edit: change `hack/bench` and run it again.\n\n",
		r.began.UTC().Format("2006-01-02 15:04 MST"), r.took.Round(time.Second))
	p("**Machine:** %s. The load generator runs on the same machine and shares its cores, as in the\n", machine())
	p("figures of the peers authgate is compared with. Such machines are shared and noisy, so every\n")
	p("figure that matters is a ratio to a no-op server measured in the same run.\n\n")
	p("## Targets\n\n| | target | want | measured |\n|---|---|---|---|\n")
	for _, t := range r.targetList() {
		got := t.got
		if !t.measured {
			got = "not run"
		}
		p("| %s | %s | %s | %s |\n", map[string]string{"ok": "met", "MISS": "**missed**", "n/a": ""}[verdict(t)], t.what, t.want, got)
	}
	p("\n## Throughput\n\n")
	p("Each scenario alternates %d rounds of %s of closed-loop load (%d keep-alive HTTP/1.1 connections, or %d\n",
		r.opts.rounds, r.opts.duration, r.opts.conns, r.opts.conns)
	p("concurrent gRPC callers over 4 HTTP/2 connections) on the no-op baseline and on the webhook, each after a\n")
	p("short warm-up that fills caches; the ratio is the median of the rounds' ratios. The no-op is\n")
	p("`hack/bench/noop`: a Go `net/http` server with the webhook's server settings answering 200, and a gRPC\n")
	p("ext_authz server allowing every `Check`. Every check the webhook answered was an allow (a run with any\n")
	p("other answer stops the benchmark).\n\n")
	p("| scenario | no-op, checks/s | authgate, checks/s | ratio | target |\n|---|---|---|---|---|\n")
	for _, s := range r.scenarios {
		p("| %s | %.0f | %.0f | %.2f | >= %.2f |\n", s.name, s.base, s.got, s.ratio, s.min)
	}
	p("\nThe policy has a JWT rule on `/api/` and a Session rule elsewhere, and three identity headers, all\n")
	p("of which the webhook sets on each allow. JWT checks use ES256 tokens issued with the policy's own key;\n")
	p("\"10k tokens in turn\" sends 10,000 different ones round-robin, so the verified-token cache holds\n")
	p("them all. Session checks use a session from a real login.\n\n")
	p("## Latency\n\n")
	p("The one-token JWT check at fixed rates, fractions of the no-op's maximum of %.0f/s above, offered\n", r.maxRate)
	p("evenly over %d keep-alive connections. Each latency is measured from when the request was due, not\n", r.opts.conns)
	p("from when a connection was free to send it, so queueing counts and a slow server cannot hide by\n")
	p("slowing the load down. The generator is the throughput runs' lean one, on the same machine. At\n")
	p("the lowest rates its own timer wake-ups (a fraction of a millisecond) dominate the p50 of both.\n\n")
	p("| offered | no-op p50 | p90 | p99 | authgate p50 | p90 | p99 |\n|---|---|---|---|---|---|---|\n")
	for i := range r.noop {
		if i >= len(r.webhook) {
			break
		}
		n, w := r.noop[i], r.webhook[i]
		p("| %.0f/s (%.0f%%) | %s | %s | %s | %s | %s | %s |\n", n.rate, 100*r.fractions[i], ms(n.p50), ms(n.p90), ms(n.p99), ms(w.p50), ms(w.p90), ms(w.p99))
	}
	p("\n![p50 and p99 latency against offered load](benchmarks-latency.svg)\n\n")
	if len(r.goBench) > 0 {
		p("## Go benchmarks\n\n")
		p("`go test -bench` on the same machine in the same run: the hot paths for a second each, the\n")
		p("benchmarks that start real servers once.\n\n")
		p("| package | benchmark | figures |\n|---|---|---|\n")
		for _, g := range r.goBench {
			p("| `%s` | %s | %s |\n", g.pkg, strings.TrimPrefix(g.name, "Benchmark"), g.summary())
		}
		p("\n")
	}
	p("%s", findings)
	return b.String()
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// svg draws p50 and p99 latency against offered load for both systems, latency on a log scale: past
// saturation it grows by orders of magnitude, and a linear axis would flatten everything before.
func (r *report) svg() string {
	const w, h, left, right, top, bottom = 720.0, 400.0, 70.0, 40.0, 30.0, 50.0
	maxX, lo, hi := 1.0, math.Inf(1), 0.0
	for _, curve := range [][]latency{r.noop, r.webhook} {
		for _, l := range curve {
			maxX = math.Max(maxX, l.rate)
			lo = math.Min(lo, float64(l.p50)/1e6)
			hi = math.Max(hi, float64(l.p99)/1e6)
		}
	}
	if math.IsInf(lo, 1) || lo <= 0 {
		lo = 0.01
	}
	hi = math.Max(hi, lo*10)
	loExp, hiExp := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	x := func(v float64) float64 { return left + (w-left-right)*v/maxX }
	y := func(ms float64) float64 {
		return h - bottom - (h-top-bottom)*(math.Log10(math.Max(ms, 1e-9))-loExp)/(hiExp-loExp)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="18" font-size="14">Latency against offered load: JWT check on /check/nginx (log scale)</text>`+"\n", left)
	for e := loExp; e <= hiExp; e++ {
		v := math.Pow(10, e)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="end">%s ms</text>`+"\n",
			left, y(v), w-right, y(v), left-6, y(v)+4, strconvG(v))
	}
	for i := 0; i <= 4; i++ {
		v := maxX * float64(i) / 4
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%.0f/s</text>`+"\n", x(v), h-bottom+18, v)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">offered checks per second</text>`+"\n", (left+w-right)/2, h-10)
	series := []struct {
		name  string
		curve []latency
		color string
	}{{"no-op", r.noop, "#888"}, {"authgate", r.webhook, "#1f6feb"}}
	for i, s := range series {
		for _, q := range []struct {
			get  func(latency) time.Duration
			dash string
		}{{func(l latency) time.Duration { return l.p99 }, ""}, {func(l latency) time.Duration { return l.p50 }, ` stroke-dasharray="5,4"`}} {
			var pts []string
			for _, l := range s.curve {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(l.rate), y(float64(q.get(l))/1e6)))
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", s.color, q.dash, strings.Join(pts, " "))
		}
		ly := top + 16 + float64(i)*16
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/><text x="%.1f" y="%.1f">%s p99 (solid), p50 (dashed)</text>`+"\n",
			left+10, ly, left+34, ly, s.color, left+40, ly+4, s.name)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// strconvG formats a power of ten for an axis label: 0.01, 0.1, 1, 10, 100.
func strconvG(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
