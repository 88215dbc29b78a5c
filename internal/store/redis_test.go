package store_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"

	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/store/redistest"
	"github.com/authgate/authgate/internal/store/storetest"
)

func TestMain(m *testing.M) {
	// go-redis logs every failed dial and every Sentinel lookup; the tests check outcomes.
	logging.Disable()
	os.Exit(m.Run())
}

// prefixes numbers the key prefixes of the stores of one process, so that stores sharing a server
// never see each other's keys.
var prefixes atomic.Int64

func newPrefix() string { return "t" + strconv.FormatInt(prefixes.Add(1), 10) }

// newRedis returns a store on a new client of cfg, with cfg's prefix or a fresh one, closed when
// the test ends. A nil clock is time.Now.
func newRedis(t testing.TB, cfg store.RedisConfig, clock func() time.Time) *store.Redis {
	t.Helper()
	client, err := cfg.NewClient()
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = newPrefix()
	}
	r, err := store.NewRedis(client, store.RedisOptions{Prefix: prefix, Clock: clock})
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// rawClient is a plain client of the server at addr, to look at what a store wrote.
func rawClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// conformance runs the conformance suite, each subtest on a store with a fresh prefix.
func conformance(t *testing.T, cfg store.RedisConfig) {
	storetest.Run(t, func(t *testing.T, clock *storetest.Clock) store.Store {
		client, err := cfg.NewClient()
		if err != nil {
			t.Fatalf("NewClient: %v", err)
		}
		r, err := store.NewRedis(client, store.RedisOptions{Prefix: newPrefix(), Clock: clock.Now})
		if err != nil {
			t.Fatalf("NewRedis: %v", err)
		}
		return r // Run closes it
	})
}

func TestRedisConformance(t *testing.T) {
	srv := redistest.StartServer(t)
	conformance(t, store.RedisConfig{Addrs: []string{srv.Addr}})
}

func TestRedisConformanceURL(t *testing.T) {
	srv := redistest.StartServer(t)
	conformance(t, store.RedisConfig{URL: "redis://" + srv.Addr + "/3"})
}

func TestRedisConformanceSentinel(t *testing.T) {
	master := redistest.StartServer(t)
	sentinel := redistest.StartSentinel(t, master, "m")
	conformance(t, store.RedisConfig{Addrs: []string{sentinel.Addr}, SentinelMaster: "m"})
}

// The cluster's three masters each own a third of the slots: a script whose keys span slots fails
// with CROSSSLOT, which the suite would report. The store connects as the ACL user of
// docs/redis.md, with the rule Cluster adds.
func TestRedisConformanceCluster(t *testing.T) {
	t.Parallel()
	cluster := redistest.StartCluster(t, 3, append([]string{"--user"}, strings.Fields(docsACL+" "+docsACLCluster)...)...)
	var admins []*redis.Client
	for _, addr := range cluster.Addrs {
		admins = append(admins, rawClient(t, addr))
	}
	conformanceACL(t, store.RedisConfig{Addrs: cluster.Addrs, Username: "authgate", Password: "s3cret"}, admins)
	// A managed Cluster often offers one configuration endpoint: with Cluster set, one node's
	// address is enough to find the others, and the suite passes the same way.
	t.Run("one endpoint", func(t *testing.T) {
		conformanceACL(t, store.RedisConfig{Addrs: cluster.Addrs[:1], Cluster: true, Username: "authgate", Password: "s3cret"}, admins)
	})
}

// The ACL of docs/redis.md is enough for every method, with the default prefix.
func TestRedisConformanceACLUser(t *testing.T) {
	srv := redistest.StartServer(t, append([]string{"--user"}, strings.Fields(docsACL)...)...)
	conformanceACL(t, store.RedisConfig{Addrs: []string{srv.Addr}, Username: "authgate", Password: "s3cret"},
		[]*redis.Client{rawClient(t, srv.Addr)})

	wrong := newRedis(t, store.RedisConfig{Addrs: []string{srv.Addr}, Username: "authgate", Password: "wrong"}, nil)
	if _, err := wrong.GetSession(t.Context(), store.KeyOf("x")); !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("GetSession with a wrong password: %v, want ErrUnavailable (WRONGPASS)", err)
	}
	// Keys outside the prefix are out of reach of the user.
	other := newRedis(t, store.RedisConfig{Addrs: []string{srv.Addr}, Username: "authgate", Password: "s3cret", Prefix: "other"}, nil)
	if _, err := other.GetSession(t.Context(), store.KeyOf("x")); !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("GetSession under another prefix: %v, want ErrUnavailable (NOPERM)", err)
	}
}

// conformanceACL runs the conformance suite on stores of cfg with the default prefix, which the ACL
// user may use, emptying the servers through admins (the default user) before each subtest.
func conformanceACL(t *testing.T, cfg store.RedisConfig, admins []*redis.Client) {
	storetest.Run(t, func(t *testing.T, clock *storetest.Clock) store.Store {
		for _, admin := range admins {
			if err := admin.FlushAll(t.Context()).Err(); err != nil {
				t.Fatal(err)
			}
		}
		client, err := cfg.NewClient()
		if err != nil {
			t.Fatalf("NewClient: %v", err)
		}
		r, err := store.NewRedis(client, store.RedisOptions{Clock: clock.Now})
		if err != nil {
			t.Fatalf("NewRedis: %v", err)
		}
		return r
	})
}

// docsACL is the ACL user of docs/redis.md, with the password s3cret; docsACLCluster is what Redis
// Cluster adds to it.
const (
	docsACL = `authgate on >s3cret resetkeys ~authgate:* resetchannels &authgate:revocations
	-@all +@read +@write +@scripting +@pubsub +@connection -@dangerous`
	docsACLCluster = `+cluster|slots`
)

// Creating the very record a key holds again succeeds: go-redis retries a write after a network
// error, and the retry must not report the first attempt's record as another's.
func TestRedisCreateRetried(t *testing.T) {
	srv := redistest.StartServer(t)
	clock := storetest.NewClock(t0)
	r := newRedis(t, store.RedisConfig{Addrs: []string{srv.Addr}}, clock.Now)
	ctx := t.Context()
	now := clock.Now()
	s := store.Session{Policy: "ns/p", UserID: "u", CreatedAt: now, ExpiresAt: now.Add(time.Hour), MaxExpiresAt: now.Add(time.Hour), LastSeenAt: now}
	tok := store.RefreshToken{Policy: "ns/p", UserID: "u", Family: "f", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	for range 2 {
		if err := r.CreateSession(ctx, store.KeyOf("s"), s); err != nil {
			t.Fatalf("CreateSession of the same record: %v", err)
		}
		if err := r.CreateRefreshToken(ctx, store.KeyOf("rt"), tok); err != nil {
			t.Fatalf("CreateRefreshToken of the same record: %v", err)
		}
	}
	other := s
	other.Email = "other@example.com"
	if err := r.CreateSession(ctx, store.KeyOf("s"), other); err == nil || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("CreateSession of another record at a taken key: %v, want a misuse error", err)
	}
	otherTok := tok
	otherTok.UserID = "v"
	if err := r.CreateRefreshToken(ctx, store.KeyOf("rt"), otherTok); err == nil || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("CreateRefreshToken of another record at a taken key: %v, want a misuse error", err)
	}
}

// hexOf is the hex of a key, as keys and revocations show it.
func hexOf(k store.Key) string { return hex.EncodeToString(k[:]) }

// scan returns the keys of the server at addr that match pattern.
func scan(t testing.TB, c *redis.Client, pattern string) []string {
	t.Helper()
	var keys []string
	iter := c.Scan(t.Context(), 0, pattern, 1000).Iterator()
	for iter.Next(t.Context()) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN %s: %v", pattern, err)
	}
	slices.Sort(keys)
	return keys
}

// Keys hold hashes only, every key has a time to live that the store's clock sets, and the layout
// is the documented one.
func TestRedisKeyLayout(t *testing.T) {
	srv := redistest.StartServer(t)
	raw := rawClient(t, srv.Addr)
	clock := storetest.NewClock(t0)
	r := newRedis(t, store.RedisConfig{Addrs: []string{srv.Addr}, Prefix: "layout"}, clock.Now)
	ctx := t.Context()
	const (
		sessionSecret = "session-secret-0123456789"
		tokenSecret   = "refresh-secret-0123456789"
		nextSecret    = "refresh-secret-successor"
		policy        = "ns-layout/policy-layout"
		user          = "user-layout-7"
		family        = "family-layout-9"
		email         = "user-layout-7@example.com"
	)
	now := clock.Now()
	s := store.Session{Policy: policy, UserID: user, Email: email, CreatedAt: now,
		ExpiresAt: now.Add(time.Hour), MaxExpiresAt: now.Add(24 * time.Hour), LastSeenAt: now}
	if err := r.CreateSession(ctx, store.KeyOf(sessionSecret), s); err != nil {
		t.Fatal(err)
	}
	tok := store.RefreshToken{Policy: policy, UserID: user, Email: email, Family: family, IssuedAt: now, ExpiresAt: now.Add(2 * time.Hour)}
	if err := r.CreateRefreshToken(ctx, store.KeyOf(tokenSecret), tok); err != nil {
		t.Fatal(err)
	}
	next := tok
	next.ExpiresAt = now.Add(3 * time.Hour)
	if o, _, err := r.RotateRefreshToken(ctx, store.KeyOf(tokenSecret), store.KeyOf(nextSecret), next, now, time.Minute); err != nil || o != store.Rotated {
		t.Fatalf("RotateRefreshToken = %v, %v", o, err)
	}
	if err := r.RevokeFamily(ctx, policy, "other-"+family, now.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}

	hex64 := `[0-9a-f]{64}`
	shapes := map[string]*regexp.Regexp{
		"session":       regexp.MustCompile(`^layout:s:` + hex64 + `$`),
		"session index": regexp.MustCompile(`^layout:\{u:` + hex64 + `\}:s$`),
		"family index":  regexp.MustCompile(`^layout:\{u:` + hex64 + `\}:f$`),
		"pointer":       regexp.MustCompile(`^layout:rt:` + hex64 + `$`),
		"token":         regexp.MustCompile(`^layout:\{f:` + hex64 + `\}:t:` + hex64 + `$`),
		"members":       regexp.MustCompile(`^layout:\{f:` + hex64 + `\}:m$`),
		"revoked":       regexp.MustCompile(`^layout:\{f:` + hex64 + `\}:r$`),
		"revocations":   regexp.MustCompile(`^layout:revocations$`),
	}
	want := map[string]int{"session": 1, "session index": 1, "family index": 1, "pointer": 2, "token": 2, "members": 1, "revoked": 1, "revocations": 1}
	got := map[string]int{}
	keys := scan(t, raw, "layout:*")
	for _, k := range keys {
		for _, secret := range []string{sessionSecret, tokenSecret, nextSecret, policy, user, family, email, "ns-layout"} {
			if strings.Contains(k, secret) {
				t.Errorf("key %s holds %q", k, secret)
			}
		}
		kind := ""
		for name, re := range shapes {
			if re.MatchString(k) {
				kind = name
			}
		}
		if kind == "" {
			t.Errorf("key %s has no documented shape", k)
		}
		got[kind]++
		// Every key lives as long as the clock says its record does, plus a second: the latest
		// token ends in three hours, the session in one but it may be extended for a day.
		max := 3*time.Hour + time.Second
		if kind == "session index" {
			max = 24*time.Hour + time.Second
		}
		if ttl := raw.PTTL(ctx, k).Val(); ttl <= 0 || ttl > max {
			t.Errorf("key %s (%s) has PTTL %v, want (0, %v]", k, kind, ttl, max)
		}
	}
	for kind, n := range want {
		if got[kind] != n {
			t.Errorf("%d %s keys, want %d; keys:\n%s", got[kind], kind, n, strings.Join(keys, "\n"))
		}
	}
	sessionKey := "layout:s:" + hexOf(store.KeyOf(sessionSecret))
	wantTTL := func(key string, want time.Duration) {
		t.Helper()
		if ttl := raw.PTTL(ctx, key).Val(); ttl > want+time.Second || ttl < want+time.Second-5*time.Second {
			t.Errorf("PTTL %s = %v, want about %v", key, ttl, want+time.Second)
		}
	}
	wantTTL(sessionKey, time.Hour)
	wantTTL("layout:rt:"+hexOf(store.KeyOf(nextSecret)), 3*time.Hour)

	// The family's keys share one hash tag: its records live in one Cluster slot.
	var tags []string
	for _, k := range keys {
		if i := strings.Index(k, "{"); i >= 0 && strings.Contains(k, "}:t:") {
			tags = append(tags, k[i:strings.Index(k, "}")+1])
		}
	}
	if len(tags) != 2 || tags[0] != tags[1] {
		t.Errorf("token keys have hash tags %q, want one tag", tags)
	}

	// Times to live follow the store's clock, not Redis's: half an hour later, an extension by two
	// hours lives two hours (and a second) from then.
	clock.Advance(30 * time.Minute)
	later := clock.Now()
	if _, err := r.ExtendSession(ctx, store.KeyOf(sessionSecret), later.Add(2*time.Hour), later); err != nil {
		t.Fatal(err)
	}
	wantTTL(sessionKey, 2*time.Hour)

	// Once the clock has passed every expiry, nothing is live, whatever Redis still holds.
	clock.Advance(4 * time.Hour)
	if _, err := r.GetSession(ctx, store.KeyOf(sessionSecret)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSession after expiry: %v, want ErrNotFound", err)
	}
	for _, secret := range []string{tokenSecret, nextSecret} {
		if _, err := r.GetRefreshToken(ctx, store.KeyOf(secret)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetRefreshToken after expiry: %v, want ErrNotFound", err)
		}
	}
	if revs, err := r.Revocations(ctx); err != nil || len(revs) != 0 {
		t.Errorf("Revocations after expiry = %v, %v; want none", revs, err)
	}
}

// With a clock that runs with Redis's, Redis drops every key shortly (a second) after its record
// expires: nothing is left behind.
func TestRedisNothingLeftAfterExpiry(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t)
	raw := rawClient(t, srv.Addr)
	r := newRedis(t, store.RedisConfig{Addrs: []string{srv.Addr}, Prefix: "expiry"}, nil)
	ctx := t.Context()
	const ttl = 300 * time.Millisecond
	now := time.Now()
	s := store.Session{Policy: "ns/p", UserID: "u", CreatedAt: now, ExpiresAt: now.Add(ttl), MaxExpiresAt: now.Add(ttl), LastSeenAt: now}
	for _, k := range []string{"s1", "s2"} {
		if err := r.CreateSession(ctx, store.KeyOf(k), s); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.DeleteSession(ctx, store.KeyOf("s2")); err != nil {
		t.Fatal(err)
	}
	tok := store.RefreshToken{Policy: "ns/p", UserID: "u", Family: "f1", IssuedAt: now, ExpiresAt: now.Add(ttl)}
	if err := r.CreateRefreshToken(ctx, store.KeyOf("rt1"), tok); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.RotateRefreshToken(ctx, store.KeyOf("rt1"), store.KeyOf("rt2"), tok, now, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := r.RevokeFamily(ctx, "ns/p", "f2", now.Add(ttl)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.RevokeUser(ctx, "ns/p", "u2", now, now.Add(ttl)); err != nil {
		t.Fatal(err)
	}
	if keys := scan(t, raw, "expiry:*"); len(keys) < 8 {
		t.Fatalf("keys after the writes: %q, want at least 8", keys)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		keys := scan(t, raw, "expiry:*")
		if len(keys) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("keys left 5s after every record expired (%v): %q", ttl, keys)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The user index holds what is live: expired logins are trimmed by the next write, and logouts
// leave no entry.
func TestRedisUserIndexBounded(t *testing.T) {
	srv := redistest.StartServer(t)
	raw := rawClient(t, srv.Addr)
	clock := storetest.NewClock(t0)
	r := newRedis(t, store.RedisConfig{Addrs: []string{srv.Addr}, Prefix: "index"}, clock.Now)
	ctx := t.Context()
	now := clock.Now()
	short := store.Session{Policy: "ns/p", UserID: "u", CreatedAt: now, ExpiresAt: now.Add(time.Minute), MaxExpiresAt: now.Add(time.Minute), LastSeenAt: now}
	for i := range 200 {
		if err := r.CreateSession(ctx, store.KeyOf(fmt.Sprintf("s%d", i)), short); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 {
		tok := store.RefreshToken{Policy: "ns/p", UserID: "u", Family: fmt.Sprintf("f%d", i), IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
		if err := r.CreateRefreshToken(ctx, store.KeyOf(fmt.Sprintf("rt%d", i)), tok); err != nil {
			t.Fatal(err)
		}
	}
	indexes := scan(t, raw, "index:{u:*")
	if len(indexes) != 2 || !strings.HasSuffix(indexes[0], "}:f") || !strings.HasSuffix(indexes[1], "}:s") {
		t.Fatalf("user indexes %q, want one of families and one of sessions", indexes)
	}
	families, sessions := indexes[0], indexes[1]
	wantCard := func(index string, want int64) {
		t.Helper()
		if n := raw.ZCard(ctx, index).Val(); n != want {
			t.Fatalf("the user index %s holds %d entries, want %d", index, n, want)
		}
	}
	wantCard(sessions, 200)
	wantCard(families, 50)

	clock.Advance(2 * time.Minute)
	now = clock.Now()
	long := store.Session{Policy: "ns/p", UserID: "u", CreatedAt: now, ExpiresAt: now.Add(time.Hour), MaxExpiresAt: now.Add(time.Hour), LastSeenAt: now}
	if err := r.CreateSession(ctx, store.KeyOf("late"), long); err != nil {
		t.Fatal(err)
	}
	lateToken := store.RefreshToken{Policy: "ns/p", UserID: "u", Family: "late", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := r.CreateRefreshToken(ctx, store.KeyOf("late"), lateToken); err != nil {
		t.Fatal(err)
	}
	wantCard(sessions, 1)
	wantCard(families, 1)
	for i := range 100 {
		k := store.KeyOf(fmt.Sprintf("logout%d", i))
		if err := r.CreateSession(ctx, k, long); err != nil {
			t.Fatal(err)
		}
		if err := r.DeleteSession(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	wantCard(sessions, 1)
	for _, index := range indexes {
		if ttl := raw.PTTL(ctx, index).Val(); ttl <= 0 || ttl > time.Hour+time.Second {
			t.Errorf("the PTTL of %s is %v, want its latest entry's (1h1s)", index, ttl)
		}
	}
}

// recorder keeps what a subscriber receives.
type recorder struct {
	mu  sync.Mutex
	got []store.Revocation
}

func (rec *recorder) add(r store.Revocation) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.got = append(rec.got, r)
}

func (rec *recorder) kinds() []store.RevocationKind {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []store.RevocationKind
	for _, r := range rec.got {
		out = append(out, r.Kind)
	}
	return out
}

// waitFor waits until rec has received a revocation that match accepts.
func (rec *recorder) waitFor(t testing.TB, what string, timeout time.Duration, match func(store.Revocation) bool) store.Revocation {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rec.mu.Lock()
		i := slices.IndexFunc(rec.got, match)
		var r store.Revocation
		if i >= 0 {
			r = rec.got[i]
		}
		rec.mu.Unlock()
		if i >= 0 {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v; received %v", what, timeout, rec.kinds())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func kind(k store.RevocationKind) func(store.Revocation) bool {
	return func(r store.Revocation) bool { return r.Kind == k }
}

// When Redis goes away, every method fails with ErrUnavailable within the client's timeouts and
// subscribers hear that the feed is lost; when a server answers on the same address again, the
// same store works again and the feed is restored.
func TestRedisUnavailable(t *testing.T) {
	srv := redistest.StartServer(t)
	cfg := store.RedisConfig{Addrs: []string{srv.Addr}, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, Prefix: "down"}
	r := newRedis(t, cfg, nil)
	rec := &recorder{}
	defer r.Subscribe(rec.add)()
	ctx := t.Context()
	now := time.Now()
	s := store.Session{Policy: "ns/p", UserID: "u", CreatedAt: now, ExpiresAt: now.Add(time.Hour), MaxExpiresAt: now.Add(time.Hour), LastSeenAt: now}
	tok := store.RefreshToken{Policy: "ns/p", UserID: "u", Family: "f", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := r.CreateSession(ctx, store.KeyOf("s"), s); err != nil {
		t.Fatal(err)
	}
	if err := r.CreateRefreshToken(ctx, store.KeyOf("rt"), tok); err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	rec.waitFor(t, "SubscriptionLost", 5*time.Second, kind(store.SubscriptionLost))
	calls := map[string]func() error{
		"CreateSession": func() error { return r.CreateSession(ctx, store.KeyOf("s2"), s) },
		"GetSession":    func() error { _, err := r.GetSession(ctx, store.KeyOf("s")); return err },
		"ExtendSession": func() error {
			_, err := r.ExtendSession(ctx, store.KeyOf("s"), now.Add(2*time.Hour), now)
			return err
		},
		"DeleteSession":      func() error { return r.DeleteSession(ctx, store.KeyOf("s")) },
		"RevokeUser":         func() error { _, err := r.RevokeUser(ctx, "ns/p", "u", now, now.Add(time.Hour)); return err },
		"CreateRefreshToken": func() error { return r.CreateRefreshToken(ctx, store.KeyOf("rt2"), tok) },
		"RotateRefreshToken": func() error {
			_, _, err := r.RotateRefreshToken(ctx, store.KeyOf("rt"), store.KeyOf("rt3"), tok, now, time.Second)
			return err
		},
		"GetRefreshToken": func() error { _, err := r.GetRefreshToken(ctx, store.KeyOf("rt")); return err },
		"RevokeFamily":    func() error { return r.RevokeFamily(ctx, "ns/p", "f", now.Add(time.Hour)) },
		"Revocations":     func() error { _, err := r.Revocations(ctx); return err },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("%s took %v with Redis down", name, took)
		}
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with Redis down: %v, want ErrUnavailable", name, err)
		}
	}
	// A subscriber arriving during the outage hears of it at once.
	late := &recorder{}
	defer r.Subscribe(late.add)()
	if got := late.kinds(); !slices.Equal(got, []store.RevocationKind{store.SubscriptionLost}) {
		t.Errorf("a subscriber arriving during the outage received %v, want SubscriptionLost", got)
	}

	srv.Start() // empty: it kept nothing
	rec.waitFor(t, "SubscriptionRestored", 10*time.Second, kind(store.SubscriptionRestored))
	late.waitFor(t, "SubscriptionRestored", 5*time.Second, kind(store.SubscriptionRestored))
	// After repeated refused connections, go-redis probes the server once a second before it
	// dials for commands again: the store recovers within about a second.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := r.CreateSession(ctx, store.KeyOf("s"), s)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("CreateSession after the restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := r.GetSession(ctx, store.KeyOf("s")); err != nil {
		t.Fatalf("GetSession after the restart: %v", err)
	}
	if err := r.DeleteSession(ctx, store.KeyOf("s")); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "the deletion's revocation", 5*time.Second, kind(store.RevokeSession))
	if got := rec.kinds(); !slices.Equal(got, []store.RevocationKind{store.SubscriptionLost, store.SubscriptionRestored, store.RevokeSession}) {
		t.Errorf("subscriber received %v, want lost, restored, session", got)
	}
}

// A hung server: a method returns when its context ends, with an error wrapping both
// ErrUnavailable and the context's; the subscription notices the silence by its health check.
func TestRedisHungServer(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t)
	r := newRedis(t, store.RedisConfig{Addrs: []string{srv.Addr}, ReadTimeout: 30 * time.Second}, nil)
	rec := &recorder{}
	defer r.Subscribe(rec.add)()
	ctx := t.Context()
	now := time.Now()
	s := store.Session{Policy: "ns/p", UserID: "u", CreatedAt: now, ExpiresAt: now.Add(time.Hour), MaxExpiresAt: now.Add(time.Hour), LastSeenAt: now}
	if err := r.CreateSession(ctx, store.KeyOf("s"), s); err != nil {
		t.Fatal(err)
	}

	srv.Pause()
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.GetSession(short, store.KeyOf("s"))
	if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GetSession of a hung server: %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("GetSession of a hung server took %v with a 200ms deadline", took)
	}
	// Silent for 5s, then a PING unanswered for 5s more.
	rec.waitFor(t, "SubscriptionLost", 20*time.Second, kind(store.SubscriptionLost))

	srv.Resume()
	rec.waitFor(t, "SubscriptionRestored", 20*time.Second, kind(store.SubscriptionRestored))
	if _, err := r.GetSession(ctx, store.KeyOf("s")); err != nil {
		t.Fatalf("GetSession after the server resumed: %v", err)
	}
}

// Replicas share the store: a revocation by one reaches the subscribers of another, as the
// documented JSON on the documented channel.
func TestRedisRevocationAcrossReplicas(t *testing.T) {
	srv := redistest.StartServer(t)
	clock := storetest.NewClock(t0)
	cfg := store.RedisConfig{Addrs: []string{srv.Addr}, Prefix: "shared"}
	a, b := newRedis(t, cfg, clock.Now), newRedis(t, cfg, clock.Now)
	ctx := t.Context()
	rec := &recorder{}
	defer a.Subscribe(rec.add)()
	wire := rawClient(t, srv.Addr).Subscribe(ctx, "shared:revocations")
	defer wire.Close()
	if _, err := wire.Receive(ctx); err != nil { // the confirmation
		t.Fatal(err)
	}

	now := clock.Now()
	s := store.Session{Policy: "ns/p", UserID: "u", CreatedAt: now, ExpiresAt: now.Add(time.Hour), MaxExpiresAt: now.Add(time.Hour), LastSeenAt: now}
	if err := b.CreateSession(ctx, store.KeyOf("s"), s); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetSession(ctx, store.KeyOf("s")); err != nil {
		t.Fatalf("replica a does not see replica b's session: %v", err)
	}
	if err := b.DeleteSession(ctx, store.KeyOf("s")); err != nil {
		t.Fatal(err)
	}
	got := rec.waitFor(t, "the session's revocation", 5*time.Second, kind(store.RevokeSession))
	want := store.Revocation{Kind: store.RevokeSession, Policy: "ns/p", Value: hexOf(store.KeyOf("s")), At: now, Until: now.Add(time.Hour)}
	if got.Kind != want.Kind || got.Policy != want.Policy || got.Value != want.Value || !got.At.Equal(want.At) || !got.Until.Equal(want.Until) {
		t.Errorf("replica a received %+v, want %+v", got, want)
	}
	if _, err := a.GetSession(ctx, store.KeyOf("s")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("replica a still reads the deleted session: %v", err)
	}

	msg, err := wire.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"Kind":"session","Policy":"ns/p","Value":"` + want.Value + `","At":"2026-03-01T12:00:00Z","Until":"2026-03-01T13:00:00Z"}`
	if msg.Payload != wantJSON {
		t.Errorf("message on shared:revocations:\n%s\nwant\n%s", msg.Payload, wantJSON)
	}
}

// Subscribe starts one goroutine (and go-redis its own); Close ends them all.
func TestRedisSubscribeNoGoroutineLeak(t *testing.T) {
	srv := redistest.StartServer(t)
	clock := storetest.NewClock(t0)
	ctx := t.Context()
	before := runtime.NumGoroutine()

	client, err := store.RedisConfig{Addrs: []string{srv.Addr}}.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	r, err := store.NewRedis(client, store.RedisOptions{Prefix: "leak", Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	var delivered atomic.Int32
	cancels := []func(){}
	for range 3 {
		cancels = append(cancels, r.Subscribe(func(store.Revocation) { delivered.Add(1) }))
	}
	cancels[0]()
	cancels[0]() // twice is fine
	if err := r.RevokeFamily(ctx, "ns/p", "fam", clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for delivered.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := delivered.Load(); n != 2 {
		t.Fatalf("%d deliveries, want 2 (two subscribers left)", n)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A closed store fails every method with ErrUnavailable, and a subscription to it does nothing.
func TestRedisClosed(t *testing.T) {
	srv := redistest.StartServer(t)
	r := newRedis(t, store.RedisConfig{Addrs: []string{srv.Addr}}, nil)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := r.GetSession(ctx, store.KeyOf("s")); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("GetSession after Close: %v, want ErrUnavailable", err)
	}
	if err := r.RevokeFamily(ctx, "ns/p", "f", time.Now().Add(time.Hour)); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("RevokeFamily after Close: %v, want ErrUnavailable", err)
	}
	if _, err := r.Revocations(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Revocations after Close: %v, want ErrUnavailable", err)
	}
	r.Subscribe(func(store.Revocation) { t.Error("a subscriber of a closed store was called") })()
}

// With appendonly, sessions and tokens survive a restart of Redis, with their times to live.
func TestRedisPersistence(t *testing.T) {
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "everysec")
	raw := rawClient(t, srv.Addr)
	r := newRedis(t, store.RedisConfig{Addrs: []string{srv.Addr}, Prefix: "aof"}, nil)
	ctx := t.Context()
	now := time.Now()
	s := store.Session{Policy: "ns/p", UserID: "u", Email: "u@example.com", CreatedAt: now, ExpiresAt: now.Add(time.Hour), MaxExpiresAt: now.Add(24 * time.Hour), LastSeenAt: now}
	tok := store.RefreshToken{Policy: "ns/p", UserID: "u", Family: "f", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := r.CreateSession(ctx, store.KeyOf("s"), s); err != nil {
		t.Fatal(err)
	}
	if err := r.CreateRefreshToken(ctx, store.KeyOf("rt"), tok); err != nil {
		t.Fatal(err)
	}
	srv.Stop() // SIGTERM: Redis flushes the append-only file
	srv.Start()
	got, err := r.GetSession(ctx, store.KeyOf("s"))
	if err != nil {
		t.Fatalf("GetSession after a restart: %v", err)
	}
	if !got.ExpiresAt.Equal(s.ExpiresAt.Truncate(time.Microsecond)) || got.UserID != "u" {
		t.Errorf("GetSession after a restart = %+v, want %+v (to the microsecond)", got, s)
	}
	if _, err := r.GetRefreshToken(ctx, store.KeyOf("rt")); err != nil {
		t.Fatalf("GetRefreshToken after a restart: %v", err)
	}
	if ttl := raw.PTTL(ctx, "aof:s:"+hexOf(store.KeyOf("s"))).Val(); ttl < 50*time.Minute {
		t.Errorf("session PTTL after a restart: %v, want about an hour", ttl)
	}
}

// Times read back in UTC, truncated to the microsecond.
func TestRedisTimePrecision(t *testing.T) {
	srv := redistest.StartServer(t)
	r := newRedis(t, store.RedisConfig{Addrs: []string{srv.Addr}}, nil)
	ctx := t.Context()
	paris := time.FixedZone("Paris", 3600)
	now := time.Now().In(paris)
	s := store.Session{Policy: "ns/p", UserID: "u", CreatedAt: now, ExpiresAt: now.Add(time.Hour + 123456789), MaxExpiresAt: now.Add(2 * time.Hour), LastSeenAt: now}
	if err := r.CreateSession(ctx, store.KeyOf("s"), s); err != nil {
		t.Fatal(err)
	}
	got, err := r.GetSession(ctx, store.KeyOf("s"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]time.Time{{got.CreatedAt, s.CreatedAt}, {got.ExpiresAt, s.ExpiresAt}, {got.MaxExpiresAt, s.MaxExpiresAt}} {
		if !pair[0].Equal(pair[1].Truncate(time.Microsecond)) || pair[0].Location() != time.UTC {
			t.Errorf("read %v for %v, want it in UTC to the microsecond", pair[0], pair[1])
		}
	}
}

func TestNewRedisRejects(t *testing.T) {
	if _, err := store.NewRedis(nil, store.RedisOptions{}); err == nil {
		t.Error("NewRedis with no client succeeded")
	}
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	if _, err := store.NewRedis(client, store.RedisOptions{Prefix: "a{b}"}); err == nil || !strings.Contains(err.Error(), "hash tag") {
		t.Errorf("NewRedis with a brace in the prefix: %v, want an error about hash tags", err)
	}
}

// tlsFiles writes a CA, a server certificate for 127.0.0.1 and a client certificate, both signed
// by the CA, into dir.
type tlsFiles struct{ ca, serverCert, serverKey, clientCert, clientKey string }

func writeTLSFiles(t *testing.T, dir string) tlsFiles {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "authgate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, kind string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (cert, key string) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".crt", "CERTIFICATE", der), write(name+".key", "EC PRIVATE KEY", keyDER)
	}
	f := tlsFiles{ca: write("ca.crt", "CERTIFICATE", caDER)}
	f.serverCert, f.serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	f.clientCert, f.clientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return f
}

// TLS with a CA file and a client certificate, by URL and by address; a server whose certificate
// the CA did not sign, and a missing client certificate, fail as unavailable.
func TestRedisTLS(t *testing.T) {
	files := writeTLSFiles(t, t.TempDir())
	other := writeTLSFiles(t, t.TempDir())
	tlsPort := redistest.FreePort(t)
	redistest.StartServer(t, "--tls-port", strconv.Itoa(tlsPort), "--tls-cert-file", files.serverCert,
		"--tls-key-file", files.serverKey, "--tls-ca-cert-file", files.ca, "--tls-auth-clients", "yes")
	tlsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort))
	ctx := t.Context()
	now := time.Now()
	s := store.Session{Policy: "ns/p", UserID: "u", CreatedAt: now, ExpiresAt: now.Add(time.Hour), MaxExpiresAt: now.Add(time.Hour), LastSeenAt: now}

	for name, cfg := range map[string]store.RedisConfig{
		"URL":   {URL: "rediss://" + tlsAddr, CAFile: files.ca, CertFile: files.clientCert, KeyFile: files.clientKey},
		"Addrs": {Addrs: []string{tlsAddr}, TLS: true, CAFile: files.ca, CertFile: files.clientCert, KeyFile: files.clientKey},
	} {
		t.Run(name, func(t *testing.T) {
			r := newRedis(t, cfg, nil)
			rec := &recorder{}
			defer r.Subscribe(rec.add)()
			if err := r.CreateSession(ctx, store.KeyOf("s"+name), s); err != nil {
				t.Fatalf("CreateSession over TLS: %v", err)
			}
			if _, err := r.GetSession(ctx, store.KeyOf("s"+name)); err != nil {
				t.Fatalf("GetSession over TLS: %v", err)
			}
			if err := r.DeleteSession(ctx, store.KeyOf("s"+name)); err != nil {
				t.Fatal(err)
			}
			rec.waitFor(t, "the revocation, over TLS", 5*time.Second, kind(store.RevokeSession))
		})
	}
	for name, tc := range map[string]struct {
		cfg  store.RedisConfig
		want string
	}{
		"another CA":        {store.RedisConfig{URL: "rediss://" + tlsAddr, CAFile: other.ca, CertFile: files.clientCert, KeyFile: files.clientKey}, "certificate"},
		"no client cert":    {store.RedisConfig{URL: "rediss://" + tlsAddr, CAFile: files.ca}, ""},
		"plain to TLS port": {store.RedisConfig{URL: "redis://" + tlsAddr, ReadTimeout: 300 * time.Millisecond}, ""},
		"system roots only": {store.RedisConfig{Addrs: []string{tlsAddr}, TLS: true, CertFile: files.clientCert, KeyFile: files.clientKey}, "certificate"},
	} {
		t.Run(name, func(t *testing.T) {
			r := newRedis(t, tc.cfg, nil)
			short, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := r.GetSession(short, store.KeyOf("s"))
			if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("GetSession: %v, want ErrUnavailable mentioning %q", err, tc.want)
			}
		})
	}
}

func TestRedisConfigValidate(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	files := writeTLSFiles(t, dir)
	tests := map[string]struct {
		cfg  store.RedisConfig
		want string // "" for valid
	}{
		"URL":                     {store.RedisConfig{URL: "redis://localhost:6379/2"}, ""},
		"URL with TLS":            {store.RedisConfig{URL: "rediss://redis.example:6380", CAFile: files.ca}, ""},
		"one address":             {store.RedisConfig{Addrs: []string{"redis:6379"}}, ""},
		"Sentinel":                {store.RedisConfig{Addrs: []string{"s1:26379", "s2:26379"}, SentinelMaster: "m", SentinelPassword: "x", DB: 1}, ""},
		"Cluster":                 {store.RedisConfig{Addrs: []string{"n1:6379", "n2:6379", "n3:6379"}}, ""},
		"mutual TLS":              {store.RedisConfig{Addrs: []string{"redis:6379"}, TLS: true, CAFile: files.ca, CertFile: files.clientCert, KeyFile: files.clientKey}, ""},
		"nothing":                 {store.RedisConfig{}, "no server: set URL"},
		"URL and Addrs":           {store.RedisConfig{URL: "redis://a:1", Addrs: []string{"b:2"}}, "set URL or Addrs, not both"},
		"Sentinel without Addrs":  {store.RedisConfig{URL: "redis://a:1", SentinelMaster: "m"}, "SentinelMaster needs the Sentinels' addresses in Addrs"},
		"Sentinel password alone": {store.RedisConfig{Addrs: []string{"a:1"}, SentinelPassword: "x"}, "SentinelPassword is set but SentinelMaster is not"},
		"bad address":             {store.RedisConfig{Addrs: []string{"a:1", "b"}}, `Addrs[1] "b" is not host:port`},
		"bad scheme":              {store.RedisConfig{URL: "http://a:1"}, `scheme "http"`},
		"bad URL":                 {store.RedisConfig{URL: "redis://user:hunter2@a:1/x"}, "invalid database number"},
		"unparsable URL":          {store.RedisConfig{URL: "redis://user:hunter2@a:1/%zz"}, "URL:"},
		"unknown URL option":      {store.RedisConfig{URL: "redis://a:1?colour=blue"}, "unexpected option: colour"},
		"TLS with redis://":       {store.RedisConfig{URL: "redis://a:1", TLS: true}, `use "rediss://"`},
		"CA without TLS":          {store.RedisConfig{Addrs: []string{"a:1"}, CAFile: files.ca}, "need TLS"},
		"DB on Cluster":           {store.RedisConfig{Addrs: []string{"a:1", "b:2"}, DB: 2}, "Redis Cluster"},
		"Cluster endpoint":        {store.RedisConfig{Addrs: []string{"cfg.example:6379"}, Cluster: true}, ""},
		"Cluster with URL":        {store.RedisConfig{URL: "redis://a:1", Cluster: true}, "Cluster needs the nodes"},
		"Cluster and Sentinel":    {store.RedisConfig{Addrs: []string{"a:1"}, Cluster: true, SentinelMaster: "m"}, "exclude each other"},
		"DB on Cluster endpoint":  {store.RedisConfig{Addrs: []string{"a:1"}, Cluster: true, DB: 1}, "database 0 only"},
		"negative DB":             {store.RedisConfig{Addrs: []string{"a:1"}, DB: -1}, "DB -1 is negative"},
		"negative timeout":        {store.RedisConfig{Addrs: []string{"a:1"}, ReadTimeout: -time.Second}, "ReadTimeout -1s is negative"},
		"negative pool":           {store.RedisConfig{Addrs: []string{"a:1"}, PoolSize: -1}, "PoolSize -1 is negative"},
		"cert without key":        {store.RedisConfig{Addrs: []string{"a:1"}, TLS: true, CertFile: files.clientCert}, "CertFile and KeyFile go together"},
		"missing CA file":         {store.RedisConfig{Addrs: []string{"a:1"}, TLS: true, CAFile: filepath.Join(dir, "none.pem")}, "CAFile: open"},
		"CA file without PEM":     {store.RedisConfig{Addrs: []string{"a:1"}, TLS: true, CAFile: garbage}, "holds no PEM certificate"},
		"bad key pair":            {store.RedisConfig{Addrs: []string{"a:1"}, TLS: true, CertFile: files.clientCert, KeyFile: files.serverKey}, "CertFile and KeyFile:"},
		"brace in prefix":         {store.RedisConfig{Addrs: []string{"a:1"}, Prefix: "x{y}"}, "Prefix"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			_, newErr := tc.cfg.NewClient()
			if (err == nil) != (newErr == nil) {
				t.Fatalf("Validate: %v but NewClient: %v", err, newErr)
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate: %v, want an error containing %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

// NewClient builds the client of each topology with the options it was given.
func TestRedisConfigNewClient(t *testing.T) {
	files := writeTLSFiles(t, t.TempDir())
	newClient := func(cfg store.RedisConfig) redis.UniversalClient {
		t.Helper()
		c, err := cfg.NewClient()
		if err != nil {
			t.Fatalf("NewClient(%v): %v", cfg, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	options := func(c redis.UniversalClient) *redis.Options {
		t.Helper()
		client, ok := c.(*redis.Client)
		if !ok {
			t.Fatalf("client is a %T, want a *redis.Client", c)
		}
		return client.Options()
	}

	o := options(newClient(store.RedisConfig{URL: "redis://alice:pw@127.0.0.1:6390/2?dial_timeout=3s&pool_size=7"}))
	if o.Addr != "127.0.0.1:6390" || o.Username != "alice" || o.Password != "pw" || o.DB != 2 ||
		o.DialTimeout != 3*time.Second || o.ReadTimeout != time.Second || o.PoolSize != 7 || !o.ContextTimeoutEnabled || o.TLSConfig != nil {
		t.Errorf("URL options: %+v", o)
	}
	o = options(newClient(store.RedisConfig{URL: "redis://alice:pw@127.0.0.1:6390", Username: "bob", Password: "secret", DB: 4, ReadTimeout: 5 * time.Second}))
	if o.Username != "bob" || o.Password != "secret" || o.DB != 4 || o.ReadTimeout != 5*time.Second {
		t.Errorf("fields do not override the URL: %+v", o)
	}
	o = options(newClient(store.RedisConfig{URL: "rediss://redis.example:6380", CAFile: files.ca}))
	if o.TLSConfig == nil || o.TLSConfig.ServerName != "redis.example" || o.TLSConfig.RootCAs == nil || o.TLSConfig.MinVersion < tls.VersionTLS12 {
		t.Errorf("rediss:// TLS config: %+v", o.TLSConfig)
	}
	o = options(newClient(store.RedisConfig{Addrs: []string{"127.0.0.1:6391"}, Password: "pw", DB: 1, PoolSize: 3}))
	if o.Addr != "127.0.0.1:6391" || o.Password != "pw" || o.DB != 1 || o.PoolSize != 3 || o.DialTimeout != 2*time.Second {
		t.Errorf("single address options: %+v", o)
	}
	// A Sentinel-backed failover client is a *redis.Client too.
	options(newClient(store.RedisConfig{Addrs: []string{"127.0.0.1:26379"}, SentinelMaster: "m"}))
	cluster, ok := newClient(store.RedisConfig{Addrs: []string{"127.0.0.1:7000", "127.0.0.1:7001"}, TLS: true, CAFile: files.ca}).(*redis.ClusterClient)
	if !ok {
		t.Fatal("several addresses: not a *redis.ClusterClient")
	}
	if co := cluster.Options(); !slices.Equal(co.Addrs, []string{"127.0.0.1:7000", "127.0.0.1:7001"}) || co.TLSConfig == nil || co.TLSConfig.ServerName != "" {
		t.Errorf("cluster options: %+v (the TLS server name must be each node's host)", co)
	}
	if _, ok := newClient(store.RedisConfig{Addrs: []string{"127.0.0.1:7000"}, Cluster: true}).(*redis.ClusterClient); !ok {
		t.Error("one address with Cluster: not a *redis.ClusterClient")
	}
}

func TestRedisConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"AUTHGATE_REDIS_ADDRS":             " s1:26379, s2:26379 ,,",
		"AUTHGATE_REDIS_SENTINEL_MASTER":   "mymaster",
		"AUTHGATE_REDIS_USERNAME":          "authgate",
		"AUTHGATE_REDIS_PASSWORD":          "pw",
		"AUTHGATE_REDIS_SENTINEL_PASSWORD": "spw",
		"AUTHGATE_REDIS_TLS":               "true",
		"AUTHGATE_REDIS_CA_FILE":           "/etc/redis/ca.crt",
		"AUTHGATE_REDIS_URL":               "",
	}
	got := store.RedisConfigFromEnv(func(k string) string { return env[k] })
	want := store.RedisConfig{Addrs: []string{"s1:26379", "s2:26379"}, SentinelMaster: "mymaster", Username: "authgate",
		Password: "pw", SentinelPassword: "spw", TLS: true, CAFile: "/etc/redis/ca.crt"}
	if got.String() != want.String() || got.Password != want.Password || got.SentinelPassword != want.SentinelPassword {
		t.Errorf("RedisConfigFromEnv =\n%v\nwant\n%v", got, want)
	}

	got = store.RedisConfigFromEnv(func(k string) string {
		return map[string]string{"AUTHGATE_REDIS_URL": "rediss://r:6380", "AUTHGATE_REDIS_TLS": "yes please"}[k]
	})
	if got.URL != "rediss://r:6380" || len(got.Addrs) != 0 {
		t.Errorf("RedisConfigFromEnv = %v", got)
	}
	if err := got.Validate(); err == nil || !strings.Contains(err.Error(), "AUTHGATE_REDIS_TLS") {
		t.Errorf("Validate of an unreadable AUTHGATE_REDIS_TLS: %v, want an error naming it", err)
	}
	got = store.RedisConfigFromEnv(func(k string) string {
		return map[string]string{"AUTHGATE_REDIS_ADDRS": "cfg:6379", "AUTHGATE_REDIS_CLUSTER": "true"}[k]
	})
	if !got.Cluster || got.Validate() != nil {
		t.Errorf("AUTHGATE_REDIS_CLUSTER=true: %v (Validate: %v)", got, got.Validate())
	}
	got = store.RedisConfigFromEnv(func(k string) string {
		return map[string]string{"AUTHGATE_REDIS_ADDRS": "cfg:6379", "AUTHGATE_REDIS_CLUSTER": "sometimes"}[k]
	})
	if err := got.Validate(); err == nil || !strings.Contains(err.Error(), "AUTHGATE_REDIS_CLUSTER") {
		t.Errorf("Validate of an unreadable AUTHGATE_REDIS_CLUSTER: %v, want an error naming it", err)
	}
	if got := store.RedisConfigFromEnv(func(string) string { return "" }); got.Validate() == nil {
		t.Error("an empty environment validates")
	}
}

func TestRedisConfigStringHidesPasswords(t *testing.T) {
	cfg := store.RedisConfig{URL: "redis://alice:hunter2@r:6379/1", Password: "pw-field-secret", SentinelPassword: "sentinel-secret"}
	for _, s := range []string{cfg.String(), fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg)} {
		for _, secret := range []string{"hunter2", "pw-field-secret", "sentinel-secret"} {
			if strings.Contains(s, secret) {
				t.Errorf("%q shows %q", s, secret)
			}
		}
		if !strings.Contains(s, "alice") || !strings.Contains(s, "r:6379") {
			t.Errorf("%q hides more than the passwords", s)
		}
	}
}

// usedMemory reads used_memory from INFO memory.
func usedMemory(t testing.TB, c *redis.Client) int64 {
	t.Helper()
	info, err := c.Info(t.Context(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no used_memory in INFO memory:\n%s", info)
	return 0
}

// parallel runs f(i) for i in [0, n) on 8 goroutines.
func parallel(t testing.TB, n int, f func(i int) error) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		next atomic.Int64
		fail atomic.Pointer[error]
	)
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := f(i); err != nil {
					fail.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := fail.Load(); err != nil {
		t.Fatal(*err)
	}
}

// Memory per record, as docs/redis.md reports it: 10,000 of each, measured by used_memory.
func TestRedisMemoryPerRecord(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t)
	raw := rawClient(t, srv.Addr)
	clock := storetest.NewClock(t0)
	r := newRedis(t, store.RedisConfig{Addrs: []string{srv.Addr}, Prefix: "authgate"}, clock.Now)
	ctx := t.Context()
	now := clock.Now()
	const n = 10000
	measure := func(what string, limit int64, f func(i int) error) {
		t.Helper()
		before := usedMemory(t, raw)
		parallel(t, n, f)
		per := (usedMemory(t, raw) - before) / n
		t.Logf("%s: %d bytes each", what, per)
		if per <= 0 || per > limit {
			t.Errorf("%s: %d bytes each, want at most %d", what, per, limit)
		}
	}
	measure("session (a user's only one)", 850, func(i int) error {
		user := fmt.Sprintf("user-%06d", i)
		return r.CreateSession(ctx, store.KeyOf("session-"+user), store.Session{
			Policy: "shop/shop", UserID: user, Email: user + "@example.com", CreatedAt: now,
			ExpiresAt: now.Add(168 * time.Hour), MaxExpiresAt: now.Add(720 * time.Hour), LastSeenAt: now,
		})
	})
	measure("session (another of the same user)", 550, func(i int) error {
		user := fmt.Sprintf("user-%06d", i)
		return r.CreateSession(ctx, store.KeyOf("session2-"+user), store.Session{
			Policy: "shop/shop", UserID: user, Email: user + "@example.com", CreatedAt: now,
			ExpiresAt: now.Add(168 * time.Hour), MaxExpiresAt: now.Add(720 * time.Hour), LastSeenAt: now,
		})
	})
	token := func(user string) store.RefreshToken {
		return store.RefreshToken{Policy: "shop/shop", UserID: user, Email: user + "@example.com",
			Family: "sid-" + user + "-0123456789abcdef", IssuedAt: now, ExpiresAt: now.Add(168 * time.Hour)}
	}
	measure("refresh token of a new login (a user's only one)", 1700, func(i int) error {
		user := fmt.Sprintf("api-user-%06d", i)
		return r.CreateRefreshToken(ctx, store.KeyOf("rt0-"+user), token(user))
	})
	measure("refresh token rotation (one more token in the family)", 900, func(i int) error {
		user := fmt.Sprintf("api-user-%06d", i)
		_, _, err := r.RotateRefreshToken(ctx, store.KeyOf("rt0-"+user), store.KeyOf("rt1-"+user), token(user), now, time.Minute)
		return err
	})
}

func benchmarkStore(b *testing.B) (*store.Redis, []store.Key, time.Time) {
	srv := redistest.StartServer(b)
	clock := storetest.NewClock(t0)
	r := newRedis(b, store.RedisConfig{Addrs: []string{srv.Addr}}, clock.Now)
	now := clock.Now()
	keys := make([]store.Key, 1000)
	for i := range keys {
		keys[i] = store.KeyOf(fmt.Sprintf("session-%d", i))
		s := store.Session{Policy: "ns/p", UserID: fmt.Sprintf("u%d", i%100), Email: "u@example.com", CreatedAt: now,
			ExpiresAt: now.Add(time.Hour), MaxExpiresAt: now.Add(24 * time.Hour), LastSeenAt: now}
		if err := r.CreateSession(context.Background(), keys[i], s); err != nil {
			b.Fatal(err)
		}
	}
	return r, keys, now
}

func BenchmarkRedisGetSession(b *testing.B) {
	r, keys, _ := benchmarkStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := r.GetSession(ctx, keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkRedisExtendSession(b *testing.B) {
	r, keys, now := benchmarkStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		seen := now.Add(time.Duration(i) * time.Microsecond)
		if _, err := r.ExtendSession(ctx, keys[i%len(keys)], seen.Add(2*time.Hour), seen); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
