package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// profile loads the memory-store webhook with each of its scenarios in turn and saves a CPU profile
// taken during the load, and the allocation profiles before and after it (compare them with
// go tool pprof -sample_index=alloc_space -base allocs-N-before.pprof allocs-N-after.pprof).
func profile(o options, pprofAddr string, scenarios []*scenario, memory *system, measure func(*scenario, *system, time.Duration) (result, error)) error {
	if err := os.MkdirAll(o.profile, 0o755); err != nil {
		return err
	}
	get := func(path, file string) error {
		resp, err := http.Get("http://" + pprofAddr + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", path, resp.Status)
		}
		f, err := os.Create(filepath.Join(o.profile, file))
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(f, resp.Body)
		return err
	}
	for i, s := range scenarios {
		if s.webhook != memory {
			continue
		}
		if _, err := measure(s, memory, o.duration/4); err != nil { // warm-up
			return err
		}
		if err := get("/debug/pprof/allocs", fmt.Sprintf("allocs-%d-before.pprof", i)); err != nil {
			return err
		}
		done := make(chan error, 1)
		seconds := int(o.duration.Seconds())
		go func() {
			done <- get(fmt.Sprintf("/debug/pprof/profile?seconds=%d", seconds), fmt.Sprintf("cpu-%d.pprof", i))
		}()
		res, err := measure(s, memory, o.duration+time.Second)
		if err != nil {
			return err
		}
		if err := <-done; err != nil {
			return err
		}
		if err := get("/debug/pprof/allocs", fmt.Sprintf("allocs-%d-after.pprof", i)); err != nil {
			return err
		}
		fmt.Printf("  %d: %-48s %8.0f/s  -> %s/cpu-%d.pprof\n", i, strings.ReplaceAll(s.name, "`", ""), res.rate, o.profile, i)
	}
	return nil
}
