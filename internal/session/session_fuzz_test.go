package session_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/session"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/store/storetest"
)

// countingStore counts the session reads that reach the store.
type countingStore struct {
	store.Store
	reads atomic.Int64
}

func (c *countingStore) GetSession(ctx context.Context, key store.Key) (store.Session, error) {
	c.reads.Add(1)
	return c.Store.GetSession(ctx, key)
}

func fixturePolicy(t testing.TB) *policy.Policy {
	t.Helper()
	p, err := policy.Compile(fixture.AuthPolicy(), fixture.Secrets())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// isSessionID reports whether s has the form of a session ID: 43 base64url characters.
func isSessionID(s string) bool {
	return len(s) == 43 && strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == ""
}

// FuzzSessionCheck presents arbitrary session cookie values: only the one live session's ID passes;
// every other value is ErrNoSession, and one that is not shaped like an ID never costs a store read;
// logging out with it leaves the live session alone.
func FuzzSessionCheck(f *testing.F) {
	clock := storetest.NewClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	st := &countingStore{Store: store.NewMemory(store.WithClock(clock.Now))}
	f.Cleanup(func() { _ = st.Close() })
	m := session.NewManager(st, clock.Now)
	p := fixturePolicy(f)
	user, _ := p.Login().User("admin@example.com")
	live, _, err := m.Create(context.Background(), p, user)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{live, live[:42], live + "A", strings.ToUpper(live), " " + live, `"` + live + `"`, "", "=", strings.Repeat("A", 43),
		strings.Repeat("/", 43), strings.Repeat("é", 21) + "a", live[:42] + "=", strings.Repeat("A", 10000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		before := st.reads.Load()
		res, err := m.Check(context.Background(), p, id)
		reads := st.reads.Load() - before
		switch {
		case id == live:
			if err != nil || res.User.ID != user.ID {
				t.Fatalf("the live session failed its check: %+v, %v", res, err)
			}
			return
		case !errors.Is(err, session.ErrNoSession):
			t.Fatalf("Check(%q) = %+v, %v; want ErrNoSession", id, res, err)
		case !isSessionID(id) && reads != 0:
			t.Fatalf("Check(%q), not an ID, read the store %d times", id, reads)
		}
		clear, err := m.Delete(context.Background(), p, id)
		if err != nil || clear == "" {
			t.Fatalf("Delete(%q) = %q, %v", id, clear, err)
		}
		if _, err := m.Check(context.Background(), p, live); err != nil {
			t.Fatalf("logging out with %q ended the live session: %v", id, err)
		}
	})
}

// FuzzSessionCookie renders the session cookie for any ID-shaped value and lifetime: a browser
// parses back the policy's cookie with exactly that value and the policy's attributes.
func FuzzSessionCookie(f *testing.F) {
	p := fixturePolicy(f)
	settings, _ := p.Session()
	f.Add(make([]byte, 32), int64(168*3600))
	f.Add([]byte("\xff\xfe\xfd"), int64(0))
	f.Add([]byte("a"), int64(-5))
	f.Add([]byte("0123456789abcdef0123456789abcdef"), int64(1<<40))
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw []byte, secs int64) {
		secs %= 100 * 365 * 24 * 3600
		id := base64.RawURLEncoding.EncodeToString(raw)
		expires := now.Add(time.Duration(secs) * time.Second)
		c, err := http.ParseSetCookie(session.Cookie(settings, id, expires, now))
		if err != nil {
			t.Fatalf("the cookie for %q does not parse: %v", id, err)
		}
		if c.Name != settings.CookieName || c.Value != id || !c.HttpOnly || c.Secure != settings.Secure ||
			c.SameSite != settings.SameSite || c.Path != settings.CookiePath || c.Domain != strings.TrimPrefix(settings.CookieDomain, ".") {
			t.Fatalf("cookie %+v for ID %q", c, id)
		}
		if secs > 0 && c.MaxAge != int(secs) || secs <= 0 && c.MaxAge >= 0 {
			t.Fatalf("cookie for a session ending in %ds has Max-Age %d", secs, c.MaxAge)
		}
		clear, err := http.ParseSetCookie(session.ClearCookie(settings))
		if err != nil || clear.Name != settings.CookieName || clear.Value != "" || clear.MaxAge >= 0 || clear.Path != c.Path || clear.Domain != c.Domain {
			t.Fatalf("the clearing cookie %+v, %v does not clear %+v", clear, err, c)
		}
	})
}

// FuzzCacheApply feeds the session cache arbitrary revocations, as they arrive from the store's
// feed: a session revocation evicts exactly the session whose key's hex it names (in any case, as
// hex decoding allows), and nothing else is ever evicted but by a user revocation of its user.
func FuzzCacheApply(f *testing.F) {
	p := fixturePolicy(f)
	user, _ := p.Login().User("admin@example.com")
	f.Add(string(store.RevokeSession), "", "", true)
	f.Add(string(store.RevokeSession), "", "zz", false)
	f.Add(string(store.RevokeUser), "shop/shop", "admin@example.com", false)
	f.Add(string(store.RevokeUser), "shop/shop", "other", false)
	f.Add(string(store.RevokeFamily), "shop/shop", "x", false)
	f.Add(string(store.SubscriptionLost), "", "", false)
	f.Add(string(store.SubscriptionRestored), "", "", false)
	f.Add("", "", "00", false)
	f.Fuzz(func(t *testing.T, kind, pol, value string, ownKey bool) {
		clock := storetest.NewClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
		st := &feedStore{Store: store.NewMemory(store.WithClock(clock.Now))}
		defer st.Close()
		cache := session.NewCache(16, time.Hour, clock.Now)
		defer cache.Follow(st)()
		m := session.NewManager(st, clock.Now, session.WithCache(cache))
		id, _, err := m.Create(context.Background(), p, user)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Check(context.Background(), p, id); err != nil || cache.Len() != 1 {
			t.Fatalf("the session is not cached: %v, %d entries", err, cache.Len())
		}
		key := store.KeyOf(id)
		if ownKey {
			value = hex.EncodeToString(key[:])
			if len(pol)%2 == 1 {
				value = strings.ToUpper(value)
			}
		}
		st.fn(store.Revocation{Kind: store.RevocationKind(kind), Policy: pol, Value: value, At: clock.Now(), Until: clock.Now().Add(time.Hour)})
		evicted := cache.Len() == 0
		var want bool
		switch store.RevocationKind(kind) {
		case store.RevokeSession:
			b, err := hex.DecodeString(value)
			want = err == nil && string(b) == string(key[:])
		case store.RevokeUser:
			want = pol == p.Name() && value == user.ID
		case store.SubscriptionRestored:
			want = true
		}
		if evicted != want {
			t.Fatalf("revocation %q %q %q: evicted %v, want %v", kind, pol, value, evicted, want)
		}
	})
}

// feedStore hands the test the subscriber, so that it can deliver any revocation.
type feedStore struct {
	store.Store
	fn func(store.Revocation)
}

func (s *feedStore) Subscribe(fn func(store.Revocation)) func() {
	s.fn = fn
	return func() {}
}
