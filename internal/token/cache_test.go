package token_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/token"
)

// switchDenylist revokes everything once switched on.
type switchDenylist struct{ on atomic.Bool }

func (d *switchDenylist) Revoked(string, *token.Claims) bool { return d.on.Load() }

// TestCachedTokensStillExpireAndAreRevoked checks that the verified-token cache changes the cost of
// a check, never its answer.
func TestCachedTokensStillExpireAndAreRevoked(t *testing.T) {
	p, _ := ownPolicy(t, authgatev1.AlgorithmES256)
	other, _ := ownPolicy(t, authgatev1.AlgorithmES256)
	raw, _, err := token.Issue(p, admin(t, p), "family", testNow)
	if err != nil {
		t.Fatal(err)
	}
	c := &movingClock{now: testNow}
	deny := &switchDenylist{}
	v := token.NewVerifier(token.WithClock(c.Now), token.WithDenylist(deny), token.WithCache(100))
	t.Cleanup(v.Close)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := v.Verify(ctx, p, raw); err != nil {
			t.Fatalf("verify %d: %v", i, err)
		}
	}
	// Cached for one policy is not valid for another with other keys.
	if _, err := v.Verify(ctx, other, raw); err == nil {
		t.Fatal("a token cached for one policy passed another")
	}
	deny.on.Store(true)
	claims, err := v.Verify(ctx, p, raw)
	wantRefusal(t, raw, claims, err, token.Revoked)
	deny.on.Store(false)
	c.Advance(15*time.Minute + 31*time.Second) // past exp and the 30 s leeway
	claims, err = v.Verify(ctx, p, raw)
	wantRefusal(t, raw, claims, err, token.Expired)
}

// counter is a token.Counter.
type counter struct{ n atomic.Int64 }

func (c *counter) Inc() { c.n.Add(1) }

// TestCacheCountsLookups: the first check of a token is a miss, the next ones hits, whatever they
// answer; without a cache nothing is counted.
func TestCacheCountsLookups(t *testing.T) {
	p, _ := ownPolicy(t, authgatev1.AlgorithmES256)
	raw, _, err := token.Issue(p, admin(t, p), "family", testNow)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var hits, misses counter
	deny := &switchDenylist{}
	v := newVerifier(t, clock(testNow), token.WithDenylist(deny), token.WithCache(100), token.WithCacheCounters(&hits, &misses))
	for range 3 {
		if _, err := v.Verify(ctx, p, raw); err != nil {
			t.Fatal(err)
		}
	}
	deny.on.Store(true)
	if _, err := v.Verify(ctx, p, raw); err == nil {
		t.Fatal("a revoked token passed")
	}
	if _, err := v.Verify(ctx, p, "not a token"); err == nil {
		t.Fatal("junk passed")
	}
	if hits.n.Load() != 3 || misses.n.Load() != 2 {
		t.Errorf("hits %d, misses %d; want 3 (two checks and the revoked one) and 2 (the first and the junk)", hits.n.Load(), misses.n.Load())
	}

	var none counter
	uncached := newVerifier(t, clock(testNow), token.WithCacheCounters(&none, &none))
	if _, err := uncached.Verify(ctx, p, raw); err != nil {
		t.Fatal(err)
	}
	if none.n.Load() != 0 {
		t.Errorf("a verifier without a cache counted %d lookups", none.n.Load())
	}
}
