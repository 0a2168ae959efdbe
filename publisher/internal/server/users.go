package server

import "sync"

// users counts open connections per user. It is safe for concurrent use.
type users struct {
	max int

	mu sync.Mutex
	n  map[string]int
}

func newUsers(max int) *users { return &users{max: max, n: make(map[string]int)} }

// Acquire counts one more connection of sub, unless sub has max already.
func (u *users) Acquire(sub string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n[sub] >= u.max {
		return false
	}
	u.n[sub]++
	return true
}

// Release counts one connection of sub less.
func (u *users) Release(sub string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n[sub] <= 1 {
		delete(u.n, sub)
		return
	}
	u.n[sub]--
}
