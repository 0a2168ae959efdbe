package streams

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/poll"
)

// sink collects what a GroupReader hands over.
type sink struct {
	mu     sync.Mutex
	events []event.Event
}

func (s *sink) handle(evs []event.Event) {
	s.mu.Lock()
	s.events = append(s.events, evs...)
	s.mu.Unlock()
}

func (s *sink) got() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Event(nil), s.events...)
}

// waitFor waits until the reader has handed over exactly want (by ts, in
// order), and fails on anything else: a duplicate, a gap, a stray event.
func (s *sink) waitFor(t *testing.T, want []int64) {
	t.Helper()
	poll.Until(t, 20*time.Second, func() error {
		got := s.got()
		var ts []int64
		for _, e := range got {
			ts = append(ts, e.TS)
		}
		if len(ts) > len(want) {
			t.Fatalf("reader handed over %v, want %v", ts, want)
		}
		for i := range ts {
			if ts[i] != want[i] {
				t.Fatalf("reader handed over %v, want %v", ts, want)
			}
		}
		if len(ts) < len(want) {
			return fmt.Errorf("reader handed over %v, want %v", ts, want)
		}
		return nil
	})
}

// startReader runs a GroupReader of shard 0 of l on its own client until
// the test ends.
func startReader(t *testing.T, f fixture, l Layout, s *sink) *GroupReader {
	t.Helper()
	r := NewGroupReader(f.srv.Client(), GroupReaderConfig{
		Layout: l, Shard: 0, Group: GroupName("pub-1"), Consumer: "pub-1", Handle: s.handle,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	poll.Until(t, 10*time.Second, r.Ready)
	return r
}

// tsRange returns the timestamps trade(t, sym, seq) gives seq in [from, to).
func tsRange(from, to int) []int64 {
	var out []int64
	for i := from; i < to; i++ {
		out = append(out, 1764288000000+int64(i))
	}
	return out
}

func writeTrades(t *testing.T, w *Writer, from, to int) {
	t.Helper()
	var evs []Pending
	for i := from; i < to; i++ {
		evs = append(evs, trade(t, "AAPL", i))
	}
	if _, err := unwrittenOf(w.Write(t.Context(), evs)); err != nil {
		t.Fatal(err)
	}
}

// historyTS reads the history of trade:AAPL and checks it against the
// feed: same ids, same fields.
func historyTS(t *testing.T, f fixture, l Layout) []int64 {
	t.Helper()
	feed := f.xrange(t, l.Feed(0))
	byID := make(map[string]redis.XMessage, len(feed))
	for _, m := range feed {
		byID[m.ID] = m
	}
	var ts []int64
	for _, m := range f.xrange(t, l.History(mustChannel(t, "trade:AAPL"))) {
		if fm, ok := byID[m.ID]; !ok || fmt.Sprint(fm.Values) != fmt.Sprint(m.Values) {
			t.Fatalf("history entry %s %v is not the feed's", m.ID, m.Values)
		}
		ts = append(ts, decode(t, m).TS)
	}
	return ts
}

// The Redis contract, round trip: what the writer writes, the group reader
// hands over once each, in order, and history holds under the same ids;
// also when the group is destroyed, and when Redis loses everything and the
// new feed's ids lie below the last id the reader dispatched.
func TestContractRoundTrip(t *testing.T) {
	f := newFixture(t)
	l := mustLayout(t, 1)
	w := NewWriter(f.c, l, bigStreams)
	s := &sink{}
	startReader(t, f, l, s)

	writeTrades(t, w, 0, 3)
	s.waitFor(t, tsRange(0, 3))
	if got := historyTS(t, f, l); fmt.Sprint(got) != fmt.Sprint(tsRange(0, 3)) {
		t.Fatalf("history %v, want %v", got, tsRange(0, 3))
	}

	// Lost group, same feed: it comes back after the last id dispatched.
	if err := DestroyGroup(t.Context(), f.c, l.Feed(0), GroupName("pub-1")); err != nil {
		t.Fatal(err)
	}
	writeTrades(t, w, 3, 5)
	s.waitFor(t, tsRange(0, 5))

	// An entry far ahead of the clock (written by hand, or by a Redis
	// whose clock was ahead) becomes the last id dispatched...
	future := strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10) + "-0"
	ahead := trade(t, "AAPL", 5)
	if err := f.c.XAdd(t.Context(), &redis.XAddArgs{Stream: l.Feed(0), ID: future, Values: ahead.Fields()}).Err(); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, tsRange(0, 6))

	// ...then Redis loses its data: the new feed's ids are all below it,
	// and none of its events may be skipped.
	if err := f.c.FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	writeTrades(t, w, 6, 9)
	s.waitFor(t, tsRange(0, 9))
	if got := historyTS(t, f, l); fmt.Sprint(got) != fmt.Sprint(tsRange(6, 9)) {
		t.Fatalf("history after FLUSHALL %v, want %v", got, tsRange(6, 9))
	}

	// And once more on the new feed, to see the generation was taken up.
	if err := DestroyGroup(t.Context(), f.c, l.Feed(0), GroupName("pub-1")); err != nil {
		t.Fatal(err)
	}
	writeTrades(t, w, 9, 11)
	s.waitFor(t, tsRange(0, 11))
}

// A reader that re-creates its group before the collector writes again
// (the feed is gone, the mark too) starts the new generation itself; the
// writer keeps it, and a later loss of the group alone resumes in place.
func TestLostGroupBeforeTheWriterIsBack(t *testing.T) {
	f := newFixture(t)
	l := mustLayout(t, 1)
	w := NewWriter(f.c, l, bigStreams)
	s := &sink{}
	r := startReader(t, f, l, s)
	writeTrades(t, w, 0, 2)
	s.waitFor(t, tsRange(0, 2))
	if err := f.c.FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	// The reader re-creates its group on an empty feed (MKSTREAM) and
	// marks a new generation.
	poll.Until(t, 20*time.Second, func() error {
		if n, err := f.c.Exists(t.Context(), l.WriterMark(0)).Result(); err != nil || n != 1 {
			return fmt.Errorf("no mark yet (%v)", err)
		}
		return r.Ready()
	})
	writeTrades(t, w, 2, 4)
	s.waitFor(t, tsRange(0, 4))
	if err := DestroyGroup(t.Context(), f.c, l.Feed(0), GroupName("pub-1")); err != nil {
		t.Fatal(err)
	}
	writeTrades(t, w, 4, 5)
	s.waitFor(t, tsRange(0, 5))
}
