package source

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"

	"github.com/authgate/authgate/internal/policy"
)

// LoadDir reads and compiles every policy in a folder of manifests. Any problem fails the whole
// load, with errors that name the file, the policy and the field.
func LoadDir(dir, defaultNamespace string) (*policy.Snapshot, error) {
	m, err := ReadDir(dir, defaultNamespace)
	if err != nil {
		return nil, err
	}
	var errs []error
	compiled := make([]*policy.Policy, 0, len(m.Policies))
	for _, p := range m.Policies {
		c, err := policy.Compile(p, m.SecretData(p.Namespace))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: AuthPolicy %s/%s: %w", m.File(p), p.Namespace, p.Name, err))
			continue
		}
		compiled = append(compiled, c)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return policy.NewSnapshot(compiled), nil
}

// WatchDir loads dir, publishes the snapshot, then reloads whenever a file in it changes until ctx
// ends. The first load must succeed (its error is returned); a later load that fails is logged and
// the last good snapshot stays in force, so a bad edit never takes the gateway down or open.
func WatchDir(ctx context.Context, dir, defaultNamespace string, publish func(*policy.Snapshot), log logr.Logger) error {
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching %s: %w", dir, err)
	}
	// Watch the folder, not the files: editors and Kubernetes volume updates replace files by
	// renaming, which a watch on the file itself would lose.
	if err := watcher.Add(dir); err != nil {
		watcher.Close()
		return fmt.Errorf("watching %s: %w", dir, err)
	}
	snap, err := LoadDir(dir, defaultNamespace)
	if err != nil {
		watcher.Close()
		return err
	}
	publish(snap)
	log.Info("Policies loaded", "dir", dir, "policies", snap.Len())
	go func() {
		defer watcher.Close()
		// Changes come in bursts (write, chmod, rename); reload once the burst is over.
		const settle = 100 * time.Millisecond
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case ev, ok := <-watcher.Events:
				if !ok {
					return
				}
				if ext := filepath.Ext(ev.Name); ext == ".yaml" || ext == ".yml" || ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
					timer.Reset(settle)
				}
			case err, ok := <-watcher.Errors:
				if !ok {
					return
				}
				log.Error(err, "Watching the policy folder", "dir", dir)
			case <-timer.C:
				snap, err := LoadDir(dir, defaultNamespace)
				if err != nil {
					log.Error(err, "Policy folder does not load; keeping the last good policies", "dir", dir)
					continue
				}
				publish(snap)
				log.Info("Policies reloaded", "dir", dir, "policies", snap.Len())
			}
		}
	}()
	return nil
}
