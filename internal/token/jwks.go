package token

import (
	"context"
	"crypto"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/policy"
)

// PublicJWKS returns the JSON Web Key Set of every verification key (active, next and retired) of
// every policy that issues tokens with ES256, RS256 or EdDSA, each with kid, alg and use "sig", for
// /.well-known/jwks.json. HS256 secrets are never published. Keys are in kid order.
//
// Kids are expected to be unique. The same key under the same kid in several policies (a shared
// Secret) is published once. When two different keys share a kid, the first one met (policies in
// the order given, keys in KeySet order) is published and the returned error names the clash, along
// with the JSON: pass policies in a stable order (Snapshot.Policies) so the same one wins each time.
func PublicJWKS(policies []*policy.Policy) ([]byte, error) {
	type published struct {
		key   jwk.Key
		pub   crypto.PublicKey
		alg   authgatev1.Algorithm
		owner policy.Ref
	}
	byKid := map[string]published{}
	var errs []error
	for _, p := range policies {
		if p == nil {
			continue
		}
		j := p.JWT()
		if j == nil || !j.Issues() || j.Keys() == nil || j.Algorithm == authgatev1.AlgorithmHS256 {
			continue
		}
		for vk := range j.Keys().Verifiers() {
			pub := vk.Public()
			if vk.Algorithm() == authgatev1.AlgorithmHS256 || pub == nil {
				continue
			}
			if prev, dup := byKid[vk.ID()]; dup {
				if prev.alg != vk.Algorithm() || !samePublicKey(prev.pub, pub) {
					errs = append(errs, fmt.Errorf("kid %q: policies %s and %s have different keys under it; publishing the one of %s", vk.ID(), prev.owner, p.Ref(), prev.owner))
				}
				continue
			}
			key, err := publicJWK(vk.ID(), vk.Algorithm(), pub)
			if err != nil {
				errs = append(errs, fmt.Errorf("policy %s: %w", p.Ref(), err))
				continue
			}
			byKid[vk.ID()] = published{key: key, pub: pub, alg: vk.Algorithm(), owner: p.Ref()}
		}
	}
	kids := make([]string, 0, len(byKid))
	for kid := range byKid {
		kids = append(kids, kid)
	}
	slices.Sort(kids)
	set := jwk.NewSet()
	for _, kid := range kids {
		if err := set.AddKey(byKid[kid].key); err != nil {
			return nil, fmt.Errorf("jwks: key %s: %w", kid, err)
		}
	}
	out, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	return out, errors.Join(errs...)
}

func samePublicKey(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// publicJWK makes the JWK of a public key; only public members are ever set.
func publicJWK(kid string, alg authgatev1.Algorithm, pub crypto.PublicKey) (jwk.Key, error) {
	sigAlg, ok := jwa.LookupSignatureAlgorithm(string(alg))
	if !ok {
		return nil, fmt.Errorf("key %s: unsupported algorithm %s", kid, alg)
	}
	key, err := jwk.Import(pub)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", kid, err)
	}
	if key, err = key.PublicKey(); err != nil {
		return nil, fmt.Errorf("key %s: %w", kid, err)
	}
	for name, value := range map[string]any{jwk.KeyIDKey: kid, jwk.AlgorithmKey: sigAlg, jwk.KeyUsageKey: jwk.ForSignature} {
		if err := key.Set(name, value); err != nil {
			return nil, fmt.Errorf("key %s: %s: %w", kid, name, err)
		}
	}
	return key, nil
}

const (
	jwksMaxBytes        = 1 << 20
	jwksMaxKeys         = 100
	jwksFetchTimeout    = 5 * time.Second
	jwksDefaultRefresh  = 15 * time.Minute
	jwksMinRefresh      = time.Minute
	jwksMaxRefresh      = 24 * time.Hour
	jwksRefetchInterval = 30 * time.Second
	jwksFailedRetry     = 5 * time.Second
	jwksRetryAfterError = time.Minute
	jwksIdleAfter       = 24 * time.Hour
	jwksMaxRedirects    = 3
)

// newHTTPClient returns the client that fetches JWKS by default: bounded in time at every step.
func newHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Timeout: jwksFetchTimeout,
		Transport: &http.Transport{
			Proxy:                  http.ProxyFromEnvironment,
			DialContext:            dialer.DialContext,
			TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:    3 * time.Second,
			ResponseHeaderTimeout:  jwksFetchTimeout,
			ExpectContinueTimeout:  time.Second,
			IdleConnTimeout:        90 * time.Second,
			MaxIdleConns:           16,
			MaxIdleConnsPerHost:    2,
			MaxResponseHeaderBytes: 64 << 10,
			ForceAttemptHTTP2:      true,
		},
		CheckRedirect: checkRedirect,
	}
}

func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= jwksMaxRedirects {
		return fmt.Errorf("more than %d redirects", jwksMaxRedirects)
	}
	if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return errors.New("redirect from https to " + req.URL.Scheme)
	}
	return nil
}

// remoteKeys is one fetched JWKS: its usable keys by kid (one kid may have keys of several
// algorithms).
type remoteKeys struct {
	byKid map[string][]*verifyKey
}

// lookup returns the key with kid for alg. known reports whether the set has the kid at all; key is
// nil when it has it for other algorithms only.
func (r *remoteKeys) lookup(kid, alg string) (key *verifyKey, known bool) {
	keys, known := r.byKid[kid]
	for _, k := range keys {
		if k.alg == alg {
			return k, true
		}
	}
	return nil, known
}

// parseJWKS reads a JWK Set, keeping the keys that verify ES256, RS256 or EdDSA signatures and
// skipping every other one (a malformed key does not spoil the others).
func parseJWKS(body []byte) (*remoteKeys, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New("not a JWK Set: no keys member")
	}
	set := &remoteKeys{byKid: map[string][]*verifyKey{}}
	for i, raw := range doc.Keys {
		if i == jwksMaxKeys {
			break
		}
		if k := remoteKey(raw); k != nil {
			set.byKid[k.kid] = append(set.byKid[k.kid], k)
		}
	}
	return set, nil
}

// remoteKey converts one JWK of a trusted issuer's set, or returns nil when it is not a usable
// signature-verification key.
func remoteKey(raw json.RawMessage) *verifyKey {
	key, err := jwk.ParseKey(raw)
	if err != nil {
		return nil
	}
	// A published private key can sign anything: whoever read the JWKS could have made the token.
	if private, err := jwk.IsPrivateKey(key); err != nil || private {
		return nil
	}
	kid, _ := key.KeyID()
	if kid == "" {
		return nil
	}
	if use, ok := key.KeyUsage(); ok && use != jwk.ForSignature.String() {
		return nil
	}
	if ops, ok := key.KeyOps(); ok && !slices.Contains(ops, jwk.KeyOpVerify) {
		return nil
	}
	var inferred string
	switch key.KeyType() {
	case jwa.EC():
		if k, ok := key.(jwk.ECDSAPublicKey); ok {
			if crv, ok := k.Crv(); ok && crv == jwa.P256() {
				inferred = algES256
			}
		}
	case jwa.OKP():
		if k, ok := key.(jwk.OKPPublicKey); ok {
			if crv, ok := k.Crv(); ok && crv == jwa.Ed25519() {
				inferred = algEdDSA
			}
		}
	case jwa.RSA():
		inferred = algRS256
	}
	// Symmetric keys, other curves and other key types stay unused.
	if inferred == "" {
		return nil
	}
	alg := inferred
	if a, ok := key.Algorithm(); ok && a.String() != "" {
		if a.String() != inferred {
			return nil
		}
	}
	var material any
	if err := jwk.Export(key, &material); err != nil {
		return nil
	}
	k, err := newVerifyKey(kid, alg, material)
	if err != nil {
		return nil
	}
	return k
}

// refreshInterval is when to fetch a JWKS again, from the response's Cache-Control.
func refreshInterval(h http.Header) time.Duration {
	for _, v := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return jwksMinRefresh
			case "max-age":
				secs, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64)
				if err != nil || secs < 0 {
					continue
				}
				return min(max(time.Duration(min(secs, int64(jwksMaxRefresh/time.Second)))*time.Second, jwksMinRefresh), jwksMaxRefresh)
			}
		}
	}
	return jwksDefaultRefresh
}

// fetchJWKS gets and parses a JWKS, and says when to fetch it again.
func fetchJWKS(ctx context.Context, client *http.Client, url string) (*remoteKeys, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", url, err)
	}
	if len(body) > jwksMaxBytes {
		return nil, 0, fmt.Errorf("GET %s: the JWKS is larger than %d bytes", url, jwksMaxBytes)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", url, err)
	}
	return keys, refreshInterval(resp.Header), nil
}

var errClosed = errors.New("the verifier is closed")

// jwksCache holds the JWKS of trusted issuers by URL.
type jwksCache struct {
	client *http.Client
	now    func() time.Time
	ctx    context.Context // cancelled by close, ending fetches under way
	cancel context.CancelFunc
	// The pacing below is in fields so that tests can shorten it; refreshCap, when set, bounds
	// every refresh interval.
	refetchInterval time.Duration
	failedRetry     time.Duration
	retryAfterError time.Duration
	refreshCap      time.Duration

	mu      sync.Mutex
	closed  bool
	entries map[string]*jwksEntry
	wg      sync.WaitGroup // fetches under way
}

type jwksEntry struct {
	url      string
	keys     atomic.Pointer[remoteKeys] // the last set fetched, nil before the first success
	lastUsed atomic.Int64               // unix nanoseconds

	mu        sync.Mutex
	call      *fetchCall // the fetch under way, if any
	lastFetch time.Time  // when the last fetch started
	lastErr   error      // the last fetch's error, nil after a success
	timer     *time.Timer
}

// fetchCall is one fetch that any number of callers wait for.
type fetchCall struct {
	done chan struct{}
	keys *remoteKeys
	err  error
}

func newJWKSCache(client *http.Client, now func() time.Time) *jwksCache {
	ctx, cancel := context.WithCancel(context.Background())
	return &jwksCache{
		client: client, now: now, ctx: ctx, cancel: cancel,
		refetchInterval: jwksRefetchInterval, failedRetry: jwksFailedRetry, retryAfterError: jwksRetryAfterError,
		entries: map[string]*jwksEntry{},
	}
}

func (c *jwksCache) entry(url string) *jwksEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[url]
	if e == nil {
		e = &jwksEntry{url: url}
		c.entries[url] = e
	}
	return e
}

// keys returns the set at url, fetching it when none has been fetched yet. After a failed fetch
// and until one succeeds, it fetches again at most every failedRetry and returns that error
// meanwhile.
func (c *jwksCache) keys(ctx context.Context, url string) (*remoteKeys, error) {
	e := c.entry(url)
	e.lastUsed.Store(c.now().UnixNano())
	if ks := e.keys.Load(); ks != nil {
		return ks, nil
	}
	e.mu.Lock()
	if ks := e.keys.Load(); ks != nil {
		e.mu.Unlock()
		return ks, nil
	}
	call := e.call
	if call == nil {
		if e.lastErr != nil && c.now().Sub(e.lastFetch) < c.failedRetry {
			err := e.lastErr
			e.mu.Unlock()
			return nil, err
		}
		call = c.startLocked(e)
	}
	e.mu.Unlock()
	return wait(ctx, call)
}

// refetch fetches url again because a token names a kid its set lacks, unless the last fetch
// started less than refetchInterval ago; joining a fetch under way is free. It returns the set to
// look in again, or nil when there is no newer one.
func (c *jwksCache) refetch(ctx context.Context, url string) *remoteKeys {
	e := c.entry(url)
	e.mu.Lock()
	call := e.call
	if call == nil {
		if c.now().Sub(e.lastFetch) < c.refetchInterval {
			e.mu.Unlock()
			return nil
		}
		call = c.startLocked(e)
	}
	e.mu.Unlock()
	keys, err := wait(ctx, call)
	if err != nil {
		return nil
	}
	return keys
}

func wait(ctx context.Context, call *fetchCall) (*remoteKeys, error) {
	select {
	case <-call.done:
		return call.keys, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// startLocked starts a fetch of e; e.mu is held.
func (c *jwksCache) startLocked(e *jwksEntry) *fetchCall {
	call := &fetchCall{done: make(chan struct{})}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		call.err = errClosed
		close(call.done)
		return call
	}
	c.wg.Add(1)
	c.mu.Unlock()
	e.call = call
	e.lastFetch = c.now()
	go c.fetch(e, call)
	return call
}

func (c *jwksCache) fetch(e *jwksEntry, call *fetchCall) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.ctx, jwksFetchTimeout)
	keys, next, err := fetchJWKS(ctx, c.client, e.url)
	cancel()

	e.mu.Lock()
	if err == nil {
		e.keys.Store(keys)
	} else {
		// A failed fetch keeps the previous set in use and is retried sooner.
		next = c.retryAfterError
	}
	if c.refreshCap > 0 {
		next = min(next, c.refreshCap)
	}
	e.lastErr = err
	call.keys, call.err = keys, err
	e.call = nil
	c.scheduleLocked(e, next)
	e.mu.Unlock()
	close(call.done)
}

// scheduleLocked arranges the next background refresh of e; e.mu is held.
func (c *jwksCache) scheduleLocked(e *jwksEntry, after time.Duration) {
	if e.timer != nil {
		e.timer.Stop()
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return
	}
	e.timer = time.AfterFunc(after, func() { c.refresh(e) })
}

// refresh is the background refresh of e: dropped when unused for jwksIdleAfter.
func (c *jwksCache) refresh(e *jwksEntry) {
	c.mu.Lock()
	if c.closed || c.entries[e.url] != e {
		c.mu.Unlock()
		return
	}
	if c.now().Sub(time.Unix(0, e.lastUsed.Load())) > jwksIdleAfter {
		delete(c.entries, e.url)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	e.mu.Lock()
	if e.call == nil {
		c.startLocked(e)
	}
	e.mu.Unlock()
}

// close stops background refreshes, cancels fetches under way and waits for them.
func (c *jwksCache) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	entries := make([]*jwksEntry, 0, len(c.entries))
	for _, e := range c.entries {
		entries = append(entries, e)
	}
	c.mu.Unlock()
	c.cancel()
	for _, e := range entries {
		e.mu.Lock()
		if e.timer != nil {
			e.timer.Stop()
		}
		e.mu.Unlock()
	}
	c.wg.Wait()
}
