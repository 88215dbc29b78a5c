// Command bench is `make bench`: it measures authgate's check path against a no-op baseline in the
// same run, on the same machine, and writes docs/benchmarks.md.
//
// It starts the webhook (standalone, memory store and Redis store), the no-op servers of
// hack/bench/noop and a redis-server, then for each scenario alternates rounds of closed-loop load
// on the baseline and on the webhook and reports the median ratio of their throughputs; then
// latencies at fixed rates (vegeta); then the Go benchmarks of the check path, the stores, the
// caches' memory, revocation and policy-edit latency, and the 1000-policy operator benchmark. The
// machines it runs on are shared and noisy: only ratios within one run mean anything.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

type options struct {
	webhook, noop string
	out, chart    string
	duration      time.Duration
	rounds        int
	conns         int
	goBench       bool
	profile       string
}

func main() {
	var o options
	flag.StringVar(&o.webhook, "webhook", "bin/webhook", "the webhook binary")
	flag.StringVar(&o.noop, "noop", "bin/noop", "the no-op baseline binary (hack/bench/noop)")
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "the report to write (empty: print only)")
	flag.StringVar(&o.chart, "chart", "docs/benchmarks-latency.svg", "the latency chart to write")
	flag.DurationVar(&o.duration, "duration", 4*time.Second, "length of each measured run")
	flag.IntVar(&o.rounds, "rounds", 3, "alternating rounds per scenario (the median ratio is reported)")
	flag.IntVar(&o.conns, "connections", 32, "concurrent connections (HTTP) and callers (gRPC)")
	flag.BoolVar(&o.goBench, "go-bench", true, "also run the Go benchmarks")
	flag.StringVar(&o.profile, "profile", "", "only profile: write CPU and allocation profiles of the webhook under each scenario into this folder")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// system is one server under load: the baseline or a webhook.
type system struct {
	name     string
	httpAddr string
	grpcAddr string
}

// scenario is one kind of check, sent the same way to the baseline and to a webhook.
type scenario struct {
	name    string
	min     float64
	webhook *system
	http    [][]byte
	grpc    []*authv3.CheckRequest
	ratio   float64
	base    float64 // median baseline rate
	got     float64 // median webhook rate
}

func run(ctx context.Context, o options) error {
	began := time.Now()
	work, err := os.MkdirTemp("", "authgate-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	fix, err := writeFixture(work)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Servers.
	redisAddr, err := freeAddr()
	if err != nil {
		return err
	}
	_, redisPort, _ := strings.Cut(redisAddr, ":")
	redis, err := start(ctx, work, "redis-server", "redis-server", "--port", redisPort, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", work)
	if err != nil {
		return fmt.Errorf("%w (install Debian's redis-server: make deps)", err)
	}
	defer redis.stop()
	if err := waitTCP(redisAddr); err != nil {
		return err
	}
	var procs []*process
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	newSystem := func(name string, args ...string) (*system, error) {
		h, err := freeAddr()
		if err != nil {
			return nil, err
		}
		g, err := freeAddr()
		if err != nil {
			return nil, err
		}
		p, err := start(ctx, work, name, append(args, "--http-addr", h, "--grpc-addr", g)...)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
		health := "http://" + h + "/readyz"
		if name == "no-op" {
			health = "http://" + h + "/"
		}
		if err := waitHTTP(p, health); err != nil {
			return nil, err
		}
		return &system{name: name, httpAddr: h, grpcAddr: g}, waitTCP(g)
	}
	noop, err := newSystem("no-op", o.noop)
	if err != nil {
		return err
	}
	webhookArgs := []string{o.webhook, "--manifests", work, "--metrics-addr", ""}
	pprofAddr, err := freeAddr()
	if err != nil {
		return err
	}
	memory, err := newSystem("authgate (memory store)", append(webhookArgs, "--store", "memory", "--pprof-addr", pprofAddr)...)
	if err != nil {
		return err
	}
	onRedis, err := newSystem("authgate (Redis store)", append(webhookArgs, "--store", "redis", "--redis-url", "redis://"+redisAddr)...)
	if err != nil {
		return err
	}

	// What is sent.
	tokens, err := fix.tokens(10_000)
	if err != nil {
		return err
	}
	memCookie, err := fix.login("http://" + memory.httpAddr)
	if err != nil {
		return err
	}
	redisCookie, err := fix.login("http://" + onRedis.httpAddr)
	if err != nil {
		return err
	}
	nginx := func(path string, h http.Header) []byte {
		h.Set("X-Original-URL", "https://"+benchHost+path)
		h.Set("X-Original-Method", "GET")
		return httpRequest("127.0.0.1", "/check/nginx?policy="+benchPolicy, h)
	}
	bearer := func(t string) []byte { return nginx("/api/orders", http.Header{"Authorization": {"Bearer " + t}}) }
	cookie := func(c string) []byte { return nginx("/orders", http.Header{"Cookie": {c}}) }
	var rotating [][]byte
	for _, t := range tokens {
		rotating = append(rotating, bearer(t))
	}
	check := func(path, header, value string) *authv3.CheckRequest {
		return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Scheme: "https", Host: benchHost, Path: path, Protocol: "HTTP/1.1",
				Headers: map[string]string{header: value},
			}},
			Source:            &authv3.AttributeContext_Peer{Address: &corev3.Address{}},
			ContextExtensions: map[string]string{"policy": benchPolicy},
		}}
	}
	scenarios := []*scenario{
		{name: "`/check/nginx`, JWT ES256, one token", min: 0.60, webhook: memory, http: [][]byte{bearer(tokens[0])}},
		{name: "`/check/nginx`, JWT ES256, 10k tokens in turn", min: 0.60, webhook: memory, http: rotating},
		{name: "`/check/nginx`, Session, memory store", min: 0.70, webhook: memory, http: [][]byte{cookie(memCookie)}},
		{name: "`/check/nginx`, Session, Redis store", min: 0.60, webhook: onRedis, http: [][]byte{cookie(redisCookie)}},
		{name: "gRPC `Check`, JWT ES256", min: 0.50, webhook: memory, grpc: []*authv3.CheckRequest{check("/api/orders", "authorization", "Bearer "+tokens[0])}},
		{name: "gRPC `Check`, Session, memory store", min: 0.50, webhook: memory, grpc: []*authv3.CheckRequest{check("/orders", "cookie", memCookie)}},
	}

	measure := func(s *scenario, sys *system, d time.Duration) (result, error) {
		if s.http != nil {
			return httpLoad(sys.httpAddr, s.http, o.conns, d)
		}
		return grpcLoad(sys.grpcAddr, s.grpc, 4, o.conns, d)
	}
	if o.profile != "" {
		return profile(o, pprofAddr, scenarios, memory, measure)
	}
	fmt.Printf("Throughput: %d rounds of %s per system and scenario, %d connections\n", o.rounds, o.duration, o.conns)
	for _, s := range scenarios {
		var base, got, ratios []float64
		for round := range o.rounds {
			for _, sys := range []*system{noop, s.webhook} {
				// A warm-up, not counted, fills caches and connection pools: a short run, and for
				// the HTTP scenarios that rotate requests, each request once.
				if _, err := measure(s, sys, o.duration/8); err != nil {
					return err
				}
				if len(s.http) > 1 {
					if _, err := httpLoadN(sys.httpAddr, s.http, o.conns, time.Minute, int64(len(s.http))); err != nil {
						return err
					}
				}
				res, err := measure(s, sys, o.duration)
				if err != nil {
					return err
				}
				if res.bad > 0 {
					return fmt.Errorf("%s on %s: %d of %d checks were not allowed (%s); see the logs in %s", s.name, sys.name, res.bad, res.requests, res.firstBad, work)
				}
				if sys == noop {
					base = append(base, res.rate)
				} else {
					got = append(got, res.rate)
					ratios = append(ratios, res.rate/base[round])
				}
			}
		}
		s.ratio, s.base, s.got = median(ratios), median(base), median(got)
		fmt.Printf("  %-48s no-op %8.0f/s  authgate %8.0f/s  ratio %.2f (target >= %.2f)\n", strings.ReplaceAll(s.name, "`", ""), s.base, s.got, s.ratio, s.min)
	}

	// Latency at fixed rates, for the one-token JWT check.
	maxRate := scenarios[0].base
	fractions := []float64{0.1, 0.25, 0.5, 0.75}
	curves := map[string][]latency{}
	fmt.Printf("Latency at fixed rates (fractions of the no-op's %.0f/s)\n", maxRate)
	for _, f := range fractions {
		for _, sys := range []*system{noop, memory} {
			rate := int(f * maxRate)
			d := o.duration
			if f == 0.5 {
				d = 2 * o.duration // the figure the target is about: twice as many samples
			}
			l, err := fixedRate(sys.httpAddr, scenarios[0].http, o.conns, rate, d)
			if err != nil {
				return fmt.Errorf("%s: %w", sys.name, err)
			}
			curves[sys.name] = append(curves[sys.name], l)
			fmt.Printf("  %-24s %7d/s  p50 %-9s p90 %-9s p99 %s\n", sys.name, rate, l.p50.Round(time.Microsecond), l.p90.Round(time.Microsecond), l.p99.Round(time.Microsecond))
		}
	}
	for _, p := range procs {
		p.stop()
	}
	procs = nil
	redis.stop()

	var goResults []goBench
	if o.goBench {
		fmt.Println("Go benchmarks")
		if goResults, err = runGoBenchmarks(ctx); err != nil {
			return err
		}
	}
	r := &report{
		began: began, took: time.Since(began), opts: o, scenarios: scenarios,
		noop: curves["no-op"], webhook: curves[memory.name], fractions: fractions, maxRate: maxRate, goBench: goResults,
	}
	fmt.Println()
	fmt.Print(r.targets())
	if o.chart != "" {
		if err := os.WriteFile(o.chart, []byte(r.svg()), 0o644); err != nil {
			return err
		}
	}
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(r.markdown()), 0o644); err != nil {
			return err
		}
		fmt.Printf("\nWrote %s and %s in %s\n", o.out, o.chart, time.Since(began).Round(time.Second))
	}
	return nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// machine describes the machine for the report.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel, _ := exec.Command("uname", "-r").Output()
	goVersion, _ := exec.Command("go", "env", "GOVERSION").Output()
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %d GiB", (kb+512*1024)/(1024*1024))
		}
	}
	return fmt.Sprintf("%s, %d cores%s, Linux %s, %s", cpu, numCPU(), mem, strings.TrimSpace(string(kernel)), strings.TrimSpace(string(goVersion)))
}
