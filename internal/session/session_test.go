package session_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/session"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/store/storetest"
)

func compile(t *testing.T, mutate func(*authgatev1.AuthPolicy)) *policy.Policy {
	t.Helper()
	ap := fixture.AuthPolicy()
	if mutate != nil {
		mutate(ap)
	}
	p, err := policy.Compile(ap, fixture.Secrets())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id, err := session.NewID()
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 43 || strings.ContainsAny(id, "+/=") || seen[id] {
			t.Fatalf("ID %q: want 43 base64url characters, never repeated", id)
		}
		seen[id] = true
	}
}

func TestCreateStoresOnlyTheHash(t *testing.T) {
	clock := storetest.NewClock(time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC))
	st := store.NewMemory(store.WithClock(clock.Now))
	m := session.NewManager(st, clock.Now)
	p := compile(t, nil)
	u, _ := p.Login().User("admin@example.com")
	ctx := context.Background()
	id, cookie, err := m.Create(ctx, p, u)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := st.GetSession(ctx, store.KeyOf(id))
	if err != nil {
		t.Fatalf("the session is not stored under the SHA-256 of its ID: %v", err)
	}
	if rec.Policy != "shop/shop" || rec.UserID != "admin@example.com" || !rec.ExpiresAt.Equal(clock.Now().Add(168*time.Hour)) ||
		!rec.MaxExpiresAt.Equal(clock.Now().Add(720*time.Hour)) {
		t.Errorf("record %+v", rec)
	}
	c, err := http.ParseSetCookie(cookie)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "shop_session" || c.Value != id || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode ||
		c.Domain != "example.com" || c.Path != "/" || c.MaxAge != 168*3600 {
		t.Errorf("cookie %q", cookie)
	}
	// A second login gets a fresh ID.
	id2, _, err := m.Create(ctx, p, u)
	if err != nil || id2 == id {
		t.Fatalf("second login reused the ID: %v", err)
	}
}

func TestCheckAndDelete(t *testing.T) {
	st := store.NewMemory()
	m := session.NewManager(st, nil)
	p := compile(t, nil)
	other := compile(t, func(ap *authgatev1.AuthPolicy) { ap.Name = "other" })
	u, _ := p.Login().User("viewer@example.com")
	ctx := context.Background()
	id, _, err := m.Create(ctx, p, u)
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Check(ctx, p, id)
	if err != nil || res.User.Email != "viewer@example.com" || res.SetCookie != "" {
		t.Fatalf("Check = %+v, %v", res, err)
	}
	for name, bad := range map[string]string{"empty": "", "short": "abc", "long": id + "A", "bad chars": strings.Repeat("*", 43)} {
		if _, err := m.Check(ctx, p, bad); !errors.Is(err, session.ErrNoSession) {
			t.Errorf("%s ID: %v", name, err)
		}
	}
	if _, err := m.Check(ctx, other, id); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("another policy accepted the session: %v", err)
	}
	// Deleting through another policy leaves it alone.
	if _, err := m.Delete(ctx, other, id); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Check(ctx, p, id); err != nil {
		t.Fatalf("another policy's logout ended the session: %v", err)
	}
	clear, err := m.Delete(ctx, p, id)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := http.ParseSetCookie(clear); err != nil || c.MaxAge >= 0 || c.Name != "shop_session" || !c.HttpOnly {
		t.Errorf("clearing cookie %q", clear)
	}
	if _, err := m.Check(ctx, p, id); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("after logout: %v", err)
	}
}

func TestDisabledUserHasNoSession(t *testing.T) {
	st := store.NewMemory()
	m := session.NewManager(st, nil)
	p := compile(t, nil)
	u, _ := p.Login().User("viewer@example.com")
	id, _, err := m.Create(context.Background(), p, u)
	if err != nil {
		t.Fatal(err)
	}
	secrets := fixture.Secrets()
	users := strings.Replace(string(secrets["shop-users"]["users.yaml"]), "roles: [viewer]", "roles: [viewer]\n  disabled: true", 1)
	disabled, err := policy.Compile(fixture.AuthPolicy(), map[string]map[string][]byte{
		"shop-users": {"users.yaml": []byte(users)}, "shop-jwt-keys": secrets["shop-jwt-keys"],
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Check(context.Background(), disabled, id); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("a disabled user's session passed: %v", err)
	}
}

func BenchmarkCheck(b *testing.B) {
	st := store.NewMemory()
	m := session.NewManager(st, nil)
	ap := fixture.AuthPolicy()
	p, err := policy.Compile(ap, fixture.Secrets())
	if err != nil {
		b.Fatal(err)
	}
	u, _ := p.Login().User("admin@example.com")
	id, _, err := m.Create(context.Background(), p, u)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Check(context.Background(), p, id); err != nil {
			b.Fatal(err)
		}
	}
}

// stalledStore is a store that never answers session reads in time: each waits for its context to
// end, as a hung Redis connection does, and reports the deadline it was given.
type stalledStore struct {
	store.Store
	deadlines chan time.Duration
}

func (s stalledStore) GetSession(ctx context.Context, key store.Key) (store.Session, error) {
	d, ok := ctx.Deadline()
	if !ok {
		s.deadlines <- -1
		return store.Session{}, errors.New("no deadline: the check would wait as long as the store")
	}
	s.deadlines <- time.Until(d)
	<-ctx.Done()
	return store.Session{}, fmt.Errorf("stalled: %w: %w", store.ErrUnavailable, ctx.Err())
}

// A check's store calls carry a deadline below Envoy's 200 ms default, so a stalled store ends in
// the policy's onStoreUnavailable answer, not in the proxy's timeout.
func TestCheckBoundsTheStore(t *testing.T) {
	p := compile(t, nil)
	for name, tc := range map[string]struct {
		opts []session.Option
		max  time.Duration
	}{
		"default": {nil, session.DefaultCheckTimeout},
		"set":     {[]session.Option{session.WithCheckTimeout(20 * time.Millisecond)}, 20 * time.Millisecond},
	} {
		t.Run(name, func(t *testing.T) {
			st := stalledStore{Store: store.NewMemory(), deadlines: make(chan time.Duration, 1)}
			m := session.NewManager(st, nil, tc.opts...)
			id, err := session.NewID()
			if err != nil {
				t.Fatal(err)
			}
			_, err = m.Check(context.Background(), p, id)
			if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Check on a stalled store: %v, want an unavailable store past its deadline", err)
			}
			if d := <-st.deadlines; d <= 0 || d > tc.max {
				t.Errorf("the store call's deadline was %v away, want at most %v", d, tc.max)
			}
		})
	}
	if session.DefaultCheckTimeout >= 200*time.Millisecond {
		t.Errorf("DefaultCheckTimeout %v is not below Envoy's default ext_authz timeout", session.DefaultCheckTimeout)
	}
}
