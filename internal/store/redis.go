package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix is the prefix of every key, and of the channel, of a Redis store whose
// RedisOptions name none.
const DefaultRedisPrefix = "authgate"

// redisTTLMargin is how much longer than its record Redis keeps a key: Redis expires keys by its
// own clock, and a replica promoted after a failover by the replica's. A read still decides by the
// store's clock, so the margin never makes a dead record live.
const redisTTLMargin = time.Second

// Timing of the subscription: how long to wait for Redis to confirm it; how long a silent
// connection may stay silent before a PING, which must be answered within as long again; how long
// to wait before subscribing again after a failure, doubling from the least to the most.
const (
	subscribeTimeout         = 5 * time.Second
	redisHealthCheckInterval = 5 * time.Second
	redisResubscribeMin      = 100 * time.Millisecond
	redisResubscribeMax      = 2 * time.Second
)

// Errors of misuse: neither ErrNotFound nor ErrUnavailable (see Store).
var (
	errRedisSessionExists = errors.New("redis store: a session with this key exists already")
	errRedisTokenExists   = errors.New("redis store: a refresh token with this key exists already")
	errRedisOtherFamily   = errors.New("redis store: the successor must have the policy and family of the token it replaces")
	errRedisSelfSuccessor = errors.New("redis store: a refresh token cannot be its own successor")
	errRedisZeroNow       = errors.New("redis store: rotation time is zero")
)

// errRedisClosed is returned by every method of a closed Redis.
var errRedisClosed = fmt.Errorf("%w: redis store is closed", ErrUnavailable)

// RedisOptions configures NewRedis.
type RedisOptions struct {
	// Prefix starts every key and the revocation channel ("<Prefix>:..."), so that several
	// installations can share a Redis. It must not hold "{" or "}", which Redis Cluster reads as a
	// hash tag. Empty means DefaultRedisPrefix ("authgate").
	Prefix string
	// Clock is the store's clock: it decides what has expired, and sets each key's time to live
	// (see Redis). Nil means time.Now.
	Clock func() time.Time
}

// Redis is a Store kept in Redis, shared by every replica of the webhook: standalone, behind
// Sentinel, or a Redis Cluster (any redis.UniversalClient; see RedisConfig). Its zero value is not
// usable: call NewRedis. docs/redis.md is the operator's view of it.
//
// # Keys
//
// Keys hold SHA-256 hashes only (hex): of session IDs and refresh tokens (the Key), and of the
// policy, user and family strings, which are opaque to the store:
//
//	<prefix>:s:<key>                  a session: a hash of its fields
//	<prefix>:{u:<user id>}:s          the user's sessions (keys), a sorted set scored by the
//	                                  latest time (µs) each can live: its MaxExpiresAt
//	<prefix>:{u:<user id>}:f          the user's refresh-token families (ids), a sorted set scored
//	                                  by their tokens' latest expiry (µs)
//	<prefix>:rt:<key>                 a refresh token's family id (immutable)
//	<prefix>:{f:<family id>}:t:<key>  a refresh token: a hash of its fields
//	<prefix>:{f:<family id>}:m        the family's tokens (keys), a sorted set scored by expiry
//	<prefix>:{f:<family id>}:r        the family's revocation: until when (µs)
//	<prefix>:revocations              revocations in force, a sorted set of JSON scored by Until
//
// where the user id is sha256(policy, user) and the family id sha256(policy, family). A family's
// keys share one hash tag, so every change to a family is one Lua script on one Redis Cluster
// slot; a session is one key. Changes
// that span slots (the user index with a record, a record with its revocation, RevokeUser) are
// ordered so that a failure in between leaves at worst an index entry that names nothing, which
// costs memory until its score passes and which RevokeUser skips; they are not atomic.
//
// # Time
//
// Times are stored as Unix microseconds, in UTC: they read back truncated to the microsecond.
// Whether a record is live is decided by the store's clock (RedisOptions.Clock), never by Redis.
// Every key has a time to live, set relative to that clock (PEXPIRE, not PEXPIREAT): the record's
// expiry minus the clock's now, plus a second. Redis therefore keeps a record at least as long as
// the store's clock says it lives, whatever Redis's own clock reads, and drops it soon after; with
// a clock that runs ahead of real time (a test), expired records stay until their time to live
// runs out in real time, and are treated as missing meanwhile.
//
// # Revocations
//
// A revocation is recorded in <prefix>:revocations and published, in the same Lua script, as the
// JSON of a Revocation ({"Kind","Policy","Value","At","Until"}, times in RFC 3339 with
// nanoseconds) on the channel <prefix>:revocations. Identical revocations are kept once.
// Revocations returns them ordered by Until.
//
// Subscribe starts one Pub/Sub connection, the first time it is called, and one goroutine that
// calls every subscriber, in the order Redis delivered the messages. Pub/Sub does not keep what
// was published while a connection was down: when the connection breaks, or stays silent through
// a PING (5 seconds, then 5 more), the subscribers receive SubscriptionLost, and once a new
// connection is subscribed, SubscriptionRestored; caches and denylists then reload (see
// SubscriptionLost). A subscriber may call the store, but not Subscribe.
//
// # Retried writes
//
// go-redis sends a command again after a network error, so a write may reach Redis twice. Every
// script tolerates that: creating the very record a key holds again succeeds (CreateSession and
// CreateRefreshToken; another record at a live key is still refused), a rotation seen twice is
// Replayed the second time, and a revocation is recorded once and at worst published twice.
//
// # Errors
//
// Every error that is not ErrNotFound or a documented misuse wraps ErrUnavailable and the cause:
// a refused connection, a timeout, a closed client, a Redis error. A context that ends while a
// method waits for Redis gives such an error, wrapping ctx.Err() too.
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	channel string
	clock   func() time.Time

	closed atomic.Bool
	// bg is the context of the subscription's work, cancelled by Close.
	bg       context.Context
	cancelBg context.CancelFunc

	mu sync.Mutex
	// subscribers is copied on change, never changed in place (see Memory.subscribers).
	subscribers    []subscriber
	nextSubscriber uint64
	// pending are the subscribers waiting for the answer to their PING, by its payload.
	pending map[string]*pendingSubscriber
	// pubsub is the current subscription, which Close closes.
	pubsub *redis.PubSub
	// feedDown is set from SubscriptionLost to SubscriptionRestored.
	feedDown bool
	// ready is closed after the first attempt to subscribe, receiverDone when the goroutine that
	// receives revocations has returned; both are nil until the first Subscribe.
	ready, receiverDone chan struct{}
	// deliverMu orders deliveries, so that every subscriber sees SubscriptionLost and
	// SubscriptionRestored alternate.
	deliverMu sync.Mutex
}

var _ Store = (*Redis)(nil)

// NewRedis returns a Store kept in Redis through client, which it owns from then on: Close closes
// it. It does not contact Redis: a store made while Redis is down answers with errors wrapping
// ErrUnavailable until Redis is back. A context's deadline bounds a command only if the client has
// ContextTimeoutEnabled, as RedisConfig.NewClient's have.
func NewRedis(client redis.UniversalClient, opts RedisOptions) (*Redis, error) {
	if client == nil {
		return nil, errors.New("redis store: no client")
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	if err := validRedisPrefix(prefix); err != nil {
		return nil, err
	}
	clock := opts.Clock
	if clock == nil {
		clock = time.Now
	}
	bg, cancel := context.WithCancel(context.Background())
	return &Redis{
		client: client, prefix: prefix, channel: prefix + ":revocations", clock: clock,
		bg: bg, cancelBg: cancel,
	}, nil
}

func validRedisPrefix(prefix string) error {
	if strings.ContainsAny(prefix, "{}") {
		return fmt.Errorf("redis store: prefix %q holds a brace, which Redis Cluster reads as a hash tag", prefix)
	}
	return nil
}

// CreateSession implements Store. A key whose session has expired may be used again.
func (r *Redis) CreateSession(ctx context.Context, key Key, s Session) error {
	const op = "create session"
	if err := r.begin(ctx, op); err != nil {
		return err
	}
	now := r.clock()
	// The index first: a failure between the two writes leaves an index entry naming nothing,
	// never a session that "log out everywhere" cannot find.
	if err := r.indexAdd(ctx, r.sessionIndexKey(s.Policy, s.UserID), hex.EncodeToString(key[:]), sessionIndexScore(s), now); err != nil {
		return r.unavailable(ctx, op, err)
	}
	args := append([]any{micros(now), encTime(s.ExpiresAt)}, sessionPairs(s)...)
	created, err := scriptSessionCreate.Run(ctx, r.client, []string{r.sessionKey(key)}, args...).Int()
	if err != nil {
		return r.unavailable(ctx, op, err)
	}
	if created == 0 {
		return errRedisSessionExists
	}
	return nil
}

// GetSession implements Store.
func (r *Redis) GetSession(ctx context.Context, key Key) (Session, error) {
	const op = "get session"
	if err := r.begin(ctx, op); err != nil {
		return Session{}, err
	}
	vals, err := r.client.HMGet(ctx, r.sessionKey(key), sessionFields...).Result()
	if err != nil {
		return Session{}, r.unavailable(ctx, op, err)
	}
	s, ok, err := decodeSession(vals)
	if err != nil {
		return Session{}, r.unavailable(ctx, op, err)
	}
	if !ok || !r.live(s.ExpiresAt) {
		return Session{}, ErrNotFound
	}
	return s, nil
}

// ExtendSession implements Store. LastSeenAt never goes back: an earlier lastSeenAt leaves it.
func (r *Redis) ExtendSession(ctx context.Context, key Key, expiresAt, lastSeenAt time.Time) (Session, error) {
	const op = "extend session"
	if err := r.begin(ctx, op); err != nil {
		return Session{}, err
	}
	res, err := scriptSessionExtend.Run(ctx, r.client, []string{r.sessionKey(key)},
		micros(r.clock()), encTime(expiresAt), encTime(lastSeenAt)).Slice()
	if err != nil {
		return Session{}, r.unavailable(ctx, op, err)
	}
	if replyCode(res) != 1 {
		return Session{}, ErrNotFound
	}
	s, _, err := decodeSession(res[1:])
	if err != nil {
		return Session{}, r.unavailable(ctx, op, err)
	}
	return s, nil
}

// DeleteSession implements Store. Deleting a missing or expired session publishes nothing.
func (r *Redis) DeleteSession(ctx context.Context, key Key) error {
	const op = "delete session"
	if err := r.begin(ctx, op); err != nil {
		return err
	}
	now := r.clock()
	res, err := scriptSessionDelete.Run(ctx, r.client, []string{r.sessionKey(key)}, micros(now)).Slice()
	if err != nil {
		return r.unavailable(ctx, op, err)
	}
	code := replyCode(res)
	if code == 0 {
		return nil
	}
	s, _, err := decodeSession(res[1:])
	if err != nil {
		return r.unavailable(ctx, op, err)
	}
	var rev *Revocation
	if code == 1 {
		rev = &Revocation{Kind: RevokeSession, Policy: s.Policy, Value: hex.EncodeToString(key[:]), At: now, Until: s.ExpiresAt}
	}
	err = r.pipeline(ctx, func(p redis.Pipeliner) {
		p.ZRem(ctx, r.sessionIndexKey(s.Policy, s.UserID), hex.EncodeToString(key[:]))
		if rev != nil {
			r.queueRevocation(ctx, p, *rev, now)
		}
	})
	if err != nil {
		return r.unavailable(ctx, op, err)
	}
	return nil
}

// RevokeUser implements Store. It counts the live sessions it deleted. It is not atomic: it reads
// the user index, then deletes each session and each family's tokens of the user (each of those
// atomically), then publishes. A session or token created meanwhile may survive it.
func (r *Redis) RevokeUser(ctx context.Context, policy, userID string, now, until time.Time) (int, error) {
	const op = "revoke user"
	if err := r.begin(ctx, op); err != nil {
		return 0, err
	}
	clock := r.clock()
	sessionIndex, familyIndex := r.userKeys(policy, userID)
	var readSessions, readFamilies *redis.ZSliceCmd
	if err := r.pipeline(ctx, func(p redis.Pipeliner) {
		p.ZRemRangeByScore(ctx, sessionIndex, "-inf", micros(clock))
		p.ZRemRangeByScore(ctx, familyIndex, "-inf", micros(clock))
		readSessions = p.ZRangeWithScores(ctx, sessionIndex, 0, -1)
		readFamilies = p.ZRangeWithScores(ctx, familyIndex, 0, -1)
	}); err != nil {
		return 0, r.unavailable(ctx, op, err)
	}
	sessions, families := readSessions.Val(), readFamilies.Val()
	var sessionCmds, familyCmds []*redis.Cmd
	if len(sessions)+len(families) > 0 {
		err := r.pipeline(ctx, func(p redis.Pipeliner) {
			for _, e := range sessions {
				k := r.prefix + ":s:" + e.Member.(string)
				sessionCmds = append(sessionCmds, scriptSessionRevoke.Eval(ctx, p, []string{k}, micros(clock), policy, userID))
			}
			for _, e := range families {
				fam := r.familyKeys(e.Member.(string))
				familyCmds = append(familyCmds, scriptFamilyRevokeUser.Eval(ctx, p, []string{fam.members}, micros(clock), fam.tokenPrefix, policy, userID))
			}
		})
		if err != nil {
			return 0, r.unavailable(ctx, op, err)
		}
	}
	n := 0
	for _, c := range sessionCmds {
		if code, _ := c.Int(); code == 2 {
			n++
		}
	}
	var pointers []string
	for _, c := range familyCmds {
		hexes, _ := c.StringSlice()
		for _, h := range hexes {
			pointers = append(pointers, r.prefix+":rt:"+h)
		}
	}
	rev := Revocation{Kind: RevokeUser, Policy: policy, Value: userID, At: now, Until: until}
	err := r.pipeline(ctx, func(p redis.Pipeliner) {
		// Only the entries as read: one that a concurrent login raised stays.
		for _, idx := range []struct {
			key     string
			entries []redis.Z
		}{{sessionIndex, sessions}, {familyIndex, families}} {
			if len(idx.entries) == 0 {
				continue
			}
			args := make([]any, 0, 2*len(idx.entries))
			for _, e := range idx.entries {
				args = append(args, e.Member, strconv.FormatFloat(e.Score, 'f', -1, 64))
			}
			scriptIndexRemove.Eval(ctx, p, []string{idx.key}, args...)
		}
		for _, k := range pointers {
			p.Del(ctx, k)
		}
		r.queueRevocation(ctx, p, rev, clock)
	})
	if err != nil {
		return 0, r.unavailable(ctx, op, err)
	}
	return n, nil
}

// CreateRefreshToken implements Store. A token of a family revoked until a later time is refused,
// and so is a key that holds a live token.
func (r *Redis) CreateRefreshToken(ctx context.Context, key Key, t RefreshToken) error {
	const op = "create refresh token"
	if err := r.begin(ctx, op); err != nil {
		return err
	}
	now := r.clock()
	id := familyID(t.Policy, t.Family)
	fam := r.familyKeys(id)
	h := hex.EncodeToString(key[:])
	var pointer *redis.StringCmd
	// The index first, as in CreateSession; the pointer is read to detect a key taken by a token
	// of another family.
	if err := r.pipeline(ctx, func(p redis.Pipeliner) {
		pointer = p.Get(ctx, r.pointerKey(key))
		r.queueIndexAdd(ctx, p, r.familyIndexKey(t.Policy, t.UserID), id, t.ExpiresAt, now)
	}); err != nil {
		return r.unavailable(ctx, op, err)
	}
	if other := pointer.Val(); other != "" && other != id {
		taken, err := r.tokenLiveIn(ctx, other, h, now)
		if err != nil {
			return r.unavailable(ctx, op, err)
		}
		if taken {
			return errRedisTokenExists
		}
	}
	args := append([]any{micros(now), h, encTime(t.ExpiresAt)}, tokenPairs(t)...)
	code, err := scriptTokenCreate.Run(ctx, r.client, []string{fam.token(h), fam.members, fam.revoked}, args...).Int()
	if err != nil {
		return r.unavailable(ctx, op, err)
	}
	switch code {
	case -1:
		return errRedisTokenExists
	case -2:
		return fmt.Errorf("redis store: refresh-token family %q of policy %q is revoked", t.Family, t.Policy)
	}
	if ttl := ttlMillis(t.ExpiresAt, now); ttl > 0 {
		if err := r.client.Set(ctx, r.pointerKey(key), id, time.Duration(ttl)*time.Millisecond).Err(); err != nil {
			return r.unavailable(ctx, op, err)
		}
	}
	return nil
}

// RotateRefreshToken implements Store. Liveness is decided by the store's clock; now is the time
// recorded as UsedAt and compared with it for the grace window, and must not be zero. next must
// have the Policy and Family of old: otherwise nothing changes and the error says so.
func (r *Redis) RotateRefreshToken(ctx context.Context, old, successor Key, next RefreshToken, now time.Time, grace time.Duration) (RotateOutcome, RefreshToken, error) {
	const op = "rotate refresh token"
	if err := r.begin(ctx, op); err != nil {
		return 0, RefreshToken{}, err
	}
	if now.IsZero() {
		// A zero UsedAt means unused: the token could be rotated again.
		return 0, RefreshToken{}, errRedisZeroNow
	}
	if successor == old {
		return 0, RefreshToken{}, errRedisSelfSuccessor
	}
	clock := r.clock()
	oldHex, succHex := hex.EncodeToString(old[:]), hex.EncodeToString(successor[:])
	var oldPointer, succPointer *redis.StringCmd
	// The successor's index entry comes before its record (see CreateRefreshToken).
	if err := r.pipeline(ctx, func(p redis.Pipeliner) {
		oldPointer = p.Get(ctx, r.pointerKey(old))
		succPointer = p.Get(ctx, r.pointerKey(successor))
		r.queueIndexAdd(ctx, p, r.familyIndexKey(next.Policy, next.UserID), familyID(next.Policy, next.Family), next.ExpiresAt, clock)
	}); err != nil {
		return 0, RefreshToken{}, r.unavailable(ctx, op, err)
	}
	id := oldPointer.Val()
	if id == "" {
		return 0, RefreshToken{}, ErrNotFound
	}
	// A successor key that holds a live token of another family is taken; one of this family is
	// checked by the script.
	takenElsewhere := "0"
	if other := succPointer.Val(); other != "" && other != id {
		taken, err := r.tokenLiveIn(ctx, other, succHex, clock)
		if err != nil {
			return 0, RefreshToken{}, r.unavailable(ctx, op, err)
		}
		if taken {
			takenElsewhere = "1"
		}
	}
	fam := r.familyKeys(id)
	args := append([]any{
		micros(clock), encTime(now), micros(now.Add(-grace)), oldHex, succHex, next.Policy, next.Family,
		takenElsewhere, encTime(next.ExpiresAt), fam.tokenPrefix,
	}, tokenPairs(next)...)
	res, err := scriptTokenRotate.Run(ctx, r.client, []string{fam.token(oldHex), fam.token(succHex), fam.members, fam.revoked}, args...).Slice()
	if err != nil {
		return 0, RefreshToken{}, r.unavailable(ctx, op, err)
	}
	code := replyCode(res)
	switch code {
	case 0:
		return 0, RefreshToken{}, ErrNotFound
	case -1:
		return 0, RefreshToken{}, errRedisOtherFamily
	case -2:
		return 0, RefreshToken{}, errRedisTokenExists
	}
	before, err := decodeToken(res[1 : 1+len(tokenFields)])
	if err != nil {
		return 0, RefreshToken{}, r.unavailable(ctx, op, err)
	}
	switch code {
	case 1, 2:
		succExpires := next.ExpiresAt
		if code == 2 {
			// Replayed: the successor is the record the first rotation stored.
			if succExpires, err = decTime(replyString(res, 1+len(tokenFields))); err != nil {
				return 0, RefreshToken{}, r.unavailable(ctx, op, err)
			}
		}
		if ttl := ttlMillis(succExpires, clock); ttl > 0 {
			if err := r.client.Set(ctx, r.pointerKey(successor), id, time.Duration(ttl)*time.Millisecond).Err(); err != nil {
				return 0, RefreshToken{}, r.unavailable(ctx, op, err)
			}
		}
		if code == 1 {
			return Rotated, before, nil
		}
		return Replayed, before, nil
	case 3:
		until, err := decTime(replyString(res, 1+len(tokenFields)))
		if err != nil {
			return 0, RefreshToken{}, r.unavailable(ctx, op, err)
		}
		rev := Revocation{Kind: RevokeFamily, Policy: before.Policy, Value: before.Family, At: now, Until: until}
		if err := r.afterFamilyRevoked(ctx, res[2+len(tokenFields):], id, rev, clock); err != nil {
			return 0, RefreshToken{}, r.unavailable(ctx, op, err)
		}
		return Reused, before, nil
	}
	return 0, RefreshToken{}, r.unavailable(ctx, op, fmt.Errorf("unexpected rotation reply %v", res))
}

// GetRefreshToken implements Store.
func (r *Redis) GetRefreshToken(ctx context.Context, key Key) (RefreshToken, error) {
	const op = "get refresh token"
	if err := r.begin(ctx, op); err != nil {
		return RefreshToken{}, err
	}
	id, err := r.client.Get(ctx, r.pointerKey(key)).Result()
	if errors.Is(err, redis.Nil) {
		return RefreshToken{}, ErrNotFound
	}
	if err != nil {
		return RefreshToken{}, r.unavailable(ctx, op, err)
	}
	vals, err := r.client.HMGet(ctx, r.familyKeys(id).token(hex.EncodeToString(key[:])), tokenFields...).Result()
	if err != nil {
		return RefreshToken{}, r.unavailable(ctx, op, err)
	}
	t, err := decodeToken(vals)
	if err != nil {
		return RefreshToken{}, r.unavailable(ctx, op, err)
	}
	if !r.live(t.ExpiresAt) {
		return RefreshToken{}, ErrNotFound
	}
	return t, nil
}

// RevokeFamily implements Store. Families are told apart by policy: revoking a family of one policy
// leaves a family of the same name under another. At of the revocation is the store's clock.
func (r *Redis) RevokeFamily(ctx context.Context, policy, family string, until time.Time) error {
	const op = "revoke family"
	if err := r.begin(ctx, op); err != nil {
		return err
	}
	now := r.clock()
	id := familyID(policy, family)
	fam := r.familyKeys(id)
	res, err := scriptFamilyRevoke.Run(ctx, r.client, []string{fam.members, fam.revoked}, micros(now), micros(until), fam.tokenPrefix).Slice()
	if err != nil {
		return r.unavailable(ctx, op, err)
	}
	rev := Revocation{Kind: RevokeFamily, Policy: policy, Value: family, At: now, Until: until}
	if err := r.afterFamilyRevoked(ctx, res, id, rev, now); err != nil {
		return r.unavailable(ctx, op, err)
	}
	return nil
}

// afterFamilyRevoked finishes the revocation of the family id, whose tokens a script has deleted:
// reply is the script's {deleted token keys, their users}. It deletes the tokens' pointers and
// index entries, and records and publishes rev.
func (r *Redis) afterFamilyRevoked(ctx context.Context, reply []any, id string, rev Revocation, now time.Time) error {
	var hexes, users []any
	if len(reply) == 2 {
		hexes, _ = reply[0].([]any)
		users, _ = reply[1].([]any)
	}
	return r.pipeline(ctx, func(p redis.Pipeliner) {
		for _, h := range hexes {
			if s, ok := h.(string); ok {
				p.Del(ctx, r.prefix+":rt:"+s)
			}
		}
		for _, u := range users {
			if s, ok := u.(string); ok {
				p.ZRem(ctx, r.familyIndexKey(rev.Policy, s), id)
			}
		}
		r.queueRevocation(ctx, p, rev, now)
	})
}

// pipeline sends the commands queue queues in one pipeline (one per node of a cluster) and returns
// the first error of a command, a missing key (redis.Nil) aside.
func (r *Redis) pipeline(ctx context.Context, queue func(redis.Pipeliner)) error {
	cmds, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		queue(p)
		return nil
	})
	for _, c := range cmds {
		if cerr := c.Err(); cerr != nil && !errors.Is(cerr, redis.Nil) {
			return cerr
		}
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	return nil
}

// Revocations implements Store. They are ordered by Until.
func (r *Redis) Revocations(ctx context.Context) ([]Revocation, error) {
	const op = "list revocations"
	if err := r.begin(ctx, op); err != nil {
		return nil, err
	}
	now := r.clock()
	// Scores are Until truncated to the microsecond: the exact comparison is made here.
	members, err := r.client.ZRangeByScore(ctx, r.channel, &redis.ZRangeBy{Min: micros(now), Max: "+inf"}).Result()
	if err != nil {
		return nil, r.unavailable(ctx, op, err)
	}
	out := make([]Revocation, 0, len(members))
	for _, m := range members {
		var rev Revocation
		if err := json.Unmarshal([]byte(m), &rev); err != nil {
			// Not the message itself: it may name a session by the hash of its ID.
			return nil, r.unavailable(ctx, op, fmt.Errorf("decode a revocation of %d bytes: %w", len(m), err))
		}
		if now.Before(rev.Until) {
			out = append(out, rev)
		}
	}
	return out, nil
}

// Subscribe implements Store; see Redis for how revocations are delivered. The first call starts
// the subscription and waits (up to 5 seconds) for Redis to confirm it. Each call then sends a
// PING through the subscription and waits (up to 5 seconds) for its answer before fn receives
// anything: Redis answers after every message it had pushed to the connection before, so fn
// receives exactly the revocations published after Subscribe began. When the feed is down, fn
// receives SubscriptionLost at once. Subscribing to a closed store, or with a nil fn, does nothing.
func (r *Redis) Subscribe(fn func(Revocation)) (cancel func()) {
	if fn == nil {
		return func() {}
	}
	r.mu.Lock()
	if r.closed.Load() {
		r.mu.Unlock()
		return func() {}
	}
	if r.receiverDone == nil {
		r.ready, r.receiverDone = make(chan struct{}), make(chan struct{})
		go r.receive(r.ready, r.receiverDone)
	}
	ready := r.ready
	r.nextSubscriber++
	id := r.nextSubscriber
	r.mu.Unlock()
	cancel = func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.pending, subscribeMarker(id))
		for i, s := range r.subscribers {
			if s.id == id {
				// A new slice: a delivery may be ranging over the old one.
				r.subscribers = append(r.subscribers[:i:i], r.subscribers[i+1:]...)
				return
			}
		}
	}
	<-ready

	r.deliverMu.Lock()
	r.mu.Lock()
	if r.closed.Load() {
		r.mu.Unlock()
		r.deliverMu.Unlock()
		return func() {}
	}
	ps, down := r.pubsub, r.feedDown
	if down || ps == nil {
		r.subscribers = append(r.subscribers[:len(r.subscribers):len(r.subscribers)], subscriber{id: id, fn: fn})
		r.mu.Unlock()
		if down {
			fn(Revocation{Kind: SubscriptionLost, At: r.clock()})
		}
		r.deliverMu.Unlock()
		return cancel
	}
	marker := subscribeMarker(id)
	w := &pendingSubscriber{subscriber: subscriber{id: id, fn: fn}, active: make(chan struct{})}
	if r.pending == nil {
		r.pending = map[string]*pendingSubscriber{}
	}
	r.pending[marker] = w
	r.mu.Unlock()
	r.deliverMu.Unlock()

	ctx, stop := context.WithTimeout(r.bg, subscribeTimeout)
	if ps.Ping(ctx, marker) == nil {
		select {
		case <-w.active:
		case <-ctx.Done():
		}
	}
	stop()
	// Without an answer in time the feed is about to be reported lost: fn then hears of it.
	r.activate(marker)
	return cancel
}

// pendingSubscriber is a subscriber waiting for the answer to its PING.
type pendingSubscriber struct {
	subscriber
	// active is closed when the subscriber receives revocations.
	active chan struct{}
}

// subscribeMarker is the payload of the PING of subscriber id.
func subscribeMarker(id uint64) string { return "authgate-subscribe-" + strconv.FormatUint(id, 10) }

// activate makes the pending subscriber of marker receive revocations, if it is still pending.
func (r *Redis) activate(marker string) {
	r.deliverMu.Lock()
	defer r.deliverMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if w := r.pending[marker]; w != nil {
		delete(r.pending, marker)
		r.subscribers = append(r.subscribers[:len(r.subscribers):len(r.subscribers)], w.subscriber)
		close(w.active)
	}
}

// receive runs the subscription until Close: it subscribes, delivers what arrives, and when the
// connection breaks or stops answering, reports SubscriptionLost and subscribes again on a new
// connection (every 100 ms at first, every 2 s at most), then reports SubscriptionRestored. It
// closes ready after its first attempt to subscribe, and done when it returns.
func (r *Redis) receive(ready, done chan struct{}) {
	defer close(done)
	first := true
	attempted := func() {
		if first {
			first = false
			close(ready)
		}
	}
	defer attempted()
	backoff := redisResubscribeMin
	for !r.closed.Load() {
		ps, err := r.subscribe()
		if err != nil {
			r.setFeed(false)
			attempted()
			select {
			case <-r.bg.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, redisResubscribeMax)
			continue
		}
		backoff = redisResubscribeMin
		r.setFeed(true)
		attempted()
		r.receiveFrom(ps)
		_ = ps.Close()
		if r.closed.Load() {
			return
		}
		r.setFeed(false)
	}
}

// subscribe subscribes to the channel on a new connection and waits for Redis to confirm. The
// PubSub it returns is the one Close closes.
func (r *Redis) subscribe() (*redis.PubSub, error) {
	ctx, cancel := context.WithTimeout(r.bg, subscribeTimeout)
	defer cancel()
	ps := r.client.Subscribe(ctx, r.channel)
	// From the confirmation on, Redis delivers every message published to the channel.
	msg, err := ps.ReceiveTimeout(ctx, subscribeTimeout)
	if err == nil {
		if _, ok := msg.(*redis.Subscription); !ok {
			err = fmt.Errorf("redis store: subscription answered with %T", msg)
		}
	}
	r.mu.Lock()
	if err == nil && r.closed.Load() {
		err = errRedisClosed
	}
	if err == nil {
		r.pubsub = ps
	}
	r.mu.Unlock()
	if err != nil {
		_ = ps.Close()
		return nil, err
	}
	return ps, nil
}

// receiveFrom delivers the messages of ps until its connection fails, or stays silent through a
// health-check interval and then a PING.
func (r *Redis) receiveFrom(ps *redis.PubSub) {
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(r.bg, redisHealthCheckInterval)
		if err != nil {
			var ne net.Error
			if !pinged && errors.As(err, &ne) && ne.Timeout() && !r.closed.Load() {
				if ps.Ping(r.bg) != nil {
					return
				}
				pinged = true
				continue
			}
			return
		}
		pinged = false
		switch msg := msg.(type) {
		case *redis.Message:
			var rev Revocation
			if err := json.Unmarshal([]byte(msg.Payload), &rev); err != nil {
				continue // not ours: nothing a subscriber could act on
			}
			r.deliver(rev)
		case *redis.Pong:
			if msg.Payload != "" {
				r.activate(msg.Payload)
			}
		case *redis.Subscription:
			// go-redis subscribed again on a new connection: what was published in between was
			// missed.
			if msg.Kind == "subscribe" {
				r.setFeed(false)
				r.setFeed(true)
			}
		}
	}
}

// setFeed records whether the feed is up, and tells the subscribers when that changes.
func (r *Redis) setFeed(up bool) {
	r.deliverMu.Lock()
	defer r.deliverMu.Unlock()
	r.mu.Lock()
	if r.feedDown != up || r.closed.Load() {
		r.mu.Unlock()
		return
	}
	r.feedDown = !up
	if !up {
		// Their PINGs will not be answered: they hear of the loss with everyone.
		for marker, w := range r.pending {
			delete(r.pending, marker)
			r.subscribers = append(r.subscribers[:len(r.subscribers):len(r.subscribers)], w.subscriber)
			close(w.active)
		}
	}
	subs := r.subscribers
	r.mu.Unlock()
	kind := SubscriptionLost
	if up {
		kind = SubscriptionRestored
	}
	publish(subs, Revocation{Kind: kind, At: r.clock()})
}

func (r *Redis) deliver(rev Revocation) {
	r.deliverMu.Lock()
	defer r.deliverMu.Unlock()
	r.mu.Lock()
	subs := r.subscribers
	r.mu.Unlock()
	publish(subs, rev)
}

// Close stops the subscription, waits for its goroutine to return and closes the client.
// Afterwards every method fails with an error wrapping ErrUnavailable; Close itself may be called
// again.
func (r *Redis) Close() error {
	r.mu.Lock()
	if r.closed.Swap(true) {
		r.mu.Unlock()
		return nil
	}
	ps, done := r.pubsub, r.receiverDone
	r.subscribers = nil
	for marker, w := range r.pending {
		delete(r.pending, marker)
		close(w.active)
	}
	r.mu.Unlock()
	r.cancelBg()
	if ps != nil {
		_ = ps.Close()
	}
	if done != nil {
		<-done
	}
	if err := r.client.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("redis store: close: %w", err)
	}
	return nil
}

// begin returns the error of a method called on a closed store or with a done context.
func (r *Redis) begin(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis store: %s: %w", op, err)
	}
	if r.closed.Load() {
		return errRedisClosed
	}
	return nil
}

// unavailable wraps err, an error of Redis or of the client, in ErrUnavailable, with ctx.Err()
// when the context ended meanwhile.
func (r *Redis) unavailable(ctx context.Context, op string, err error) error {
	if r.closed.Load() {
		return fmt.Errorf("%w: %s: %w", errRedisClosed, op, err)
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("redis store: %s: %w: %w: %w", op, ErrUnavailable, cerr, err)
	}
	return fmt.Errorf("redis store: %s: %w: %w", op, ErrUnavailable, err)
}

// live reports whether a record expiring at expires is live by the store's clock, to the
// microsecond as the scripts decide.
func (r *Redis) live(expires time.Time) bool {
	return !expires.IsZero() && r.clock().UnixMicro() < expires.UnixMicro()
}

// tokenLiveIn reports whether family id holds a live token at the key whose hex is h.
func (r *Redis) tokenLiveIn(ctx context.Context, id, h string, now time.Time) (bool, error) {
	exp, err := r.client.HGet(ctx, r.familyKeys(id).token(h), "exp").Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	t, err := decTime(exp)
	if err != nil {
		return false, err
	}
	return now.UnixMicro() < t.UnixMicro(), nil
}

// indexAdd adds member to a user index, or raises its score to the latest time (score) what it
// names can live.
func (r *Redis) indexAdd(ctx context.Context, index, member string, score, now time.Time) error {
	return scriptIndexAdd.Run(ctx, r.client, []string{index}, micros(now), micros(score), member).Err()
}

func (r *Redis) queueIndexAdd(ctx context.Context, p redis.Pipeliner, index, member string, score, now time.Time) {
	scriptIndexAdd.Eval(ctx, p, []string{index}, micros(now), micros(score), member)
}

// queueRevocation queues the script that records rev while it is in force and publishes it.
func (r *Redis) queueRevocation(ctx context.Context, p redis.Pipeliner, rev Revocation, now time.Time) {
	rev.At, rev.Until = rev.At.UTC(), rev.Until.UTC()
	msg, _ := json.Marshal(rev) // strings and times: cannot fail
	keep := "0"
	if now.Before(rev.Until) {
		keep = "1"
	}
	scriptRevocation.Eval(ctx, p, []string{r.channel}, micros(now), micros(rev.Until), keep, string(msg), r.channel)
}

// Keys.

func (r *Redis) sessionKey(k Key) string { return r.prefix + ":s:" + hex.EncodeToString(k[:]) }

func (r *Redis) pointerKey(k Key) string { return r.prefix + ":rt:" + hex.EncodeToString(k[:]) }

// userKeys are the user indexes of a user of a policy, of their sessions and of their refresh-token
// families. Their members are 64 characters at most, so that small indexes keep Redis's compact
// encoding (zset-max-listpack-value).
func (r *Redis) userKeys(policy, user string) (sessions, families string) {
	tag := r.prefix + ":{u:" + digest("user", policy, user) + "}:"
	return tag + "s", tag + "f"
}

func (r *Redis) sessionIndexKey(policy, user string) string {
	k, _ := r.userKeys(policy, user)
	return k
}

func (r *Redis) familyIndexKey(policy, user string) string {
	_, k := r.userKeys(policy, user)
	return k
}

// familyKeys are the keys of one family, all in the hash slot of its tag.
type familyKeys struct {
	// tokenPrefix followed by a token key's hex is the token's record.
	tokenPrefix string
	members     string
	revoked     string
}

func (r *Redis) familyKeys(id string) familyKeys {
	tag := r.prefix + ":{f:" + id + "}:"
	return familyKeys{tokenPrefix: tag + "t:", members: tag + "m", revoked: tag + "r"}
}

func (f familyKeys) token(h string) string { return f.tokenPrefix + h }

// familyID names the family of a policy in keys.
func familyID(policy, family string) string { return digest("family", policy, family) }

// digest is the hex SHA-256 of kind, a and b, encoded so that no two triples share it.
func digest(kind, a, b string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d:%s%s", kind, len(a), a, b)
	return hex.EncodeToString(h.Sum(nil))
}

// sessionIndexScore is the latest time a session can live: extensions stop at MaxExpiresAt, so its
// index entry never needs to follow them.
func sessionIndexScore(s Session) time.Time {
	if s.MaxExpiresAt.After(s.ExpiresAt) {
		return s.MaxExpiresAt
	}
	return s.ExpiresAt
}

// Records. Times are Unix microseconds in decimal; a zero time, or an empty string, is left out.

var (
	sessionFields = []string{"pol", "uid", "mail", "crt", "exp", "max", "seen"}
	tokenFields   = []string{"pol", "uid", "mail", "fam", "iat", "exp", "used", "succ"}
)

func sessionPairs(s Session) []any {
	return pairs(sessionFields, s.Policy, s.UserID, s.Email,
		encTime(s.CreatedAt), encTime(s.ExpiresAt), encTime(s.MaxExpiresAt), encTime(s.LastSeenAt))
}

func tokenPairs(t RefreshToken) []any {
	succ := ""
	if t.Successor != (Key{}) {
		succ = hex.EncodeToString(t.Successor[:])
	}
	return pairs(tokenFields, t.Policy, t.UserID, t.Email, t.Family,
		encTime(t.IssuedAt), encTime(t.ExpiresAt), encTime(t.UsedAt), succ)
}

// pairs returns field, value pairs for HSET, leaving out empty values.
func pairs(fields []string, values ...string) []any {
	out := make([]any, 0, 2*len(fields))
	for i, v := range values {
		if v != "" {
			out = append(out, fields[i], v)
		}
	}
	return out
}

// decodeSession decodes the values of sessionFields; ok is false when the record does not exist.
func decodeSession(vals []any) (s Session, ok bool, err error) {
	if len(vals) != len(sessionFields) {
		return Session{}, false, fmt.Errorf("session record has %d fields, want %d", len(vals), len(sessionFields))
	}
	v := strs(vals)
	if v[4] == "" {
		return Session{}, false, nil // no expiry: missing, or expired from the start
	}
	s = Session{Policy: v[0], UserID: v[1], Email: v[2]}
	for i, t := range []*time.Time{&s.CreatedAt, &s.ExpiresAt, &s.MaxExpiresAt, &s.LastSeenAt} {
		if *t, err = decTime(v[3+i]); err != nil {
			return Session{}, false, fmt.Errorf("session field %s: %w", sessionFields[3+i], err)
		}
	}
	return s, true, nil
}

func decodeToken(vals []any) (RefreshToken, error) {
	if len(vals) != len(tokenFields) {
		return RefreshToken{}, fmt.Errorf("refresh-token record has %d fields, want %d", len(vals), len(tokenFields))
	}
	v := strs(vals)
	t := RefreshToken{Policy: v[0], UserID: v[1], Email: v[2], Family: v[3]}
	var err error
	for i, p := range []*time.Time{&t.IssuedAt, &t.ExpiresAt, &t.UsedAt} {
		if *p, err = decTime(v[4+i]); err != nil {
			return RefreshToken{}, fmt.Errorf("refresh-token field %s: %w", tokenFields[4+i], err)
		}
	}
	if v[7] != "" {
		b, err := hex.DecodeString(v[7])
		if err != nil || len(b) != len(t.Successor) {
			return RefreshToken{}, fmt.Errorf("refresh-token field succ: %q is not a key", v[7])
		}
		copy(t.Successor[:], b)
	}
	return t, nil
}

// strs converts a reply's values, strings or nil (RESP2) or false (RESP3), to strings.
func strs(vals []any) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i], _ = v.(string)
	}
	return out
}

func replyCode(res []any) int64 {
	if len(res) == 0 {
		return 0
	}
	c, _ := res[0].(int64)
	return c
}

func replyString(res []any, i int) string {
	if i >= len(res) {
		return ""
	}
	s, _ := res[i].(string)
	return s
}

// encTime is t in Unix microseconds, or "" for the zero time.
func encTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMicro(), 10)
}

// micros is t in Unix microseconds, the zero time included, for a score or a comparison.
func micros(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

// decTime decodes encTime, and a sorted-set score, which Redis may write as a float.
func decTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	us, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return time.Time{}, fmt.Errorf("%q is not a time in microseconds", s)
		}
		us = int64(f)
	}
	return time.UnixMicro(us).UTC(), nil
}

// ttlMillis is the time to live, in milliseconds, of a key whose record expires at exp: 0 when it
// has expired by now.
func ttlMillis(exp, now time.Time) int64 {
	d := exp.UnixMicro() - now.UnixMicro()
	if exp.IsZero() || d <= 0 {
		return 0
	}
	return (d+999)/1000 + redisTTLMargin.Milliseconds()
}

// Lua scripts. Each touches the keys of one hash slot, all named in KEYS or derived from a family's
// tag. Times are Unix microseconds: exact in Lua's doubles until the year 2255. A record is live
// while now < its exp.

// luaPrelude holds the helpers every script starts with.
var luaPrelude = `
local MARGIN = ` + strconv.FormatInt(redisTTLMargin.Milliseconds(), 10) + `
-- num is v as a number, or nil when missing (false) or empty.
local function num(v) return tonumber(v or '') end
-- ttl is the PEXPIRE of a record expiring at exp.
local function ttl(exp, now) return math.ceil((exp - now) / 1000) + MARGIN end
-- keepUntilLast sets a sorted set's time to live from its highest score.
local function keepUntilLast(key, now)
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if top[2] then redis.call('PEXPIRE', key, ttl(tonumber(top[2]), now)) end
end
-- reply is {code, the n values of t ('' for missing), extra...}.
local function reply(code, t, n, ...)
  local out = {code}
  for i = 1, n do out[i + 1] = t[i] or '' end
  for _, v in ipairs({...}) do out[#out + 1] = v end
  return out
end
-- same reports whether key holds exactly the fields and values of ARGV[from...]: a create
-- that go-redis retried after a network error finds its own record.
local function same(key, from)
  if redis.call('HLEN', key) * 2 ~= #ARGV - from + 1 then return false end
  for i = from, #ARGV, 2 do
    if redis.call('HGET', key, ARGV[i]) ~= ARGV[i + 1] then return false end
  end
  return true
end
-- revokeAll deletes a family's tokens and returns their keys and distinct users.
local function revokeAll(members, prefix)
  local keys, users, seen = {}, {}, {}
  for _, h in ipairs(redis.call('ZRANGE', members, 0, -1)) do
    local uid = redis.call('HGET', prefix .. h, 'uid')
    if uid and not seen[uid] then seen[uid] = true; users[#users + 1] = uid end
    redis.call('DEL', prefix .. h)
    keys[#keys + 1] = h
  end
  redis.call('DEL', members)
  return keys, users
end
-- setRevoked records a family revoked until till (a number; tillStr as stored) unless it is
-- revoked longer already.
local function setRevoked(key, till, tillStr, now)
  if till <= now then return end
  local cur = num(redis.call('GET', key))
  if not cur or till > cur then redis.call('SET', key, tillStr, 'PX', ttl(till, now)) end
end
`

func newScript(body string) *redis.Script { return redis.NewScript(luaPrelude + body) }

// scriptSessionCreate stores a session unless another live one holds the key.
// KEYS: session. ARGV: now, expiry, field/value pairs. Returns 1, or 0 when the key is taken.
var scriptSessionCreate = newScript(`
local now = tonumber(ARGV[1])
local cur = num(redis.call('HGET', KEYS[1], 'exp'))
if cur and cur > now then
  if same(KEYS[1], 3) then return 1 end
  return 0
end
redis.call('DEL', KEYS[1])
local exp = num(ARGV[2])
if exp and exp > now then
  redis.call('HSET', KEYS[1], unpack(ARGV, 3))
  redis.call('PEXPIRE', KEYS[1], ttl(exp, now))
end
return 1
`)

// scriptSessionExtend extends a live session, never past its max, never shortening it, and moves
// its last-seen time forward only.
// KEYS: session. ARGV: now, expiresAt, lastSeenAt. Returns {1, fields...}, or {0} when not live.
var scriptSessionExtend = newScript(`
local f = redis.call('HMGET', KEYS[1], 'pol', 'uid', 'mail', 'crt', 'exp', 'max', 'seen')
local now = tonumber(ARGV[1])
local exp = num(f[5])
if not exp or exp <= now then return {0} end
local want, wantStr, max = num(ARGV[2]), ARGV[2], num(f[6])
if want and (not max or want > max) then want, wantStr = max, f[6] end
if want and want > exp then
  redis.call('HSET', KEYS[1], 'exp', wantStr)
  redis.call('PEXPIRE', KEYS[1], ttl(want, now))
  f[5] = wantStr
end
local seen, cur = num(ARGV[3]), num(f[7])
if seen and (not cur or seen > cur) then
  redis.call('HSET', KEYS[1], 'seen', ARGV[3])
  f[7] = ARGV[3]
end
return reply(1, f, 7)
`)

// scriptSessionDelete deletes a session.
// KEYS: session. ARGV: now. Returns {1, fields...} for a live session, {2, fields...} for an
// expired one, {0} when there was none.
var scriptSessionDelete = newScript(`
local f = redis.call('HMGET', KEYS[1], 'pol', 'uid', 'mail', 'crt', 'exp', 'max', 'seen')
if redis.call('DEL', KEYS[1]) == 0 then return {0} end
local exp = num(f[5])
if exp and exp > tonumber(ARGV[1]) then return reply(1, f, 7) end
return reply(2, f, 7)
`)

// scriptSessionRevoke deletes a session of a user, for RevokeUser.
// KEYS: session. ARGV: now, policy, user. Returns 2 for a live session deleted, 1 for an expired
// one, 0 when the key holds no session of the user.
var scriptSessionRevoke = newScript(`
local f = redis.call('HMGET', KEYS[1], 'pol', 'uid', 'exp')
if f[1] ~= ARGV[2] or f[2] ~= ARGV[3] then return 0 end
redis.call('DEL', KEYS[1])
local exp = num(f[3])
if exp and exp > tonumber(ARGV[1]) then return 2 end
return 1
`)

// scriptIndexAdd trims a user index of what has expired, and adds a member or raises its score.
// KEYS: index. ARGV: now, score, member.
var scriptIndexAdd = newScript(`
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local score = tonumber(ARGV[2])
if score > now then
  local cur = num(redis.call('ZSCORE', KEYS[1], ARGV[3]))
  if not cur or cur < score then redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3]) end
end
keepUntilLast(KEYS[1], now)
return 1
`)

// scriptIndexRemove removes members from a user index unless their score has grown meanwhile.
// KEYS: index. ARGV: member, score pairs.
var scriptIndexRemove = newScript(`
for i = 1, #ARGV, 2 do
  local cur = num(redis.call('ZSCORE', KEYS[1], ARGV[i]))
  if cur and cur <= tonumber(ARGV[i + 1]) then redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return 1
`)

// scriptTokenCreate stores the first token of a family, unless the family is revoked or another
// live token holds the key.
// KEYS: token, members, revoked. ARGV: now, key hex, expiry, field/value pairs.
// Returns 1, -1 when the key is taken, -2 when the family is revoked.
var scriptTokenCreate = newScript(`
local now = tonumber(ARGV[1])
local revoked = num(redis.call('GET', KEYS[3]))
if revoked and revoked > now then return -2 end
local cur = num(redis.call('HGET', KEYS[1], 'exp'))
if cur and cur > now then
  if same(KEYS[1], 4) then return 1 end
  return -1
end
redis.call('DEL', KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local exp = num(ARGV[3])
if exp and exp > now then
  redis.call('HSET', KEYS[1], unpack(ARGV, 4))
  redis.call('PEXPIRE', KEYS[1], ttl(exp, now))
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
else
  redis.call('ZREM', KEYS[2], ARGV[2])
end
keepUntilLast(KEYS[2], now)
return 1
`)

// scriptTokenRotate rotates a token: a live unused one becomes used and its successor is stored
// (1, Rotated); a used one within grace with the same successor changes nothing (2, Replayed); any
// other use of a used one revokes the family (3, Reused).
// KEYS: old token, successor token, members, revoked.
// ARGV: 1 now, 2 usedAt, 3 grace start (a use at or after it is within grace), 4 old hex,
// 5 successor hex, 6 next's policy, 7 next's family, 8 "1" when the successor key holds a live
// token of another family, 9 next's expiry, 10 the family's token key prefix, 11... next's
// field/value pairs.
// Returns {code, old's fields...} and: for Replayed the successor's expiry; for Reused until when
// the family is revoked, the deleted tokens' keys and their users. Other codes: 0 old is not live,
// -1 next is of another policy or family, -2 the successor key is taken.
var scriptTokenRotate = newScript(`
local now = tonumber(ARGV[1])
local o = redis.call('HMGET', KEYS[1], 'pol', 'uid', 'mail', 'fam', 'iat', 'exp', 'used', 'succ')
local exp = num(o[6])
if not exp or exp <= now then return {0} end
if o[1] ~= ARGV[6] or o[4] ~= ARGV[7] then return {-1} end
local used = num(o[7])
if not used then
  local se = num(redis.call('HGET', KEYS[2], 'exp'))
  if ARGV[8] == '1' or (se and se > now) then return {-2} end
  redis.call('HSET', KEYS[1], 'used', ARGV[2], 'succ', ARGV[5])
  redis.call('DEL', KEYS[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
  local ne = num(ARGV[9])
  if ne and ne > now then
    redis.call('HSET', KEYS[2], unpack(ARGV, 11))
    redis.call('PEXPIRE', KEYS[2], ttl(ne, now))
    redis.call('ZADD', KEYS[3], ARGV[9], ARGV[5])
  end
  keepUntilLast(KEYS[3], now)
  return reply(1, o, 8)
end
if used >= tonumber(ARGV[3]) and o[8] == ARGV[5] then
  return reply(2, o, 8, redis.call('HGET', KEYS[2], 'exp') or '')
end
local till, tillStr = exp, o[6]
local top = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
if top[2] and tonumber(top[2]) > till then till, tillStr = tonumber(top[2]), top[2] end
local keys, users = revokeAll(KEYS[3], ARGV[10])
redis.call('DEL', KEYS[1])
setRevoked(KEYS[4], till, tillStr, now)
return reply(3, o, 8, tillStr, keys, users)
`)

// scriptFamilyRevoke deletes every token of a family and records it revoked.
// KEYS: members, revoked. ARGV: now, until, the family's token key prefix.
// Returns {the deleted tokens' keys, their users}.
var scriptFamilyRevoke = newScript(`
local keys, users = revokeAll(KEYS[1], ARGV[3])
setRevoked(KEYS[2], tonumber(ARGV[2]), ARGV[2], tonumber(ARGV[1]))
return {keys, users}
`)

// scriptFamilyRevokeUser deletes the tokens of a family that belong to a user, for RevokeUser.
// KEYS: members. ARGV: now, the family's token key prefix, policy, user.
// Returns the deleted tokens' keys.
var scriptFamilyRevokeUser = newScript(`
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local out = {}
for _, h in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local f = redis.call('HMGET', ARGV[2] .. h, 'pol', 'uid')
  if not f[1] then
    redis.call('ZREM', KEYS[1], h)
  elseif f[1] == ARGV[3] and f[2] == ARGV[4] then
    redis.call('DEL', ARGV[2] .. h)
    redis.call('ZREM', KEYS[1], h)
    out[#out + 1] = h
  end
end
keepUntilLast(KEYS[1], now)
return out
`)

// scriptRevocation records a revocation while it is in force, then publishes it.
// KEYS: revocations. ARGV: now, until, "1" to record it, the message, the channel.
var scriptRevocation = newScript(`
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
if ARGV[3] == '1' then redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4]) end
keepUntilLast(KEYS[1], now)
redis.call('PUBLISH', ARGV[5], ARGV[4])
return 1
`)
