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
	ok, _ := acquireTerm(t, l, 0)
	return ok
}

func acquireTerm(t *testing.T, l *Lease, least int64) (bool, int64) {
	t.Helper()
	ok, term, err := l.Acquire(t.Context(), least)
	if err != nil {
		t.Fatal(err)
	}
	if ok != (term > 0) {
		t.Fatalf("Acquire = %v with term %d: a held lease has a term, only a held one", ok, term)
	}
	return ok, term
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
	if _, err := NewLease(c, "{k}", "a", time.Second); err == nil {
		t.Error("key with a hash tag accepted")
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
	if ok, _, err := l.Acquire(ctx, 0); err == nil || ok {
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
	checkTerms(t, c, a, b)
}

// Each change of hands starts a higher term; renewals keep it; a least
// argument above it starts a higher one; and a lost counter still yields a
// term above every earlier one (the server's clock).
func TestLeaseTerms(t *testing.T) {
	f := newFixture(t)
	checkTerms(t, f.c, mustLease(t, f.c, "a", time.Minute), mustLease(t, f.c, "b", time.Minute))
}

func checkTerms(t *testing.T, c redis.UniversalClient, a, b *Lease) {
	t.Helper()
	okA, t1 := acquireTerm(t, a, 0)
	if okB, _ := acquireTerm(t, b, 0); !okA || okB {
		t.Fatal("want a to hold the lease and b refused")
	}
	if _, again := acquireTerm(t, a, 0); again != t1 {
		t.Errorf("renewal changed the term from %d to %d", t1, again)
	}
	if err := a.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	ok, t2 := acquireTerm(t, b, 0)
	if !ok || t2 <= t1 {
		t.Fatalf("b after a's release: held %v, term %d; want held, above %d", ok, t2, t1)
	}
	if _, t3 := acquireTerm(t, b, t2+1000); t3 < t2+1000 {
		t.Errorf("renewal with least %d gave term %d", t2+1000, t3)
	}
	// The counter lost (a failover that lost the last writes): the next
	// term is still at least the server's clock.
	if err := c.Del(t.Context(), TermKey(mustLayout(t, 1).Leader())).Err(); err != nil {
		t.Fatal(err)
	}
	now, err := c.Time(t.Context()).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, t4 := acquireTerm(t, a, 0); t4 < now.UnixMilli() {
		t.Errorf("term after the counter was lost = %d, want at least the clock %d", t4, now.UnixMilli())
	}
}
