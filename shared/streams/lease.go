package streams

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// acquireScript takes or extends a lease and returns its term: the
// holder's own key gets a new TTL, a missing key becomes the holder's and
// starts a new term; a key held by another is left alone.
//
// The term fences the writes (write.lua): it only grows, so a collector that
// lost the lease holds a lower term than its successor. A new term is above
// the last one and at least the server's clock in milliseconds, so that it
// still grows when the counter was lost (a failover that lost the last
// writes), and at least ARGV[3], which a holder passes when a shard's fence
// showed its term to be behind. KEYS: the lease, its term counter (same
// slot). ARGV: holder, TTL in ms, least term. Returns {1, term} if held,
// {0, 0} if not.
const acquireScript = `
local t = tonumber(redis.call('GET', KEYS[2]) or '0')
local least = tonumber(ARGV[3])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  if t > 0 and t >= least then return {1, t} end
elseif not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {0, 0}
end
local now = redis.call('TIME')
t = math.max(t + 1, tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000), least)
redis.call('SET', KEYS[2], string.format('%d', t))
return {1, t}
`

// releaseScript deletes the lease only if the holder still has it, so that
// a holder whose lease expired never deletes its successor's.
// KEYS: the lease. ARGV: holder.
const releaseScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

// Lease is a lease on one key (Layout.Leader for the collector) held by
// one holder id at a time and lost unless renewed within its TTL. Each
// time it changes hands it starts a new term (TermKey), which fences the
// writes of the holders before. Its keys share a slot, so it works on
// Redis Cluster. Its methods are safe for concurrent use.
type Lease struct {
	c       redis.UniversalClient
	key     string
	term    string // TermKey(key)
	holder  string
	ttl     time.Duration
	acquire *redis.Script
	release *redis.Script
}

// NewLease returns the lease on key for holder, with ttl (at least 1ms).
// The key must not contain braces: TermKey uses it as a hash tag.
func NewLease(c redis.UniversalClient, key, holder string, ttl time.Duration) (*Lease, error) {
	if strings.ContainsAny(key, "{}") {
		return nil, fmt.Errorf("lease key %q: must not contain { or }", key)
	}
	if holder == "" {
		return nil, errors.New("lease holder is empty")
	}
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("lease ttl %v: want at least 1ms", ttl)
	}
	return &Lease{
		c: c, key: key, term: TermKey(key), holder: holder, ttl: ttl,
		acquire: redis.NewScript(acquireScript),
		release: redis.NewScript(releaseScript),
	}, nil
}

// Acquire takes the lease, or extends it by the TTL if the holder has it
// already. It reports whether the holder has the lease now, and if so its
// term: the same while the holder keeps the lease, unless it is below
// least, in which case a new term of at least least starts.
func (l *Lease) Acquire(ctx context.Context, least int64) (held bool, term int64, err error) {
	r, err := l.acquire.Run(ctx, l.c, []string{l.key, l.term}, l.holder,
		strconv.FormatInt(l.ttl.Milliseconds(), 10), strconv.FormatInt(least, 10)).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("acquire lease %s: %w", l.key, err)
	}
	if len(r) != 2 {
		return false, 0, fmt.Errorf("acquire lease %s: script answered %v", l.key, r)
	}
	return r[0] == 1, r[1], nil
}

// Release gives the lease up if the holder has it, so that another may
// take it at once; it does nothing otherwise.
func (l *Lease) Release(ctx context.Context) error {
	if err := l.release.Run(ctx, l.c, []string{l.key}, l.holder).Err(); err != nil {
		return fmt.Errorf("release lease %s: %w", l.key, err)
	}
	return nil
}

// Holder returns the id that has the lease, or "" if none has.
func (l *Lease) Holder(ctx context.Context) (string, error) {
	h, err := l.c.Get(ctx, l.key).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("get lease %s: %w", l.key, err)
	}
	return h, nil
}

// TTL returns the lease's time to live.
func (l *Lease) TTL() time.Duration { return l.ttl }
