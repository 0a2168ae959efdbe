package monitor

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
	"golang.org/x/time/rate"

	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/shared/streams"
	"github.com/tickwire/tickwire/testkit/logbuf"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is a monitor of one shard whose group exists and reads nothing:
// the test plays the reader (through the tap) and the clock (poll's now).
type fixture struct {
	m    *Monitor
	rdb  *redis.Client
	feed string
	tap  *Tap
	logs *logbuf.Buffer
	reg  *prometheus.Registry
}

type nopHub struct{}

func (nopHub) Publish([]*hub.Message) {}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	rdb := redistest.Start(t).Client()
	layout, err := streams.NewLayout("mon", 1)
	if err != nil {
		t.Fatal(err)
	}
	feed := layout.Feed(0)
	if _, err := streams.RecreateGroupAtTail(context.Background(), rdb, layout, 0, "publisher:r1"); err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	reg := prometheus.NewRegistry()
	m := New(Config{Client: rdb, Layout: layout, Group: "publisher:r1", StallAfter: 5 * time.Second,
		Log: slog.New(slog.NewTextHandler(logs, nil))}, reg)
	return &fixture{m: m, rdb: rdb, feed: feed, tap: m.Tap(0, nopHub{}), logs: logs, reg: reg}
}

func (f *fixture) add(t *testing.T, n int) {
	t.Helper()
	for range n {
		if err := f.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: f.feed, Values: []any{"ch", "trade:X"}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) poll(t *testing.T, at time.Time) {
	t.Helper()
	if err := f.m.poll(context.Background(), at); err != nil {
		t.Fatal(err)
	}
}

// Unread entries and no progress for StallAfter is a stall: Ready wraps
// ErrStalled and names the feed, the gauge is 1, one ERROR line however
// many polls; progress ends it with one INFO line.
func TestStallVerdict(t *testing.T) {
	f := newFixture(t)
	t0 := time.Now()
	f.poll(t, t0)
	if f.m.Ready() != nil || testutil.ToFloat64(f.m.stalled) != 0 {
		t.Fatal("stalled with an empty feed")
	}
	f.add(t, 3)
	for i := 0; i <= 5; i++ {
		f.poll(t, t0.Add(time.Duration(i)*time.Second)) // 5 s without progress at the last
		if i < 5 && f.m.Ready() != nil {
			t.Fatalf("stalled after %d s, before StallAfter", i)
		}
	}
	err := f.m.Ready()
	if !errors.Is(err, ErrStalled) || !strings.Contains(err.Error(), f.feed) || !strings.Contains(err.Error(), "3 entries") {
		t.Fatalf("Ready = %v, want ErrStalled naming %s and its 3 entries", err, f.feed)
	}
	if v := testutil.ToFloat64(f.m.stalled); v != 1 {
		t.Errorf("stalled gauge %v, want 1", v)
	}
	if v := testutil.ToFloat64(f.m.lag.WithLabelValues("0")); v != 3 {
		t.Errorf("lag gauge %v, want 3", v)
	}
	for i := 6; i < 10; i++ {
		f.poll(t, t0.Add(time.Duration(i)*time.Second))
	}
	if n := f.logs.Count("level=ERROR"); n != 1 {
		t.Errorf("%d ERROR lines, want 1", n)
	}
	f.tap.Publish([]*hub.Message{{Event: event.Event{TS: time.Now().UnixMilli()}}})
	f.poll(t, t0.Add(10*time.Second))
	if err := f.m.Ready(); err != nil {
		t.Errorf("Ready = %v after progress", err)
	}
	if v := testutil.ToFloat64(f.m.stalled); v != 0 {
		t.Errorf("stalled gauge %v after progress", v)
	}
	if n := f.logs.Count("level=INFO msg=\"feed stall ended"); n != 1 {
		t.Errorf("%d INFO lines about the end, want 1", n)
	}
}

// A reader that is slow but moving is not stalled, however long the lag
// stays above 0; neither is an idle feed (lag 0) however long nothing moves.
func TestNoStallWhileMovingOrIdle(t *testing.T) {
	f := newFixture(t)
	t0 := time.Now()
	for i := 0; i < 20; i++ { // idle: lag 0
		f.poll(t, t0.Add(time.Duration(i)*time.Second))
	}
	f.add(t, 5)
	for i := 20; i < 40; i++ { // lag 5, but a batch gets through between polls
		f.tap.Publish(nil)
		f.poll(t, t0.Add(time.Duration(i)*time.Second))
	}
	if err := f.m.Ready(); err != nil {
		t.Fatalf("Ready = %v", err)
	}
	if n := f.logs.Count("level=ERROR"); n != 0 {
		t.Errorf("%d ERROR lines, want none", n)
	}
}

// When Redis cannot count the lag (an entry after the group's position was
// deleted), the monitor still sees that entries wait.
func TestLagUnknownToRedis(t *testing.T) {
	f := newFixture(t)
	f.add(t, 3)
	ids, err := f.rdb.XRange(context.Background(), f.feed, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	// Behind the tail, and an entry deleted after it: Redis cannot count.
	if err := f.rdb.XGroupSetID(context.Background(), f.feed, "publisher:r1", ids[0].ID).Err(); err != nil {
		t.Fatal(err)
	}
	if err := f.rdb.XDel(context.Background(), f.feed, ids[1].ID).Err(); err != nil {
		t.Fatal(err)
	}
	groups, err := f.rdb.XInfoGroups(context.Background(), f.feed).Result()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("XINFO GROUPS lag: %d (-1: nil)", groups[0].Lag)
	lag, err := f.m.readLag(context.Background(), f.feed)
	if err != nil {
		t.Fatal(err)
	}
	if groups[0].Lag < 0 && lag != 1 {
		t.Errorf("lag %d when Redis answers nil, want 1", lag)
	}
	if groups[0].Lag >= 0 && lag != groups[0].Lag {
		t.Errorf("lag %d, Redis says %d", lag, groups[0].Lag)
	}
	if lag < 1 {
		t.Errorf("lag %d with an entry unread", lag)
	}
}

// The feed age follows the newest event read through the tap.
func TestFeedAge(t *testing.T) {
	f := newFixture(t)
	if age := f.m.shards[0].age(); age != 0 {
		t.Fatalf("age %v before any event", age)
	}
	f.tap.Publish([]*hub.Message{
		{Event: event.Event{TS: time.Now().Add(-time.Minute).UnixMilli()}},
		{Event: event.Event{TS: time.Now().Add(-30 * time.Second).UnixMilli()}},
	})
	if age := f.m.shards[0].age(); age < 29 || age > 60 {
		t.Errorf("age %v, want about 30 s (the newest event)", age)
	}
}

// Refusals count every one but log at most a burst and a rate, and say how
// many lines they left out.
func TestRefusalsRateLimited(t *testing.T) {
	logs := &logbuf.Buffer{}
	reg := prometheus.NewRegistry()
	r := NewRefusals(reg, slog.New(slog.NewTextHandler(logs, nil)))
	for _, reason := range RefusedReasons {
		if v := testutil.ToFloat64(r.total.WithLabelValues(reason)); v != 0 {
			t.Fatalf("%s starts at %v", reason, v)
		}
	}
	for range 1000 {
		r.Refuse(RefusedUnauthorized, "remote", "10.0.0.1:5")
	}
	if v := testutil.ToFloat64(r.total.WithLabelValues(RefusedUnauthorized)); v != 1000 {
		t.Errorf("counted %v, want 1000", v)
	}
	if n := logs.Count("connection refused"); n < 1 || n >= 1000 {
		t.Errorf("%d lines for 1000 refusals, want a few", n)
	}
	r.mu.Lock()
	r.lim = rate.NewLimiter(rate.Inf, 0) // let the next one through, as time passing would
	r.mu.Unlock()
	r.Refuse(RefusedFull)
	if logs.Count("refusals_not_logged=") != 1 {
		t.Errorf("no count of the lines left out:\n%s", logs.String())
	}
}
