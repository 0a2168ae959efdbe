package lease

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/shared/streams"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// nopWriter counts what it is asked to write.
type nopWriter struct{ n int }

func (w *nopWriter) Write(_ context.Context, evs []streams.Pending) (streams.Result, error) {
	w.n += len(evs)
	return streams.Result{Written: len(evs)}, nil
}

func (w *nopWriter) Fence(context.Context, int64) error { return nil }

// TestKeeperWrite checks each mode of the lease-gated writer.
func TestKeeperWrite(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	newL := func(holder string) (*Keeper, *nopWriter) {
		ls, err := streams.NewLease(rdb, "w:collector:leader", holder, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		w := &nopWriter{}
		return New(ls, w, slog.New(slog.NewTextHandler(io.Discard, nil)), m), w
	}
	evs := streams.PendingOf([]event.Event{{TS: 1}, {TS: 2}})
	write := func(l *Keeper) ([]streams.Pending, error) {
		res, err := l.Write(t.Context(), evs)
		return res.Unwritten, err
	}

	a, aw := newL("a")
	if un, err := write(a); !errors.Is(err, ErrUnknown) || len(un) != 2 {
		t.Errorf("before any renewal: %d unwritten, %v; want 2 and ErrUnknown", len(un), err)
	}
	a.renew(t.Context(), time.Second)
	if un, err := write(a); err != nil || len(un) != 0 || aw.n != 2 {
		t.Errorf("active: %d unwritten, %v, %d written; want all written", len(un), err, aw.n)
	}

	b, bw := newL("b")
	b.renew(t.Context(), time.Second)
	if un, err := write(b); !errors.Is(err, streams.ErrNotLeader) || len(un) != 2 || bw.n != 0 {
		t.Errorf("standby: %d unwritten, %v, %d written; want all refused with ErrNotLeader", len(un), err, bw.n)
	}

	a.mu.Lock()
	a.renewed = time.Now().Add(-time.Minute * 2 / 3)
	a.mu.Unlock()
	if un, err := write(a); !errors.Is(err, streams.ErrNotLeader) || len(un) != 2 || aw.n != 2 {
		t.Errorf("stale lease: %d unwritten, %v, %d written; want all refused with ErrNotLeader", len(un), err, aw.n-2)
	}

	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	a.renew(ctx, time.Second)
	if un, err := write(a); !errors.Is(err, ErrUnknown) || len(un) != 2 {
		t.Errorf("redis down: %d unwritten, %v; want 2 and ErrUnknown", len(un), err)
	}
}

func newKeeper(t *testing.T, c redis.UniversalClient, layout streams.Layout, holder string) (*Keeper, *Metrics) {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ls, err := streams.NewLease(c, layout.Leader(), holder, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	w := streams.NewWriter(c, layout, streams.WriterConfig{FeedLen: 1000, HistoryLen: 1000, Lease: layout.Leader(), Holder: holder})
	return New(ls, w, slog.New(slog.NewTextHandler(io.Discard, nil)), m), m
}

func trades(t *testing.T, n int) []streams.Pending {
	t.Helper()
	var evs []event.Event
	for i := range n {
		ch, err := event.ParseChannel(fmt.Sprintf("trade:S%d", i))
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, event.Event{Channel: ch, TS: int64(i + 1), Data: []byte(`{"price":1}`)})
	}
	return streams.PendingOf(evs)
}

// On Redis Cluster the lease key is in another slot than the shards, so
// only the term fences: a collector whose lease was lost while it paused
// still believes it is active, and its writes must be refused as soon as
// its successor has taken the lease, before the successor writes.
func TestKeeperFencedOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	cl := redistest.StartCluster(t, 3)
	c := cl.Client()
	layout, err := streams.NewLayout("w", 4)
	if err != nil {
		t.Fatal(err)
	}
	a, am := newKeeper(t, c, layout, "a")
	b, _ := newKeeper(t, c, layout, "b")
	a.renew(t.Context(), 5*time.Second)
	if res, err := a.Write(t.Context(), trades(t, 8)); err != nil || res.Written != 8 {
		t.Fatalf("a active: %+v, %v; want all written", res, err)
	}
	// a's lease expires while a is paused; b takes it.
	if err := c.Del(t.Context(), layout.Leader()).Err(); err != nil {
		t.Fatal(err)
	}
	b.renew(t.Context(), 5*time.Second)
	if b.mode(time.Now()) != modeActive || a.mode(time.Now()) != modeActive {
		t.Fatal("want both a (not renewed yet) and b to believe they are active")
	}
	res, err := a.Write(t.Context(), trades(t, 8))
	if !errors.Is(err, streams.ErrNotLeader) || res.Written != 0 {
		t.Errorf("a after b took over: %+v, %v; want all refused with ErrNotLeader", res, err)
	}
	if n := testutil.ToFloat64(am.Discarded); n != 8 {
		t.Errorf("a discarded %v events, want 8", n)
	}
	if res, err := b.Write(t.Context(), trades(t, 8)); err != nil || res.Written != 8 {
		t.Errorf("b: %+v, %v; want all written", res, err)
	}
	var total int64
	for s := range layout.Shards {
		total += c.XLen(t.Context(), layout.Feed(s)).Val()
	}
	if total != 16 {
		t.Errorf("feeds hold %d events, want 16 (a's first batch and b's)", total)
	}
}

// A term counter lost while the shards' fences survived (a failover of the
// lease's slot only) would leave the new holder behind the fences, every
// write refused. The keeper starts a term above the fence instead.
func TestKeeperTermBehindFence(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	layout, err := streams.NewLayout("w", 2)
	if err != nil {
		t.Fatal(err)
	}
	ahead := time.Now().Add(time.Hour).UnixMilli()
	for s := range layout.Shards {
		if err := c.Set(t.Context(), layout.Fence(s), ahead, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	k, _ := newKeeper(t, c, layout, "a")
	k.renew(t.Context(), 5*time.Second)
	if res, err := k.Write(t.Context(), trades(t, 4)); err != nil || res.Written != 4 {
		t.Fatalf("write after a fence ahead: %+v, %v; want all written", res, err)
	}
	term, err := c.Get(t.Context(), layout.LeaderTerm()).Int64()
	if err != nil || term <= ahead {
		t.Errorf("term = %d, %v; want above the fence %d", term, err, ahead)
	}
}
