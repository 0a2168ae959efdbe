package batch

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/streams"
)

// A history key of another type costs its channel's history only: the
// batch lands, the skip is counted and logged, the batcher stays ready.
func TestWrongTypeHistorySkippedAndCounted(t *testing.T) {
	f := newFixture(t, 1, Config{MaxBatch: 10, Buffer: 100})
	ch, _ := event.ParseChannel(channels[0])
	if err := f.rdb.Set(context.Background(), f.layout.History(ch), "by hand", 0).Err(); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	f.add(events(t, 0, 12))
	f.waitWritten(t, 12)
	if n := testutil.ToFloat64(f.m.HistorySkipped); n < 1 {
		t.Errorf("history_skipped_total = %v, want at least 1", n)
	}
	if n := testutil.ToFloat64(f.m.WriteErrors); n != 0 {
		t.Errorf("write_errors_total = %v, want 0", n)
	}
	poll.Until(t, 10*time.Second, func() error {
		if !strings.Contains(f.logs.String(), channels[0]) {
			return fmt.Errorf("skip not logged: %s", f.logs.String())
		}
		return nil
	})
	if err := f.b.Ready(); err != nil {
		t.Errorf("Ready = %v", err)
	}
	n, err := f.rdb.XLen(context.Background(), f.layout.Feed(0)).Result()
	if err != nil || n != 12 {
		t.Errorf("feed holds %d, %v; want 12", n, err)
	}
}

// A collector that does not hold the lease has its batches refused by the
// script: they are discarded, never counted as written, never retried.
func TestFencedBatchDiscarded(t *testing.T) {
	const lease = "test:collector:leader"
	f := newFixtureWith(t, 1, Config{MaxBatch: 10, Buffer: 100},
		streams.WriterConfig{FeedLen: 1000, HistoryLen: 1000, Lease: lease, Holder: "me"})
	ctx := context.Background()
	if err := f.rdb.Set(ctx, lease, "other", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	f.add(events(t, 0, 5))
	poll.Until(t, 10*time.Second, func() error {
		if n := f.b.Pending(); n != 0 {
			return fmt.Errorf("%d events pending", n)
		}
		return nil
	})
	if n := testutil.ToFloat64(f.m.Written); n != 0 {
		t.Errorf("events_written_total = %v while fenced, want 0", n)
	}
	if n, _ := f.rdb.Exists(ctx, f.layout.Feed(0)).Result(); n != 0 {
		t.Error("a fenced write reached the feed")
	}
	if err := f.rdb.Set(ctx, lease, "me", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	f.add(events(t, 5, 3))
	f.waitWritten(t, 3)
	f.wantStored(t, 5, 3)
}

// Redis at maxmemory answers OOM: the batcher keeps the events and says
// so, with what to do, rather than calling Redis unreachable.
func TestOOMLoggedAsOOM(t *testing.T) {
	f := newFixture(t, 1, Config{MaxBatch: 10, Buffer: 100})
	ctx := context.Background()
	if err := f.rdb.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	f.add(events(t, 0, 4))
	poll.Until(t, 10*time.Second, func() error {
		if !strings.Contains(f.logs.String(), "out of memory") {
			return fmt.Errorf("no OOM line in %s", f.logs.String())
		}
		return nil
	})
	if logs := f.logs.String(); strings.Contains(logs, "unreachable") || !strings.Contains(logs, "maxmemory") {
		t.Errorf("OOM logged as an outage, or without the remedy: %s", logs)
	}
	if err := f.rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	f.waitWritten(t, 4)
	f.wantStored(t, 0, 4)
}
