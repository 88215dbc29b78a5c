package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// result is what one closed-loop run measured.
type result struct {
	requests int64
	rate     float64 // requests per second
	bad      int64   // answers that were not an allow
	firstBad string
}

// httpLoad drives an HTTP/1.1 server as hard as it goes: conns connections with keep-alive, each
// sending its next request as soon as the answer to the last has arrived, for d. Requests are
// written from prepared bytes and answers parsed just enough to find their end, so that the load
// generator, which shares the machine's cores with the server, costs as little as it can.
func httpLoad(addr string, reqs [][]byte, conns int, d time.Duration) (result, error) {
	return httpLoadN(addr, reqs, conns, d, 0)
}

// httpLoadN is httpLoad that also stops after budget requests in all (0: no budget).
func httpLoadN(addr string, reqs [][]byte, conns int, d time.Duration, budget int64) (result, error) {
	var sent atomic.Int64
	res, err := closedLoop(conns, d, func(w int, deadline time.Time, t *tally) error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		r := bufio.NewReaderSize(c, 16<<10)
		for i := w; time.Now().Before(deadline); i += conns {
			if budget > 0 && sent.Add(1) > budget {
				return nil
			}
			if _, err := c.Write(reqs[i%len(reqs)]); err != nil {
				return err
			}
			code, err := readResponse(r)
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				t.refused(fmt.Sprintf("status %d", code))
			}
			t.n++
		}
		return nil
	})
	if err != nil {
		return result{}, fmt.Errorf("load on %s: %w", addr, err)
	}
	return res, nil
}

// tally is what one worker of a closed loop counted.
type tally struct {
	n, bad   int64
	firstBad string
}

func (t *tally) refused(why string) {
	if t.bad == 0 {
		t.firstBad = why
	}
	t.bad++
}

// closedLoop runs workers until d has passed (or they return) and adds up their tallies.
func closedLoop(workers int, d time.Duration, work func(w int, deadline time.Time, t *tally) error) (result, error) {
	tallies := make([]tally, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range workers {
		wg.Go(func() { errs[w] = work(w, deadline, &tallies[w]) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return result{}, err
	}
	var res result
	for _, t := range tallies {
		res.requests += t.n
		res.bad += t.bad
		if res.firstBad == "" {
			res.firstBad = t.firstBad
		}
	}
	res.rate = float64(res.requests) / elapsed.Seconds()
	return res, nil
}

// readResponse reads one HTTP/1.1 response and returns its status code. Bodies must have a
// Content-Length, which both servers always send for their small answers.
func readResponse(r *bufio.Reader) (int, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("not an HTTP/1.1 status line: %q", line)
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("status line %q: %w", line, err)
	}
	length := -1
	for {
		h, err := r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(h) <= 2 {
			break
		}
		if len(h) > 16 && bytes.EqualFold(h[:15], []byte("Content-Length:")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(h[15:]))); err != nil {
				return 0, fmt.Errorf("header %q: %w", h, err)
			}
		}
		if len(h) > 18 && bytes.EqualFold(h[:18], []byte("Transfer-Encoding:")) {
			return 0, errors.New("chunked answers are not expected from a check")
		}
	}
	if length < 0 {
		return 0, errors.New("answer without Content-Length")
	}
	if _, err := r.Discard(length); err != nil {
		return 0, err
	}
	return code, nil
}

// grpcLoad drives an ext_authz gRPC server as hard as it goes: streams concurrent callers over
// conns HTTP/2 connections, each calling Check as soon as its last call returned, for d.
func grpcLoad(addr string, reqs []*authv3.CheckRequest, conns, streams int, d time.Duration) (result, error) {
	clients := make([]authv3.AuthorizationClient, conns)
	for i := range clients {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return result{}, err
		}
		defer cc.Close()
		clients[i] = authv3.NewAuthorizationClient(cc)
	}
	res, err := closedLoop(streams, d, func(w int, deadline time.Time, t *tally) error {
		c := clients[w%conns]
		for i := w; time.Now().Before(deadline); i += streams {
			resp, err := c.Check(context.Background(), reqs[i%len(reqs)])
			if err != nil {
				return err
			}
			if code := resp.GetStatus().GetCode(); code != 0 {
				t.refused(fmt.Sprintf("gRPC status %d: %s", code, resp.GetDeniedResponse().GetBody()))
			}
			t.n++
		}
		return nil
	})
	if err != nil {
		return result{}, fmt.Errorf("gRPC load on %s: %w", addr, err)
	}
	return res, nil
}

// latency is what a fixed-rate run measured.
type latency struct {
	rate          float64
	p50, p90, p99 time.Duration
}

// fixedRate offers rate requests per second for d, evenly spaced, over conns keep-alive
// connections, and measures each request's latency from the moment it was due, not from when a
// connection was free to send it: when answers slow down, requests queue and their waiting counts,
// so a slow server cannot hide by slowing the load down (what a closed loop would let it do). The
// generator is as lean as httpLoad's, so that at the same offered rate both systems share the
// machine with the same load generator.
func fixedRate(addr string, reqs [][]byte, conns, rate int, d time.Duration) (latency, error) {
	total := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	samples := make([]time.Duration, total)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	start := time.Now().Add(10 * time.Millisecond)
	for range conns {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			r := bufio.NewReaderSize(c, 16<<10)
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				due := start.Add(time.Duration(i) * interval)
				if wait := time.Until(due); wait > 0 {
					time.Sleep(wait)
				}
				if _, err := c.Write(reqs[i%len(reqs)]); err != nil {
					errs <- err
					return
				}
				code, err := readResponse(r)
				if err != nil {
					errs <- err
					return
				}
				if code != http.StatusOK {
					errs <- fmt.Errorf("status %d at %d/s", code, rate)
					return
				}
				samples[i] = time.Since(due)
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return latency{}, fmt.Errorf("fixed-rate load on %s: %w", addr, err)
	}
	slices.Sort(samples)
	q := func(f float64) time.Duration { return samples[min(len(samples)-1, int(f*float64(len(samples))))] }
	return latency{rate: float64(rate), p50: q(0.50), p90: q(0.90), p99: q(0.99)}, nil
}

// httpRequest renders one check request as nginx sends it.
func httpRequest(host, path string, header http.Header) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, host)
	_ = header.Write(&b)
	b.WriteString("\r\n")
	return b.Bytes()
}

// drain reads a body to the end, so that a keep-alive connection can be used again.
func drain(r io.Reader) { _, _ = io.Copy(io.Discard, r) }
