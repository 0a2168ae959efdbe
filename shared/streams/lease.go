package streams

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// acquireScript takes or extends a lease: the holder's own key gets a new
// TTL, a missing key becomes the holder's; a key held by another is left
// alone. KEYS: the lease. ARGV: holder, TTL in ms. Returns 1 if held.
const acquireScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
`

// releaseScript deletes the lease only if the holder still has it, so that
// a holder whose lease expired never deletes its successor's.
// KEYS: the lease. ARGV: holder.
const releaseScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

// Lease is a lease on one key (Layout.Leader for the collector) held by
// one holder id at a time and lost unless renewed within its TTL. It
// touches a single key, so it works on Redis Cluster. Its methods are safe
// for concurrent use.
type Lease struct {
	c       redis.UniversalClient
	key     string
	holder  string
	ttl     time.Duration
	acquire *redis.Script
	release *redis.Script
}

// NewLease returns the lease on key for holder, with ttl (at least 1ms).
func NewLease(c redis.UniversalClient, key, holder string, ttl time.Duration) (*Lease, error) {
	if holder == "" {
		return nil, errors.New("lease holder is empty")
	}
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("lease ttl %v: want at least 1ms", ttl)
	}
	return &Lease{
		c: c, key: key, holder: holder, ttl: ttl,
		acquire: redis.NewScript(acquireScript),
		release: redis.NewScript(releaseScript),
	}, nil
}

// Acquire takes the lease, or extends it by the TTL if the holder has it
// already. It reports whether the holder has the lease now.
func (l *Lease) Acquire(ctx context.Context) (bool, error) {
	n, err := l.acquire.Run(ctx, l.c, []string{l.key}, l.holder, strconv.FormatInt(l.ttl.Milliseconds(), 10)).Int()
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", l.key, err)
	}
	return n == 1, nil
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
