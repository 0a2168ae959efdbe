package streams

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/event"
)

var bigStreams = WriterConfig{FeedLen: 1_000_000, HistoryLen: 1_000_000}

func TestWriteEmptyBatch(t *testing.T) {
	f := newFixture(t)
	w := NewWriter(f.c, mustLayout(t, 1), bigStreams)
	unwritten, err := unwrittenOf(w.Write(t.Context(), nil))
	if err != nil || unwritten != nil {
		t.Fatalf("Write(nil) = %v, %v", unwritten, err)
	}
	if n, err := f.c.DBSize(t.Context()).Result(); err != nil || n != 0 {
		t.Errorf("DBSIZE after an empty write = %d, %v", n, err)
	}
}

// TestWriteAcrossShards: every event lands in its shard's feed and in its
// channel's history under the same id, with readable fields, and the
// shard's channel set names the channel.
func TestWriteAcrossShards(t *testing.T) {
	f := newFixture(t)
	l := mustLayout(t, 3)
	w := NewWriter(f.c, l, bigStreams)

	symbols := symbolsCoveringShards(t, l, 2)
	var events []Pending
	seq := 0
	for round := 0; round < 4; round++ {
		for _, sym := range symbols {
			for _, kind := range []string{"trade", "quote", "bar"} {
				seq++
				events = append(events, Pending{Event: event.Event{
					Channel: mustChannel(t, kind+":"+strings.ToLower(sym)),
					TS:      1764288000000 + int64(seq),
					Data:    []byte(fmt.Sprintf(`{"n":%d,"kind":%q}`, seq, kind)),
				}})
			}
		}
	}
	unwritten, err := unwrittenOf(w.Write(t.Context(), events))
	if err != nil || len(unwritten) != 0 {
		t.Fatalf("Write = %d unwritten, %v", len(unwritten), err)
	}

	feeds := make([]map[string]redis.XMessage, l.Shards)
	total := 0
	for s := range l.Shards {
		feeds[s] = make(map[string]redis.XMessage)
		for _, m := range f.xrange(t, l.Feed(s)) {
			feeds[s][m.ID] = m
			if e := decode(t, m); l.Shard(e.Channel.Symbol) != s {
				t.Errorf("feed of shard %d holds %s of shard %d", s, e.Channel, l.Shard(e.Channel.Symbol))
			}
			for _, k := range []string{"ch", "ts", "data"} {
				if _, ok := m.Values[k].(string); !ok {
					t.Errorf("feed entry %s field %q = %#v, want a string", m.ID, k, m.Values[k])
				}
			}
		}
		total += len(feeds[s])
	}
	if total != len(events) {
		t.Errorf("feeds hold %d entries, wrote %d", total, len(events))
	}

	wantSets := make(map[int][]string)
	for ch, want := range byChannel(events) {
		s := l.Shard(ch.Symbol)
		wantSets[s] = append(wantSets[s], ch.String())
		hist := f.xrange(t, l.History(ch))
		if len(hist) != len(want) {
			t.Errorf("history %s holds %d entries, want %d", l.History(ch), len(hist), len(want))
			continue
		}
		for i, m := range hist {
			got := decode(t, m)
			if !sameEvent(got, want[i]) {
				t.Errorf("history %s entry %d = %+v, want %+v", ch, i, got, want[i])
			}
			fm, ok := feeds[s][m.ID]
			if !ok {
				t.Errorf("history %s entry %s is not in the feed of shard %d", ch, m.ID, s)
				continue
			}
			if !reflect.DeepEqual(fm.Values, m.Values) {
				t.Errorf("entry %s: feed %v, history %v", m.ID, fm.Values, m.Values)
			}
		}
	}
	for s := range l.Shards {
		got, err := f.c.SMembers(t.Context(), l.Channels(s)).Result()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		slices.Sort(wantSets[s])
		if !slices.Equal(got, wantSets[s]) {
			t.Errorf("channels of shard %d = %q, want %q", s, got, wantSets[s])
		}
	}
}

func TestWriteTrimsByLength(t *testing.T) {
	f := newFixture(t)
	f.smallNodes(t)
	l := mustLayout(t, 1)
	cfg := WriterConfig{FeedLen: 100, HistoryLen: 50}
	w := NewWriter(f.c, l, cfg)
	aapl := mustChannel(t, "trade:AAPL")

	const written = 1000
	for batch := 0; batch < written/100; batch++ {
		var events []Pending
		for i := range 100 {
			events = append(events, trade(t, "AAPL", batch*100+i))
		}
		if _, err := unwrittenOf(w.Write(t.Context(), events)); err != nil {
			t.Fatal(err)
		}
	}
	// MAXLEN ~ trims whole nodes of 10 entries: the length stays within a
	// node of the bound, far below what was written.
	for _, c := range []struct {
		key   string
		bound int64
	}{{l.History(aapl), cfg.HistoryLen}, {l.Feed(0), cfg.FeedLen}} {
		n := f.xlen(t, c.key)
		if n < c.bound || n > c.bound+10 {
			t.Errorf("XLEN %s = %d after %d writes, want %d to %d", c.key, n, written, c.bound, c.bound+10)
		}
	}
	// The newest event survives, in both.
	last, err := f.c.XRevRangeN(t.Context(), l.History(aapl), "+", "-", 1).Result()
	if err != nil || len(last) != 1 {
		t.Fatalf("xrevrange: %v %v", last, err)
	}
	if e := decode(t, last[0]); e.TS != trade(t, "AAPL", written-1).TS {
		t.Errorf("last history entry has ts %d, want the last written", e.TS)
	}
	feedLast, _ := f.c.XRevRangeN(t.Context(), l.Feed(0), "+", "-", 1).Result()
	if len(feedLast) != 1 || feedLast[0].ID != last[0].ID {
		t.Errorf("last feed entry %v, last history entry %v", feedLast, last)
	}
}

// prefill writes n entries with ids 1-0 … n-0, as if written long ago.
func prefill(t *testing.T, f fixture, key string, n int) {
	t.Helper()
	pipe := f.c.Pipeline()
	for i := 1; i <= n; i++ {
		pipe.XAdd(t.Context(), &redis.XAddArgs{Stream: key, ID: strconv.Itoa(i) + "-0", Values: []any{"ch", "trade:AAPL", "ts", strconv.Itoa(i), "data", "{}"}})
	}
	if _, err := pipe.Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestWriteTrimsByAge(t *testing.T) {
	f := newFixture(t)
	f.smallNodes(t)
	l := mustLayout(t, 1)
	aapl := mustChannel(t, "trade:AAPL")
	prefill(t, f, l.History(aapl), 1000)

	// The writer's clock says 1.5 s after the epoch and history is kept for
	// 1 s: MINID ~ 500 drops whole nodes below id 500.
	w := NewWriter(f.c, l, WriterConfig{FeedLen: 1000, HistoryLen: 100_000, Retention: time.Second})
	w.now = func() time.Time { return time.UnixMilli(1500) }
	if _, err := w.Write(t.Context(), []Pending{trade(t, "AAPL", 1)}); err != nil {
		t.Fatal(err)
	}
	first, err := f.c.XRangeN(t.Context(), l.History(aapl), "-", "+", 1).Result()
	if err != nil || len(first) != 1 {
		t.Fatalf("xrange: %v %v", first, err)
	}
	id, err := event.ParseID(first[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if id.Ms > 500 || id.Ms <= 500-10 {
		t.Errorf("first history id after MINID ~ 500 is %s, want within one node below 500", first[0].ID)
	}
	if n := f.xlen(t, l.History(aapl)); n < 502 || n > 512 {
		t.Errorf("XLEN = %d, want 501 kept entries and the new one, plus at most a node", n)
	}
	last, _ := f.c.XRevRangeN(t.Context(), l.History(aapl), "+", "-", 1).Result()
	if len(last) != 1 || decode(t, last[0]).TS != trade(t, "AAPL", 1).TS {
		t.Errorf("the new event is not the last history entry: %v", last)
	}
}

func TestWriteWithoutRetentionKeepsOldHistory(t *testing.T) {
	f := newFixture(t)
	f.smallNodes(t)
	l := mustLayout(t, 1)
	aapl := mustChannel(t, "trade:AAPL")
	prefill(t, f, l.History(aapl), 300)
	w := NewWriter(f.c, l, WriterConfig{FeedLen: 1000, HistoryLen: 100_000})
	w.now = func() time.Time { t.Error("now called with Retention 0"); return time.Now() }
	if _, err := w.Write(t.Context(), []Pending{trade(t, "AAPL", 1)}); err != nil {
		t.Fatal(err)
	}
	if n := f.xlen(t, l.History(aapl)); n != 301 {
		t.Errorf("XLEN = %d, want 301: nothing trimmed", n)
	}
}

func TestWriteSplitsLargeBatches(t *testing.T) {
	for _, shards := range []int{1, 3} {
		t.Run("shards="+strconv.Itoa(shards), func(t *testing.T) {
			f := newFixture(t)
			l := mustLayout(t, shards)
			w := NewWriter(f.c, l, bigStreams)
			symbols := symbolsCoveringShards(t, l, 2)
			n := 3*MaxScriptEvents + 37
			events := make([]Pending, n)
			for i := range events {
				events[i] = trade(t, symbols[i%len(symbols)], i)
			}
			// Half the events on one symbol, so one shard alone needs
			// several script calls.
			for i := 0; i < n; i += 2 {
				events[i] = trade(t, symbols[0], i)
			}

			unwritten, err := unwrittenOf(w.Write(t.Context(), events))
			if err != nil || len(unwritten) != 0 {
				t.Fatalf("Write = %d unwritten, %v", len(unwritten), err)
			}
			var total int64
			for _, key := range l.Feeds() {
				total += f.xlen(t, key)
			}
			if total != int64(n) {
				t.Errorf("feeds hold %d entries, wrote %d", total, n)
			}
			for ch, want := range byChannel(events) {
				hist := f.xrange(t, l.History(ch))
				if len(hist) != len(want) {
					t.Errorf("history %s: %d entries, want %d", ch, len(hist), len(want))
					continue
				}
				for i, m := range hist {
					if got := decode(t, m); !sameEvent(got, want[i]) {
						t.Fatalf("history %s entry %d = %+v, want %+v (order lost)", ch, i, got, want[i])
					}
				}
			}
		})
	}
}

func TestSplit(t *testing.T) {
	for _, shards := range []int{1, 3} {
		t.Run("shards="+strconv.Itoa(shards), func(t *testing.T) {
			l := mustLayout(t, shards)
			w := NewWriter(nil, l, bigStreams)
			symbols := symbolsCoveringShards(t, l, 1)
			events := make([]Pending, 2*MaxScriptEvents+1)
			for i := range events {
				events[i] = trade(t, symbols[(i/7)%len(symbols)], i)
			}
			perShard := make(map[int][]Pending)
			for _, c := range slices.Concat(w.split(events)...) {
				if len(c.events) == 0 || len(c.events) > MaxScriptEvents {
					t.Errorf("chunk of %d events", len(c.events))
				}
				for _, e := range c.events {
					if s := l.Shard(e.Channel.Symbol); s != c.shard {
						t.Errorf("event of shard %d in a chunk of shard %d", s, c.shard)
					}
				}
				perShard[c.shard] = append(perShard[c.shard], c.events...)
			}
			for s, got := range perShard {
				var want []Pending
				for _, e := range events {
					if l.Shard(e.Channel.Symbol) == s {
						want = append(want, e)
					}
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("shard %d: chunks do not hold its events in order", s)
				}
			}
		})
	}
}

func TestWriteAfterScriptFlush(t *testing.T) {
	f := newFixture(t)
	l := mustLayout(t, 3)
	w := NewWriter(f.c, l, bigStreams)
	symbols := symbolsCoveringShards(t, l, 1)
	batch := func(base int) []Pending {
		var out []Pending
		for i, sym := range symbols {
			out = append(out, trade(t, sym, base+i))
		}
		return out
	}
	if _, err := w.Write(t.Context(), batch(0)); err != nil {
		t.Fatal(err)
	}
	if err := f.c.ScriptFlush(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	// Every shard's EVALSHA now fails with NOSCRIPT.
	unwritten, err := unwrittenOf(w.Write(t.Context(), batch(100)))
	if err != nil || len(unwritten) != 0 {
		t.Fatalf("Write after SCRIPT FLUSH = %d unwritten, %v", len(unwritten), err)
	}
	for _, sym := range symbols {
		if n := f.xlen(t, l.History(mustChannel(t, "trade:"+sym))); n != 2 {
			t.Errorf("history of %s holds %d entries, want 2", sym, n)
		}
	}
	exists, err := f.c.ScriptExists(t.Context(), w.script.Hash()).Result()
	if err != nil || !exists[0] {
		t.Errorf("script not cached again after the fallback: %v %v", exists, err)
	}
}

func TestWriteToStoppedServer(t *testing.T) {
	f := newFixture(t)
	l := mustLayout(t, 3)
	w := NewWriter(f.c, l, bigStreams)
	symbols := symbolsCoveringShards(t, l, 2)
	var events []Pending
	for i := range 40 {
		events = append(events, trade(t, symbols[i%len(symbols)], i))
	}
	f.srv.Stop()

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	unwritten, err := unwrittenOf(w.Write(ctx, events))
	if err == nil {
		t.Fatal("Write to a stopped server returned no error")
	}
	if len(unwritten) != len(events) {
		t.Fatalf("Write returned %d unwritten of %d", len(unwritten), len(events))
	}
	if !reflect.DeepEqual(byChannel(unwritten), byChannel(events)) {
		t.Errorf("unwritten events are not the written ones in their order per channel")
	}

	// Retrying once Redis is back (empty, without the script) writes them.
	f.srv.Restart()
	unwritten, err = unwrittenOf(w.Write(t.Context(), unwritten))
	if err != nil || len(unwritten) != 0 {
		t.Fatalf("retry = %d unwritten, %v", len(unwritten), err)
	}
	var total int64
	for _, key := range l.Feeds() {
		total += f.xlen(t, key)
	}
	if total != int64(len(events)) {
		t.Errorf("feeds hold %d entries after the retry, want %d", total, len(events))
	}
}

// TestWritePartialFailure: one shard's script fails before writing; only
// that shard's events come back, and the error names it.
func TestWritePartialFailure(t *testing.T) {
	f := newFixture(t)
	l := mustLayout(t, 3)
	w := NewWriter(f.c, l, bigStreams)
	symbols := symbolsCoveringShards(t, l, 2)
	var events []Pending
	for i := range 30 {
		events = append(events, trade(t, symbols[i%len(symbols)], i))
	}
	const broken = 1
	if err := f.c.Set(t.Context(), l.Feed(broken), "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	unwritten, err := unwrittenOf(w.Write(t.Context(), events))
	if err == nil || !strings.Contains(err.Error(), "shard 1") || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("Write error = %v, want one naming shard 1 and WRONGTYPE", err)
	}
	var want []Pending
	for _, e := range events {
		if l.Shard(e.Channel.Symbol) == broken {
			want = append(want, e)
		}
	}
	if !reflect.DeepEqual(unwritten, want) {
		t.Errorf("unwritten = %d events, want the %d of shard %d in order", len(unwritten), len(want), broken)
	}
	for s := range l.Shards {
		if s == broken {
			continue
		}
		var n int
		for _, e := range events {
			if l.Shard(e.Channel.Symbol) == s {
				n++
			}
		}
		if got := f.xlen(t, l.Feed(s)); got != int64(n) {
			t.Errorf("feed of shard %d holds %d, want %d", s, got, n)
		}
	}
}

// TestWriteNeverReturnsWrittenEvents: Write promises that events it returns
// were not written, so a retry cannot duplicate them. The script's SADD
// runs after every XADD; when it fails the feed already holds the batch.
func TestWriteNeverReturnsWrittenEvents(t *testing.T) {
	f := newFixture(t)
	l := mustLayout(t, 1)
	w := NewWriter(f.c, l, bigStreams)
	if err := f.c.Set(t.Context(), l.Channels(0), "not a set", 0).Err(); err != nil {
		t.Fatal(err)
	}
	events := []Pending{trade(t, "AAPL", 1), trade(t, "MSFT", 2)}
	unwritten, err := unwrittenOf(w.Write(t.Context(), events))
	if n := f.xlen(t, l.Feed(0)); n > 0 && len(unwritten) > 0 {
		t.Errorf("Write returned %d events as unwritten (err %v), but the feed holds %d of them: a retry duplicates", len(unwritten), err, n)
	}
}

// TestWriteHistoryAheadOfFeed: should a history already hold a larger id,
// the event still reaches the feed and the rest of the batch is written.
func TestWriteHistoryAheadOfFeed(t *testing.T) {
	f := newFixture(t)
	l := mustLayout(t, 1)
	w := NewWriter(f.c, l, bigStreams)
	aapl := mustChannel(t, "trade:AAPL")
	future := "99999999999999-0"
	if err := f.c.XAdd(t.Context(), &redis.XAddArgs{Stream: l.History(aapl), ID: future, Values: []any{"ch", "trade:AAPL", "ts", "1", "data", "{}"}}).Err(); err != nil {
		t.Fatal(err)
	}
	unwritten, err := unwrittenOf(w.Write(t.Context(), []Pending{trade(t, "AAPL", 1), trade(t, "MSFT", 2)}))
	if err != nil || len(unwritten) != 0 {
		t.Fatalf("Write = %d unwritten, %v", len(unwritten), err)
	}
	if n := f.xlen(t, l.Feed(0)); n != 2 {
		t.Errorf("feed holds %d, want 2", n)
	}
	if hist := f.xrange(t, l.History(aapl)); len(hist) != 1 || hist[0].ID != future {
		t.Errorf("history of AAPL = %v, want only the future entry", hist)
	}
	if n := f.xlen(t, l.History(mustChannel(t, "trade:MSFT"))); n != 1 {
		t.Errorf("history of MSFT holds %d, want 1", n)
	}
}

// TestWriteConcurrent: concurrent writers interleave whole scripts, so every
// history entry still has its feed twin and ids only grow.
func TestWriteConcurrent(t *testing.T) {
	f := newFixture(t)
	l := mustLayout(t, 2)
	symbols := symbolsCoveringShards(t, l, 1)
	const writers, batches, size = 4, 10, 20
	work := make([][][]Pending, writers)
	for g := range work {
		work[g] = make([][]Pending, batches)
		for b := range batches {
			for i := range size {
				work[g][b] = append(work[g][b], trade(t, symbols[i%len(symbols)], (g*batches+b)*size+i))
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	// Writers of their own: one Writer is used by one goroutine at a time
	// (TestWriteRefusesConcurrentUse), but several processes may write.
	for g := range writers {
		w := NewWriter(f.c, l, bigStreams)
		wg.Go(func() {
			for _, events := range work[g] {
				if _, err := unwrittenOf(w.Write(t.Context(), events)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var total int64
	for _, key := range l.Feeds() {
		total += f.xlen(t, key)
	}
	if total != writers*batches*size {
		t.Errorf("feeds hold %d, want %d", total, writers*batches*size)
	}
	var hist int
	for _, sym := range symbols {
		ch := mustChannel(t, "trade:"+sym)
		feed := make(map[string]bool)
		for _, m := range f.xrange(t, l.Feed(l.Shard(sym))) {
			feed[m.ID] = true
		}
		for _, m := range f.xrange(t, l.History(ch)) {
			if !feed[m.ID] {
				t.Errorf("history %s entry %s is not in the feed", ch, m.ID)
			}
			hist++
		}
	}
	if hist != writers*batches*size {
		t.Errorf("histories hold %d, want %d", hist, writers*batches*size)
	}
}

func TestIsNoScript(t *testing.T) {
	if IsNoScript(nil) || IsNoScript(errors.New("ERR other")) {
		t.Error("isNoScript true for nil or another error")
	}
	if !IsNoScript(redis.ErrNoScript) {
		t.Error("IsNoScript(redis.ErrNoScript) = false")
	}
}

func TestWriteRefusesConcurrentUse(t *testing.T) {
	w := NewWriter(nil, mustLayout(t, 1), bigStreams)
	w.busy.Store(true) // as if another goroutine were inside Write
	events := []Pending{trade(t, "AAPL", 1)}
	unwritten, err := unwrittenOf(w.Write(t.Context(), events))
	if !errors.Is(err, ErrConcurrentWrite) || len(unwritten) != 1 {
		t.Fatalf("got %v, %d unwritten; want ErrConcurrentWrite and the event back", err, len(unwritten))
	}
}

// A retry of a chunk that Redis had in fact written (the reply was lost)
// writes nothing twice.
func TestWriteRetryIsIdempotent(t *testing.T) {
	f := newFixture(t)
	l := mustLayout(t, 1)
	w := NewWriter(f.c, l, bigStreams)
	events := []Pending{trade(t, "AAPL", 1), trade(t, "AAPL", 2)}
	if _, err := unwrittenOf(w.Write(t.Context(), events)); err != nil {
		t.Fatal(err)
	}
	// The same events again, as the batcher would resend them after an
	// ambiguous failure, followed by a new one.
	again := append(slices.Clone(events), trade(t, "AAPL", 3))
	if _, err := unwrittenOf(w.Write(t.Context(), again)); err != nil {
		t.Fatal(err)
	}
	if n := f.c.XLen(t.Context(), l.Feed(0)).Val(); n != 3 {
		t.Fatalf("feed holds %d entries, want 3 (no duplicates)", n)
	}
	if n := f.c.XLen(t.Context(), l.History(events[0].Channel)).Val(); n != 3 {
		t.Fatalf("history holds %d entries, want 3", n)
	}
}

// TestWriteLimitsPerKind: bars keep their own length and age (a day for a
// chart) while trades keep the default ones, in one chunk of one shard.
func TestWriteLimitsPerKind(t *testing.T) {
	f := newFixture(t)
	f.smallNodes(t)
	l := mustLayout(t, 1)
	trd, bar := mustChannel(t, "trade:AAPL"), mustChannel(t, "bar:AAPL")
	prefill(t, f, l.History(trd), 1000)
	prefill(t, f, l.History(bar), 1000)
	w := NewWriter(f.c, l, WriterConfig{FeedLen: 100_000, HistoryLen: 50, Retention: time.Second,
		ByKind: map[event.Kind]HistoryLimits{event.KindBar: {Len: 100_000, Retention: time.Hour}}})
	w.now = func() time.Time { return time.UnixMilli(1500) }
	barEv := trade(t, "AAPL", 1)
	barEv.Channel = bar
	if _, err := w.Write(t.Context(), []Pending{trade(t, "AAPL", 1), barEv}); err != nil {
		t.Fatal(err)
	}
	if n := f.xlen(t, l.History(trd)); n < 50 || n > 60 {
		t.Errorf("trade history XLEN = %d, want its MAXLEN ~ 50", n)
	}
	if n := f.xlen(t, l.History(bar)); n != 1001 {
		t.Errorf("bar history XLEN = %d, want 1001: nothing trimmed within its hour", n)
	}
	ttl := func(key string) time.Duration {
		d, err := f.c.PTTL(t.Context(), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := ttl(l.History(bar)); d <= time.Second || d > time.Hour {
		t.Errorf("bar history TTL %v, want its retention of an hour", d)
	}
	if d := ttl(l.History(trd)); d <= 0 || d > time.Second {
		t.Errorf("trade history TTL %v, want the default retention of a second", d)
	}
}
