package streams

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/redistest"
)

func mustLease(t *testing.T, c redis.UniversalClient, holder string, ttl time.Duration) *Lease {
	t.Helper()
	l, err := NewLease(c, mustLayout(t, 1).Leader(), holder, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func acquire(t *testing.T, l *Lease) bool {
	t.Helper()
	ok, err := l.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func holder(t *testing.T, l *Lease) string {
	t.Helper()
	h, err := l.Holder(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestNewLeaseRefuses(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := NewLease(c, "k", "", time.Second); err == nil {
		t.Error("empty holder accepted")
	}
	if _, err := NewLease(c, "k", "a", time.Microsecond); err == nil {
		t.Error("sub-millisecond ttl accepted")
	}
}

func TestLease(t *testing.T) {
	f := newFixture(t)
	a := mustLease(t, f.c, "a", time.Minute)
	b := mustLease(t, f.c, "b", time.Minute)

	if h := holder(t, a); h != "" {
		t.Fatalf("holder before any acquire = %q, want none", h)
	}
	if !acquire(t, a) {
		t.Fatal("a could not take a free lease")
	}
	if h := holder(t, b); h != "a" {
		t.Fatalf("holder = %q, want a", h)
	}
	if acquire(t, b) {
		t.Fatal("b took a's lease")
	}

	// Re-acquiring extends: shorten the TTL by hand, acquire, see it back.
	key := mustLayout(t, 1).Leader()
	if err := f.c.PExpire(t.Context(), key, time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	if !acquire(t, a) {
		t.Fatal("a could not re-acquire its own lease")
	}
	if ttl := f.c.PTTL(t.Context(), key).Val(); ttl < 50*time.Second {
		t.Errorf("TTL after re-acquire = %v, want about a minute", ttl)
	}

	// Release by another does nothing; by the holder frees the lease.
	if err := b.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if h := holder(t, a); h != "a" {
		t.Fatalf("holder after b's release = %q, want a", h)
	}
	if err := a.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if h := holder(t, a); h != "" {
		t.Fatalf("holder after a's release = %q, want none", h)
	}
	if !acquire(t, b) {
		t.Fatal("b could not take the released lease")
	}
}

func TestLeaseExpiry(t *testing.T) {
	f := newFixture(t)
	a := mustLease(t, f.c, "a", 100*time.Millisecond)
	b := mustLease(t, f.c, "b", time.Minute)
	if !acquire(t, a) {
		t.Fatal("a could not take a free lease")
	}
	poll.Until(t, 5*time.Second, func() error {
		if !acquire(t, b) {
			return errors.New("b still refused")
		}
		return nil
	})
	if acquire(t, a) {
		t.Error("a took back b's lease")
	}
	if err := a.Release(t.Context()); err != nil { // expired holder: no effect
		t.Fatal(err)
	}
	if h := holder(t, b); h != "b" {
		t.Errorf("holder = %q, want b", h)
	}
}

func TestLeaseRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	l := mustLease(t, c, "a", time.Second)
	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if ok, err := l.Acquire(ctx); err == nil || ok {
		t.Errorf("Acquire with Redis down = %v, %v; want false and an error", ok, err)
	}
}

func TestLeaseCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	cl := redistest.StartCluster(t, 3)
	c := cl.Client()
	a := mustLease(t, c, "a", time.Minute)
	b := mustLease(t, c, "b", time.Minute)
	if !acquire(t, a) || acquire(t, b) {
		t.Fatal("want a to hold the lease and b refused")
	}
	if err := a.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !acquire(t, b) {
		t.Fatal("b could not take the released lease")
	}
}
