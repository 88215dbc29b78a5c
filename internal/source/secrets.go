package source

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/policy"
)

// SecretReader reads the data of the Secrets that policies reference. It learns which Secrets
// exist, and their resourceVersions, from a metadata-only cache, and reads a Secret's data with a
// direct GET only when its resourceVersion changed. So neither the webhook nor the operator holds
// the data of a Secret that no policy references (a metadata informer sees every Secret's name,
// never its contents), and a referenced Secret costs one GET per change.
type SecretReader struct {
	meta client.Reader
	api  client.Reader

	mu   sync.Mutex
	data map[types.NamespacedName]secretData
}

type secretData struct {
	resourceVersion string
	data            map[string][]byte
}

// NewSecretReader reads Secret metadata from meta (a cache that holds
// metav1.PartialObjectMetadata for Secrets) and Secret data from api (the API server, uncached).
func NewSecretReader(meta, api client.Reader) *SecretReader {
	return &SecretReader{meta: meta, api: api, data: map[types.NamespacedName]secretData{}}
}

// secretMeta is the metadata-only form of a Secret.
func secretMeta() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return m
}

// Read returns the data of every Secret p references, by name, in p's namespace. A Secret that does
// not exist is absent from the map, which policy.Compile reports as unresolved. The maps returned
// are shared: callers must not modify them.
func (r *SecretReader) Read(ctx context.Context, p *authgatev1.AuthPolicy) (policy.Secrets, error) {
	out := policy.Secrets{}
	for _, name := range p.Spec.SecretNames() {
		nn := types.NamespacedName{Namespace: p.Namespace, Name: name}
		data, ok, err := r.get(ctx, nn)
		if err != nil {
			return nil, err
		}
		if ok {
			out[name] = data
		}
	}
	return out, nil
}

// Metadata returns a Secret's metadata (labels, annotations, owners, resourceVersion) from the
// cache: what the operator needs to tell its own Secrets from a user's without reading their data.
func (r *SecretReader) Metadata(ctx context.Context, nn types.NamespacedName) (*metav1.PartialObjectMetadata, error) {
	meta := secretMeta()
	if err := r.meta.Get(ctx, nn, meta); err != nil {
		return nil, err
	}
	return meta, nil
}

func (r *SecretReader) get(ctx context.Context, nn types.NamespacedName) (map[string][]byte, bool, error) {
	meta, err := r.Metadata(ctx, nn)
	if apierrors.IsNotFound(err) {
		r.forget(nn)
		return nil, false, nil
	} else if err != nil {
		return nil, false, fmt.Errorf("reading Secret %s: %w", nn, err)
	}
	r.mu.Lock()
	cached, ok := r.data[nn]
	r.mu.Unlock()
	if ok && cached.resourceVersion == meta.ResourceVersion {
		return cached.data, true, nil
	}
	s := &corev1.Secret{}
	if err := r.api.Get(ctx, nn, s); apierrors.IsNotFound(err) {
		// Deleted since the cache saw it: the cache's delete event will follow.
		r.forget(nn)
		return nil, false, nil
	} else if err != nil {
		return nil, false, fmt.Errorf("reading Secret %s: %w", nn, err)
	}
	data := s.Data
	if data == nil {
		data = map[string][]byte{}
	}
	r.mu.Lock()
	r.data[nn] = secretData{resourceVersion: s.ResourceVersion, data: data}
	r.mu.Unlock()
	return data, true, nil
}

func (r *SecretReader) forget(nn types.NamespacedName) {
	r.mu.Lock()
	delete(r.data, nn)
	r.mu.Unlock()
}

// Retain drops the data kept for every Secret for which keep returns false: the webhook calls it
// after each rebuild with the Secrets its policies still reference.
func (r *SecretReader) Retain(keep func(types.NamespacedName) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for nn := range r.data {
		if !keep(nn) {
			delete(r.data, nn)
		}
	}
}

// Cached returns how many Secrets' data the reader holds.
func (r *SecretReader) Cached() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.data)
}
