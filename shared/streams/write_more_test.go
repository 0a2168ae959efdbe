package streams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/redistest"
)

// A history key of another type (written by hand) refuses its channel's
// events: they still reach the feed, the other channels' histories get
// theirs, and the caller learns which channel was skipped.
func TestWriteSkipsWrongTypeHistory(t *testing.T) {
	f := newFixture(t)
	l := mustLayout(t, 1)
	w := NewWriter(f.c, l, WriterConfig{FeedLen: 1000, HistoryLen: 1000, Retention: time.Minute})
	bad := l.History(mustChannel(t, "trade:BAD"))
	if err := f.c.Set(t.Context(), bad, "by hand", 0).Err(); err != nil {
		t.Fatal(err)
	}
	evs := []Pending{trade(t, "BAD", 1), trade(t, "GOOD", 2), trade(t, "BAD", 3), trade(t, "GOOD", 4)}
	res, err := w.Write(t.Context(), evs)
	if err != nil || len(res.Unwritten) != 0 || res.Written != 4 {
		t.Fatalf("Write = %+v, %v; want all 4 written", res, err)
	}
	if len(res.Skipped) != 1 || res.Skipped[0].Channel != "trade:BAD" || !strings.HasPrefix(res.Skipped[0].Reason, "WRONGTYPE") {
		t.Fatalf("Skipped = %+v, want trade:BAD once with WRONGTYPE", res.Skipped)
	}
	if n := f.xlen(t, l.Feed(0)); n != 4 {
		t.Errorf("feed holds %d events, want 4", n)
	}
	if n := f.xlen(t, l.History(mustChannel(t, "trade:GOOD"))); n != 2 {
		t.Errorf("good history holds %d events, want 2", n)
	}
	if v, err := f.c.Get(t.Context(), bad).Result(); err != nil || v != "by hand" {
		t.Errorf("hand-written key = %q, %v; want it untouched", v, err)
	}
	if ttl, err := f.c.PTTL(t.Context(), bad).Result(); err != nil || ttl != -1 {
		t.Errorf("hand-written key got a TTL %v (%v)", ttl, err)
	}
}

// History keys expire after the retention since their last write; without
// a retention they stay.
func TestWriteExpiresQuietHistory(t *testing.T) {
	f := newFixture(t)
	l := mustLayout(t, 1)
	hist := l.History(mustChannel(t, "trade:AAPL"))
	for _, tc := range []struct {
		retention time.Duration
		ok        func(time.Duration) bool
	}{
		{time.Minute, func(ttl time.Duration) bool { return ttl > 0 && ttl <= time.Minute }},
		{0, func(ttl time.Duration) bool { return ttl == -1 }},
	} {
		if err := f.c.Del(t.Context(), hist).Err(); err != nil {
			t.Fatal(err)
		}
		w := NewWriter(f.c, l, WriterConfig{FeedLen: 1000, HistoryLen: 1000, Retention: tc.retention})
		if _, err := unwrittenOf(w.Write(t.Context(), []Pending{trade(t, "AAPL", 1)})); err != nil {
			t.Fatal(err)
		}
		ttl, err := f.c.PTTL(t.Context(), hist).Result()
		if err != nil || !tc.ok(ttl) {
			t.Errorf("retention %v: history TTL %v, %v", tc.retention, ttl, err)
		}
	}
}

// A quiet channel's history expires, and the janitor then takes the
// channel out of its set; live channels and names that are not channels
// stay.
func TestJanitorRemovesExpiredChannels(t *testing.T) {
	f := newFixture(t)
	l := mustLayout(t, 2)
	syms := symbolsCoveringShards(t, l, 2) // two symbols on each shard
	w := NewWriter(f.c, l, WriterConfig{FeedLen: 1000, HistoryLen: 1000, Retention: 200 * time.Millisecond})
	var evs []Pending
	for i, s := range syms {
		evs = append(evs, trade(t, s, i))
	}
	if _, err := unwrittenOf(w.Write(t.Context(), evs)); err != nil {
		t.Fatal(err)
	}
	if err := f.c.SAdd(t.Context(), l.Channels(0), "not a channel").Err(); err != nil {
		t.Fatal(err)
	}
	// Every history expires; then one symbol per shard writes again.
	poll.Until(t, 10*time.Second, func() error {
		for _, s := range syms {
			if n, _ := f.c.Exists(t.Context(), l.History(mustChannel(t, "trade:"+s))).Result(); n != 0 {
				return fmt.Errorf("history of %s still there", s)
			}
		}
		return nil
	})
	live := map[string]bool{} // channels written again
	onShard := map[int]bool{} // shards with a live channel
	evs = nil
	for _, s := range syms {
		if sh := l.Shard(s); !onShard[sh] {
			onShard[sh], live["trade:"+s] = true, true
			evs = append(evs, trade(t, s, 100))
		}
	}
	if _, err := unwrittenOf(w.Write(t.Context(), evs)); err != nil {
		t.Fatal(err)
	}
	j := NewJanitor(f.c, l, time.Hour, slog.New(slog.DiscardHandler))
	n, err := j.Sweep(t.Context())
	if want := len(syms) - len(live); err != nil || n != want {
		t.Fatalf("Sweep = %d, %v; want %d removed", n, err, want)
	}
	for s := 0; s < l.Shards; s++ {
		members, err := f.c.SMembers(t.Context(), l.Channels(s)).Result()
		if err != nil {
			t.Fatal(err)
		}
		want := 1 // the live channel
		if s == 0 {
			want++ // and the name that is no channel
		}
		for _, m := range members {
			if !live[m] && m != "not a channel" {
				t.Errorf("shard %d: %s still in the set", s, m)
			}
		}
		if len(members) != want {
			t.Errorf("shard %d: set %v, want %d members", s, members, want)
		}
	}
}

// The write script refuses a batch unless the writer's holder has the
// lease; without a holder it does not look at the lease.
func TestWriteFencedByLease(t *testing.T) {
	f := newFixture(t)
	l := mustLayout(t, 1)
	cfg := WriterConfig{FeedLen: 1000, HistoryLen: 1000, Lease: l.Leader(), Holder: "me"}
	w := NewWriter(f.c, l, cfg)
	write := func(w *Writer, seq int) (Result, error) {
		return w.Write(t.Context(), []Pending{trade(t, "AAPL", seq), trade(t, "MSFT", seq)})
	}
	for _, holder := range []string{"", "other"} {
		if holder != "" {
			if err := f.c.Set(t.Context(), l.Leader(), holder, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
		}
		res, err := write(w, 1)
		if !errors.Is(err, ErrNotLeader) || len(res.Unwritten) != 2 || res.Written != 0 {
			t.Errorf("lease held by %q: %+v, %v; want both refused with ErrNotLeader", holder, res, err)
		}
		if n := f.xlen(t, l.Feed(0)); n != 0 {
			t.Fatalf("lease held by %q: feed holds %d events, want none", holder, n)
		}
	}
	if err := f.c.Set(t.Context(), l.Leader(), "me", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if res, err := write(w, 2); err != nil || res.Written != 2 {
		t.Fatalf("lease held: %+v, %v; want both written", res, err)
	}
	if err := f.c.Set(t.Context(), l.Leader(), "other", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	unfenced := NewWriter(f.c, l, WriterConfig{FeedLen: 1000, HistoryLen: 1000})
	if res, err := write(unfenced, 3); err != nil || res.Written != 2 {
		t.Fatalf("no fence: %+v, %v; want both written", res, err)
	}
	if n := f.xlen(t, l.Feed(0)); n != 4 {
		t.Errorf("feed holds %d events, want 4", n)
	}
}

// Each error class helper matches Redis's own reply, wrapped or not, and
// nothing that only reads like it.
func TestErrorClasses(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if err := f.c.XAdd(ctx, &redis.XAddArgs{Stream: "s", Values: []any{"a", 1}}).Err(); err != nil {
		t.Fatal(err)
	}
	_, wrongType := f.c.Get(ctx, "s").Result()
	if err := f.c.XGroupCreate(ctx, "s", "g", "0").Err(); err != nil {
		t.Fatal(err)
	}
	busy := f.c.XGroupCreate(ctx, "s", "g", "0").Err()
	noGroup := f.c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "nope", Consumer: "c", Streams: []string{"s", ">"}, Block: -1}).Err()
	noScript := f.c.EvalSha(ctx, strings.Repeat("0", 40), nil).Err()
	if err := f.c.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	oom := f.c.Set(ctx, "k", "v", 0).Err()
	if err := f.c.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		is   func(error) bool
		err  error
	}{
		{"WRONGTYPE", IsWrongType, wrongType},
		{"BUSYGROUP", IsBusyGroup, busy},
		{"NOGROUP", IsNoGroup, noGroup},
		{"NOSCRIPT", IsNoScript, noScript},
		{"OOM", IsOOM, oom},
	} {
		if !tc.is(tc.err) || !tc.is(fmt.Errorf("wrapped: %w", tc.err)) || ErrorCode(tc.err) != tc.name {
			t.Errorf("%s: not matched in %v", tc.name, tc.err)
		}
		if tc.is(nil) || tc.is(errors.New(tc.name+" from elsewhere")) || tc.is(redis.Nil) {
			t.Errorf("%s: matches nil, a Go error or redis.Nil", tc.name)
		}
	}
}

// Run sweeps on its own, paced, until its context ends.
func TestJanitorRun(t *testing.T) {
	f := newFixture(t)
	l := mustLayout(t, 1)
	w := NewWriter(f.c, l, WriterConfig{FeedLen: 1000, HistoryLen: 1000, Retention: 100 * time.Millisecond})
	if _, err := unwrittenOf(w.Write(t.Context(), []Pending{trade(t, "AAPL", 1)})); err != nil {
		t.Fatal(err)
	}
	j := NewJanitor(f.c, l, 50*time.Millisecond, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	poll.Until(t, 10*time.Second, func() error {
		n, err := f.c.SCard(t.Context(), l.Channels(0)).Result()
		if err != nil || n != 0 {
			return fmt.Errorf("channel set holds %d (%v)", n, err)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

// The lease's term fences the writes on every Redis, Cluster included:
// once a later term has raised the shards' fences, a writer of an earlier
// term is refused on every shard, even those the later writer has not
// written to yet, and its Fence reports the stale term.
func TestWriteFencedByTerm(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		f := newFixture(t)
		checkTermFence(t, f.c, mustLayout(t, 3))
	})
	t.Run("cluster", func(t *testing.T) {
		if testing.Short() {
			t.Skip("starts a cluster")
		}
		cl := redistest.StartCluster(t, 3)
		checkTermFence(t, cl.Client(), mustLayout(t, 4))
	})
}

func checkTermFence(t *testing.T, c redis.UniversalClient, l Layout) {
	t.Helper()
	// A lease configured as the collector does: on a Cluster the holder
	// check is dropped and the term fences alone.
	cfg := WriterConfig{FeedLen: 1000, HistoryLen: 1000}
	if _, cluster := c.(*redis.ClusterClient); cluster {
		cfg.Lease, cfg.Holder = l.Leader(), "me"
	}
	old, cur := NewWriter(c, l, cfg), NewWriter(c, l, cfg)
	syms := symbolsCoveringShards(t, l, 1)
	write := func(w *Writer, seq int) (Result, error) {
		var evs []Pending
		for _, s := range syms {
			evs = append(evs, trade(t, s, seq))
		}
		return w.Write(t.Context(), evs)
	}
	if err := old.Fence(t.Context(), 5); err != nil {
		t.Fatalf("Fence(5) on fresh shards: %v", err)
	}
	if res, err := write(old, 1); err != nil || res.Written != len(syms) {
		t.Fatalf("term 5 alone: %+v, %v; want all written", res, err)
	}
	if err := cur.Fence(t.Context(), 6); err != nil {
		t.Fatalf("Fence(6): %v", err)
	}
	res, err := write(old, 2)
	if !errors.Is(err, ErrNotLeader) || res.Written != 0 || len(res.Unwritten) != len(syms) {
		t.Errorf("term 5 after term 6 fenced: %+v, %v; want all refused with ErrNotLeader", res, err)
	}
	if res, err := write(cur, 3); err != nil || res.Written != len(syms) {
		t.Errorf("term 6: %+v, %v; want all written", res, err)
	}
	var stale *StaleTermError
	if err := old.Fence(t.Context(), 5); !errors.As(err, &stale) || stale.Fence != 6 || !errors.Is(err, ErrNotLeader) {
		t.Errorf("Fence(5) after 6 = %v, want a StaleTermError with fence 6", err)
	}
	var total int64
	for s := range l.Shards {
		total += c.XLen(t.Context(), l.Feed(s)).Val()
		if f := c.Get(t.Context(), l.Fence(s)).Val(); f != "6" {
			t.Errorf("shard %d fence = %q, want 6", s, f)
		}
	}
	if total != int64(2*len(syms)) {
		t.Errorf("feeds hold %d events, want %d (terms 5 then 6)", total, 2*len(syms))
	}
}
