package server

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// userRates holds a token bucket per user, at most max of them. It is safe
// for concurrent use.
type userRates struct {
	mu    sync.Mutex
	limit rate.Limit
	burst int
	max   int
	m     map[string]*userRate
}

type userRate struct {
	lim  *rate.Limiter
	seen time.Time
}

func newUserRates(limit rate.Limit, burst, max int) *userRates {
	return &userRates{limit: limit, burst: burst, max: max, m: make(map[string]*userRate)}
}

// Allow reports whether sub may make one more request now.
func (u *userRates) Allow(sub string, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	r, ok := u.m[sub]
	if !ok {
		if len(u.m) >= u.max {
			u.evict(now)
		}
		r = &userRate{lim: rate.NewLimiter(u.limit, u.burst)}
		u.m[sub] = r
	}
	r.seen = now
	return r.lim.AllowN(now, 1)
}

// evict makes room for one more user: it drops the users idle long enough
// for their bucket to be full again (forgetting them changes nothing), and
// if none is, one arbitrary user, who thereby gets a fresh bucket.
func (u *userRates) evict(now time.Time) {
	refill := time.Duration(float64(u.burst) / float64(u.limit) * float64(time.Second))
	for sub, r := range u.m {
		if now.Sub(r.seen) > refill {
			delete(u.m, sub)
		}
	}
	for sub := range u.m {
		if len(u.m) < u.max {
			return
		}
		delete(u.m, sub)
	}
}

// Len is the number of users tracked.
func (u *userRates) Len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.m)
}
