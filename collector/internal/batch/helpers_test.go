package batch

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/tickwire/tickwire/shared/config"
	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/shared/streams"
	"github.com/tickwire/tickwire/testkit/logbuf"
	"github.com/tickwire/tickwire/testkit/redisfix"
)

func TestMain(m *testing.M) {
	redis.SetLogger(quietRedis{}) // outages are the point of some tests; the batcher reports them
	goleak.VerifyTestMain(m)
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// fixture is a batcher writing through a real streams.Writer to a private
// redis-server.
type fixture struct {
	srv    *redistest.Server
	rdb    *redis.Client // the test's own client, for checks
	layout streams.Layout
	b      *Batcher
	m      *Metrics
	logs   *logbuf.Buffer
}

func newFixture(t testing.TB, shards int, cfg Config, opts ...redistest.Options) *fixture {
	t.Helper()
	untrimmed := streams.WriterConfig{FeedLen: 1_000_000, HistoryLen: 100_000} // tests count every event
	return newFixtureWith(t, shards, cfg, untrimmed, opts...)
}

func newFixtureWith(t testing.TB, shards int, cfg Config, wcfg streams.WriterConfig, opts ...redistest.Options) *fixture {
	t.Helper()
	srv := redistest.Start(t, opts...)
	layout, client := redisfix.Open(t, config.Common{RedisURL: srv.URL(), StreamPrefix: "test", StreamShards: shards}, "test-collector")
	if cfg.Ping == nil {
		cfg.Ping = func(ctx context.Context) error { return client.Ping(ctx).Err() }
	}
	w := streams.NewWriter(client, layout, wcfg)
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	b, err := New(w, cfg, slog.New(slog.NewTextHandler(logs, nil)), m)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, rdb: srv.Client(), layout: layout, b: b, m: m, logs: logs}
}

// run starts Run and returns a stop function that ends it and returns its
// error; stop is also called at cleanup.
func (f *fixture) run(t testing.TB) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.b.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// waitWritten waits until n events in all were written.
func (f *fixture) waitWritten(t testing.TB, n int) {
	t.Helper()
	poll.Until(t, 20*time.Second, func() error {
		if got := testutil.ToFloat64(f.m.Written); got != float64(n) {
			return fmt.Errorf("%v events written, want %d (ready: %v)", got, n, f.b.Ready())
		}
		return nil
	})
}

var channels = []string{"trade:AAPL", "quote:AAPL", "trade:MSFT", "quote:NVDA", "trade:BRK.B", "trade:V"}

// events returns n test events numbered from first, spread over channels;
// each carries its number in data.seq.
func events(t testing.TB, first, n int) []event.Event {
	t.Helper()
	out := make([]event.Event, n)
	for i := range out {
		seq := first + i
		ch, err := event.ParseChannel(channels[seq%len(channels)])
		if err != nil {
			t.Fatal(err)
		}
		out[i] = event.Event{Channel: ch, TS: time.Now().UnixMilli(), Data: json.RawMessage(`{"seq":` + strconv.Itoa(seq) + `}`)}
	}
	return out
}

func (f *fixture) add(evs []event.Event) {
	for _, e := range evs {
		f.b.Add(e)
	}
}

// stored reads every feed and checks it against the histories: each
// channel's history holds exactly that channel's feed entries, same ids,
// same fields. It returns the seq numbers in the feeds, in stream order
// per channel, and fails the test on a duplicate.
func (f *fixture) stored(t testing.TB) map[string][]int {
	t.Helper()
	ctx := context.Background()
	feed := map[string][]redis.XMessage{} // channel → feed entries
	for _, key := range f.layout.Feeds() {
		for _, en := range redisfix.Entries(t, f.rdb, key) {
			m, e := en.Msg, en.Event
			if f.layout.Feed(f.layout.Shard(e.Channel.Symbol)) != key {
				t.Fatalf("%s in feed %s, wrong shard", e.Channel, key)
			}
			feed[e.Channel.String()] = append(feed[e.Channel.String()], m)
		}
	}
	seqs := map[string][]int{}
	seen := map[int]bool{}
	for ch, msgs := range feed {
		c, _ := event.ParseChannel(ch)
		hist, err := f.rdb.XRange(ctx, f.layout.History(c), "-", "+").Result()
		if err != nil {
			t.Fatalf("xrange history %s: %v", ch, err)
		}
		if !slices.EqualFunc(msgs, hist, sameEntry) {
			t.Fatalf("%s: feed has %d entries, history %d, or they differ", ch, len(msgs), len(hist))
		}
		member, err := f.rdb.SIsMember(ctx, f.layout.Channels(f.layout.Shard(c.Symbol)), ch).Result()
		if err != nil || !member {
			t.Fatalf("%s not in the channel set (%v)", ch, err)
		}
		for _, m := range msgs {
			seq := seqOf(t, m.Values[event.FieldData])
			if seen[seq] {
				t.Fatalf("event %d stored twice", seq)
			}
			seen[seq] = true
			seqs[ch] = append(seqs[ch], seq)
		}
	}
	return seqs
}

func sameEntry(a, b redis.XMessage) bool {
	return a.ID == b.ID && fmt.Sprint(a.Values) == fmt.Sprint(b.Values)
}

func seqOf(t testing.TB, data any) int {
	t.Helper()
	var d struct{ Seq int }
	s, _ := data.(string)
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		t.Fatalf("data %q: %v", s, err)
	}
	return d.Seq
}

// wantStored checks that exactly the events numbered [first, first+n) are
// stored, once each and in order per channel.
func (f *fixture) wantStored(t testing.TB, first, n int) {
	t.Helper()
	total := 0
	for ch, seqs := range f.stored(t) {
		if !slices.IsSorted(seqs) {
			t.Errorf("%s: events out of order: %v", ch, seqs)
		}
		for _, s := range seqs {
			if s < first || s >= first+n {
				t.Errorf("%s: event %d stored, want only %d to %d", ch, s, first, first+n-1)
			}
		}
		total += len(seqs)
	}
	if total != n {
		t.Errorf("%d events stored, want %d", total, n)
	}
}

// logCount returns how many log lines have msg.
func logCount(l *logbuf.Buffer, msg string) int {
	return l.Count("msg=" + strconv.Quote(msg))
}

var droppedAttr = regexp.MustCompile(`dropped=(\d+)`)

// droppedLogged sums the dropped= counts of the log.
func droppedLogged(l *logbuf.Buffer) int {
	sum := 0
	for _, m := range droppedAttr.FindAllStringSubmatch(l.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		sum += n
	}
	return sum
}
