package hub

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Semaphore bounds how many history reads of a replica run at once, so
// that no number of clients can make a replica keep Redis busy with more
// than that many reads. It is safe for concurrent use; the zero value is
// not usable, use NewSemaphore.
type Semaphore struct {
	slots chan struct{}
}

// NewSemaphore returns a semaphore of n slots (at least 1).
func NewSemaphore(n int) *Semaphore {
	return &Semaphore{slots: make(chan struct{}, max(n, 1))}
}

// Acquire takes a slot, waiting until one is free or ctx ends.
func (s *Semaphore) Acquire(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release frees a slot taken by Acquire.
func (s *Semaphore) Release() { <-s.slots }

// Budget is a token bucket of history reads per user (keyed by the token's
// sub), shared by all connections of the user on a replica: however many
// connections a user opens, its history reads cost Redis at most rate a
// second after a burst. It is safe for concurrent use. Memory is bounded by
// the users active in the last idle period: a bucket that is full again is
// dropped at the next sweep.
type Budget struct {
	rate  rate.Limit
	burst int

	mu      sync.Mutex
	users   map[string]*rate.Limiter
	swept   time.Time
	sweepIn time.Duration
}

// NewBudget returns a budget of perSecond reads a second per user, with
// bursts of burst.
func NewBudget(perSecond float64, burst int) *Budget {
	return &Budget{rate: rate.Limit(perSecond), burst: burst, users: make(map[string]*rate.Limiter), sweepIn: time.Minute}
}

// Reserve takes n reads from sub's bucket and returns how long the caller
// must wait before doing them (0: at once). n above the burst is capped to
// the burst, so that one large request waits instead of failing forever.
func (b *Budget) Reserve(sub string, n int) time.Duration {
	now := time.Now()
	r := b.limiter(sub, now).ReserveN(now, b.clamp(n))
	return r.DelayFrom(now)
}

// Wait takes n reads from sub's bucket, waiting until they are there. It
// fails at once, taking nothing, if they would not be there before ctx
// ends.
func (b *Budget) Wait(ctx context.Context, sub string, n int) error {
	return b.limiter(sub, time.Now()).WaitN(ctx, b.clamp(n))
}

func (b *Budget) clamp(n int) int { return min(max(n, 1), b.burst) }

// limiter returns sub's bucket, made on first use.
func (b *Budget) limiter(sub string, now time.Time) *rate.Limiter {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Sub(b.swept) > b.sweepIn {
		b.sweep(now)
	}
	l := b.users[sub]
	if l == nil {
		l = rate.NewLimiter(b.rate, b.burst)
		b.users[sub] = l
	}
	return l
}

// sweep drops the buckets that are full: their users have been idle long
// enough that a new bucket is the same. b.mu is held.
func (b *Budget) sweep(now time.Time) {
	b.swept = now
	for sub, l := range b.users {
		if l.TokensAt(now) >= float64(b.burst) {
			delete(b.users, sub)
		}
	}
}
