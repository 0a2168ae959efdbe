package feed

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/shared/streams"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestBeatPublishesConns: each heartbeat writes the replica's hash (the
// connections of `publisher status`) with the TTL; Teardown and Reap
// delete it with the heartbeat.
func TestBeatPublishesConns(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client()
	layout, _ := streams.NewLayout("lv", 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := NewMetrics(prometheus.NewRegistry())
	conns := 0
	a := NewLiveness(rdb, layout, "a", time.Minute, log, m)
	a.CountConns(func() int { return conns })
	b := NewLiveness(rdb, layout, "b", time.Minute, log, m) // counts nothing
	for _, conns = range []int{0, 7} {
		if err := a.Beat(ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := rdb.HGet(ctx, ReplicaKey(layout, "a"), FieldConns).Int(); got != conns {
			t.Errorf("conns = %d, want %d", got, conns)
		}
	}
	if err := b.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	h := rdb.HGetAll(ctx, "lv:replica:b").Val()
	if h[FieldConns] != "-1" || h[FieldBeat] == "" || h[FieldVersion] == "" {
		t.Errorf("hash of b = %v", h)
	}
	if ttl := rdb.PTTL(ctx, "lv:replica:b").Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("TTL = %v, want the replica TTL", ttl)
	}
	if err := b.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, "lv:replica:b").Val(); n != 0 {
		t.Error("Teardown left the hash")
	}
	// a falls silent; a reaper with a short TTL removes it, hash and all.
	old := redis.Z{Score: float64(time.Now().Add(-2 * time.Minute).UnixMilli()), Member: "a"}
	if err := rdb.ZAdd(ctx, layout.Replicas(), old).Err(); err != nil {
		t.Fatal(err)
	}
	reaper := NewLiveness(rdb, layout, "r", time.Minute, log, m)
	if err := reaper.Reap(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, "lv:replica:a").Val(); n != 0 {
		t.Error("Reap left the hash")
	}
	if n := rdb.ZCard(ctx, layout.Replicas()).Val(); n != 0 {
		t.Errorf("replicas left: %d", n)
	}
}
