package tail_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/tickwire/tickwire/publisher/internal/tail"
	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/shared/streams"
	"github.com/tickwire/tickwire/testkit/logbuf"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// splitLines splits the tail's output, read by the test while Run writes, at
// its newlines (a last line without one counts too).
func splitLines(out *logbuf.Buffer) []string {
	return strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
}

type env struct {
	t      *testing.T
	rdb    *redis.Client
	layout streams.Layout
	w      *streams.Writer
	ts     int64
}

func newEnv(t *testing.T, shards int) *env {
	rdb := redistest.Start(t).Client()
	layout, _ := streams.NewLayout("tl", shards)
	return &env{t: t, rdb: rdb, layout: layout, ts: 1764288000000,
		w: streams.NewWriter(rdb, layout, streams.WriterConfig{FeedLen: 10000, HistoryLen: 1000})}
}

// write adds one event per channel name, in order, data {"n":i}.
func (e *env) write(names ...string) {
	e.t.Helper()
	var evs []event.Event
	for _, name := range names {
		ch, err := event.ParseChannel(name)
		if err != nil {
			e.t.Fatal(err)
		}
		e.ts++
		evs = append(evs, event.Event{Channel: ch, TS: e.ts, Data: []byte(fmt.Sprintf(`{"n":%d}`, e.ts%1000))})
	}
	if _, err := e.w.Write(context.Background(), streams.PendingOf(evs)); err != nil {
		e.t.Fatal(err)
	}
}

// run starts a tail; the returned stop cancels it and returns Run's error.
func (e *env) run(o tail.Options, chans ...string) (*logbuf.Buffer, func() error) {
	e.t.Helper()
	for _, name := range chans {
		ch, err := event.ParseChannel(name)
		if err != nil {
			e.t.Fatal(err)
		}
		o.Channels = append(o.Channels, ch)
	}
	out := &logbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := make(chan struct{})
	o.Started = func() { close(started) }
	go func() { done <- tail.Run(ctx, e.rdb, e.layout, o, out) }()
	select { // what the test writes next is after the start
	case <-started:
	case err := <-done:
		e.t.Fatalf("Run = %v before it started", err)
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("Run did not return after its context ended")
		}
	}
	e.t.Cleanup(func() { _ = stop() })
	return out, stop
}

// channelsOf returns the channel column of each line ("" for none).
func channelsOf(lines []string) []string {
	var out []string
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 4 {
			out = append(out, f[1])
		}
	}
	return out
}

// waitLines waits until out has n event lines.
func waitLines(t *testing.T, out *logbuf.Buffer, n int) []string {
	t.Helper()
	poll.Until(t, 10*time.Second, func() error {
		if got := channelsOf(splitLines(out)); len(got) < n {
			return fmt.Errorf("%d lines, want %d: %q", len(got), n, splitLines(out))
		}
		return nil
	})
	return splitLines(out)
}

// TestLive: only events written after the start, of the named channels
// and kinds, over two shards; nothing else; a clean end.
func TestLive(t *testing.T) {
	e := newEnv(t, 2)
	e.write("trade:AAPL", "quote:MSFT") // before: not shown
	out, stop := e.run(tail.Options{}, "trade:AAPL", "quote:*")
	e.write("trade:AAPL", "trade:MSFT", "quote:MSFT", "bar:AAPL", "quote:NVDA", "trade:AAPL")
	lines := waitLines(t, out, 4)
	if err := stop(); err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
	got := channelsOf(splitLines(out))
	count := map[string]int{}
	for _, ch := range got {
		count[ch]++
	}
	if len(got) != 4 || count["trade:AAPL"] != 2 || count["quote:MSFT"] != 1 || count["quote:NVDA"] != 1 {
		t.Errorf("channels %q, want trade:AAPL×2, quote:MSFT, quote:NVDA", got)
	}
	if f := strings.Fields(lines[0]); !strings.HasPrefix(f[0], "2025-11-28T00:00:00.0") || !strings.HasPrefix(f[3], `{"n":`) {
		t.Errorf("line %q: want event time, channel, id, data", lines[0])
	}
}

// TestStartsAtNow: a tail started when the feed already has entries
// shows none of them, however long the feed.
func TestStartsAtNow(t *testing.T) {
	e := newEnv(t, 1)
	for range 3 {
		e.write("trade:AAPL", "trade:AAPL")
	}
	out, stop := e.run(tail.Options{}, "trade:AAPL")
	e.write("trade:MSFT", "trade:AAPL")
	waitLines(t, out, 1)
	_ = stop()
	if got := channelsOf(splitLines(out)); len(got) != 1 {
		t.Errorf("lines %q, want only the one written after the start", splitLines(out))
	}
}

// TestLast: --last N prints the N newest matching events from history,
// oldest first, then live ones, without a duplicate.
func TestLast(t *testing.T) {
	e := newEnv(t, 2)
	e.write("trade:AAPL", "trade:MSFT", "quote:AAPL", "trade:NVDA", "trade:AAPL")
	out, stop := e.run(tail.Options{Last: 3, JSON: true}, "trade:*")
	var lines []string
	poll.Until(t, 10*time.Second, func() error {
		if lines = splitLines(out); len(lines) < 3 {
			return fmt.Errorf("%q", lines)
		}
		return nil
	})
	e.write("trade:TSLA")
	poll.Until(t, 10*time.Second, func() error {
		if lines = splitLines(out); len(lines) < 4 {
			return fmt.Errorf("%q", lines)
		}
		return nil
	})
	_ = stop()
	var chans []string
	var prev int64
	for _, l := range splitLines(out) {
		var ev struct {
			Ch   string          `json:"ch"`
			ID   string          `json:"id"`
			TS   int64           `json:"ts"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("--json line %q: %v", l, err)
		}
		if ev.TS <= prev {
			t.Errorf("events out of time order at %q", l)
		}
		prev = ev.TS
		chans = append(chans, ev.Ch)
	}
	if want := "trade:MSFT trade:NVDA trade:AAPL trade:TSLA"; strings.Join(chans, " ") != want {
		t.Errorf("channels %q, want %s", chans, want)
	}
}

// TestSince: every matching event after the id, then live ones; a
// trimmed feed is noted.
func TestSince(t *testing.T) {
	e := newEnv(t, 1)
	e.write("trade:AAPL")
	first := e.rdb.XRevRangeN(context.Background(), e.layout.Feed(0), "+", "-", 1).Val()[0].ID
	e.write("trade:AAPL", "quote:AAPL", "trade:AAPL")
	var notes logbuf.Buffer
	out, stop := e.run(tail.Options{Since: first, Notes: &notes}, "trade:AAPL")
	waitLines(t, out, 2)
	e.write("trade:AAPL")
	waitLines(t, out, 3)
	_ = stop()
	if got := channelsOf(splitLines(out)); len(got) != 3 {
		t.Errorf("lines %q, want the 2 after %s and 1 live", splitLines(out), first)
	}
	if strings.TrimSpace(strings.Join(splitLines(&notes), "")) != "" {
		t.Errorf("notes %q, want none", splitLines(&notes))
	}
	// An id older than the feed's oldest entry: the gap is said.
	e.rdb.XTrimMaxLen(context.Background(), e.layout.Feed(0), 1)
	var notes2 logbuf.Buffer
	_, stop2 := e.run(tail.Options{Since: "1-0", Notes: &notes2}, "trade:AAPL")
	poll.Until(t, 10*time.Second, func() error {
		if !strings.Contains(strings.Join(splitLines(&notes2), ""), "trimmed") {
			return fmt.Errorf("notes %q", splitLines(&notes2))
		}
		return nil
	})
	_ = stop2()
}

func TestUsage(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	aapl, _ := event.ParseChannel("trade:AAPL")
	for _, o := range []tail.Options{
		{},
		{Channels: []event.Channel{aapl}, Last: 1, Since: "1-0"},
		{Channels: []event.Channel{aapl}, Since: "yesterday"},
	} {
		if err := tail.Run(ctx, e.rdb, e.layout, o, &bytes.Buffer{}); !errors.Is(err, tail.ErrUsage) {
			t.Errorf("Run(%+v) = %v, want ErrUsage", o, err)
		}
	}
}
