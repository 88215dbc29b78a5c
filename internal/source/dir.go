package source

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/signingkey"
)

// Loader reads and compiles a folder of manifests. In standalone mode there is no operator to
// create a missing signing-key Secret, so the Loader makes the key itself, keeps it for as long as
// the process runs (tokens survive reloads), and reports a warning: such keys die with the process
// and are not shared with other replicas.
type Loader struct {
	Dir              string
	DefaultNamespace string
	// generated holds the keys made for missing Secrets, by "<namespace>/<name>/<algorithm>".
	generated map[string]map[string][]byte
}

// Load reads and compiles every policy. Any problem fails the whole load, with errors that name the
// file, the policy and the field. Warnings say which signing keys were generated.
func (l *Loader) Load() (snap *policy.Snapshot, warnings []string, err error) {
	m, err := ReadDir(l.Dir, l.DefaultNamespace)
	if err != nil {
		return nil, nil, err
	}
	var errs []error
	compiled := make([]*policy.Policy, 0, len(m.Policies))
	for _, p := range m.Policies {
		secrets := m.SecretData(p.Namespace)
		if j := p.Spec.JWT; j != nil && j.SigningKeySecretRef != nil {
			if _, ok := secrets[j.SigningKeySecretRef.Name]; !ok {
				data, err := l.generatedKey(p.Namespace, j.SigningKeySecretRef.Name, j.Algorithm)
				if err != nil {
					return nil, nil, err
				}
				secrets[j.SigningKeySecretRef.Name] = data
				warnings = append(warnings, fmt.Sprintf("%s: AuthPolicy %s/%s: Secret %s does not exist; signing with a key generated for this process only (tokens die with it and other replicas cannot verify them)",
					m.File(p), p.Namespace, p.Name, j.SigningKeySecretRef.Name))
			}
		}
		c, err := policy.Compile(p, secrets)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: AuthPolicy %s/%s: %w", m.File(p), p.Namespace, p.Name, err))
			continue
		}
		compiled = append(compiled, c)
	}
	claims := make([]*policy.Claims, len(compiled))
	for i, c := range compiled {
		claims[i] = c.Claims()
	}
	conflicts := policy.Conflicts(claims)
	for _, p := range m.Policies {
		if conflict, ok := conflicts[policy.Ref{Namespace: p.Namespace, Name: p.Name}]; ok {
			errs = append(errs, fmt.Errorf("%s: AuthPolicy %s/%s: conflicted: %s", m.File(p), p.Namespace, p.Name, conflict))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, warnings, err
	}
	return policy.NewSnapshot(compiled), warnings, nil
}

func (l *Loader) generatedKey(namespace, secret string, alg authgatev1.Algorithm) (map[string][]byte, error) {
	if alg == "" {
		alg = authgatev1.DefaultAlgorithm
	}
	key := namespace + "/" + secret + "/" + string(alg)
	if data, ok := l.generated[key]; ok {
		return data, nil
	}
	_, data, err := signingkey.Generate(alg, time.Now())
	if err != nil {
		return nil, err
	}
	if l.generated == nil {
		l.generated = map[string]map[string][]byte{}
	}
	l.generated[key] = data
	return data, nil
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
	loader := &Loader{Dir: dir, DefaultNamespace: defaultNamespace}
	snap, warnings, err := loader.Load()
	if err != nil {
		watcher.Close()
		return err
	}
	for _, w := range warnings {
		log.Info("Warning: "+w, "dir", dir)
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
				snap, warnings, err := loader.Load()
				for _, w := range warnings {
					log.Info("Warning: "+w, "dir", dir)
				}
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
