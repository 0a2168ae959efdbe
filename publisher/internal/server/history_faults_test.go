package server

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/event"
)

// The tenth malformed frame on the subscribe path gets its bad_request
// frame before the 4000 close (the close used to be queued first, and the
// frame was lost).
func TestTenthViolationFrameBeforeClose(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", nil)
	c := dialAuthed(t, r, "alice")
	for i := 0; i < 10; i++ {
		c.Send(map[string]any{"op": "subscribe", "id": fmt.Sprint(i), "channels": []string{}})
	}
	for i := 0; i < 10; i++ {
		f := c.Read()
		if f.Type != "error" || f.Code != "bad_request" || f.ID != fmt.Sprint(i) {
			t.Fatalf("reply %d: %+v, want bad_request with id %d", i, f, i)
		}
	}
	if code := c.CloseCode(); code != 4000 {
		t.Fatalf("close code %d, want 4000", code)
	}
}

func mustChannel(t *testing.T, s string) event.Channel {
	t.Helper()
	c, err := event.ParseChannel(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// futureID is an entry id a day ahead of this machine's clock.
func futureID() string {
	return fmt.Sprintf("%d-0", time.Now().Add(24*time.Hour).UnixMilli())
}

// Ids are Redis's: an entry whose id runs ahead of the replica's clock (as
// when Redis's clock is ahead) is delivered, and resuming from its id is
// accepted and recovered.
func TestResumeFromFutureID(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", nil)
	live := dialAuthed(t, r, "alice")
	live.Subscribe(map[string]any{"channels": []string{"trade:FUT"}, "snapshot": false})
	id := futureID()
	ctx := context.Background()
	ch := mustChannel(t, "trade:FUT")
	// What the write script does, by hand, with an id from the future.
	fields := goodFields("trade:FUT", 1)
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: e.layout.Feed(0), ID: id, Values: fields}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: e.layout.History(ch), ID: id, Values: fields}).Err(); err != nil {
		t.Fatal(err)
	}
	f := live.ReadType("events")
	if len(f.Events) != 1 || f.Events[0].ID != id {
		t.Fatalf("live %+v, want the entry %s", f.Events, id)
	}
	c := dialAuthed(t, r, "alice")
	got := c.Subscribe(map[string]any{"channels": []string{"trade:FUT"}, "since": map[string]string{"trade:FUT": id}})
	if !got.Recovered["trade:FUT"] {
		t.Fatalf("subscribed %+v, want recovered true for an id the server handed out", got)
	}
	e.write("trade:FUT", 2) // Redis gives it an id above the future one
	f = c.Read()
	if f.Type != "events" || len(f.Events) != 1 || !idLess(t, id, f.Events[0].ID) {
		t.Fatalf("after the resume got %+v, want the next live event only", f)
	}
}

func idLess(t *testing.T, a, b string) bool {
	t.Helper()
	x, err := event.ParseID(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := event.ParseID(b)
	if err != nil {
		t.Fatal(err)
	}
	return x.Less(y)
}

// A resume over a channel whose history key has the wrong type answers as
// for a trimmed history (recovered false, gap) and does not fail the other
// channels of the same subscribe; a snapshot skips it the same way.
func TestResumeOverWrongTypeKey(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", nil)
	e.write("trade:GOOD", 1, 2, 3)
	ctx := context.Background()
	good, err := e.rdb.XRange(ctx, e.layout.History(mustChannel(t, "trade:GOOD")), "-", "+").Result()
	if err != nil || len(good) != 3 {
		t.Fatalf("history of trade:GOOD: %v %v", good, err)
	}
	if err := e.rdb.Set(ctx, e.layout.History(mustChannel(t, "trade:BAD")), "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c := dialAuthed(t, r, "alice")
	got := c.Subscribe(map[string]any{
		"channels": []string{"trade:BAD", "trade:GOOD"},
		"since":    map[string]string{"trade:BAD": "1-0", "trade:GOOD": good[0].ID},
	})
	if got.Recovered["trade:BAD"] || !got.Recovered["trade:GOOD"] {
		t.Fatalf("subscribed %+v, want recovered false for the wrong-type key, true for the other", got)
	}
	if f := c.Read(); f.Type != "gap" || !slices.Equal(f.Channels, []string{"trade:BAD"}) {
		t.Fatalf("got %+v, want a gap for trade:BAD", f)
	}
	f := c.Read()
	if f.Type != "events" || len(f.Events) != 2 || f.Events[0].ID != good[1].ID || f.Events[1].ID != good[2].ID {
		t.Fatalf("got %+v, want the replay of trade:GOOD after its first entry", f)
	}
	s := dialAuthed(t, r, "bob")
	s.Subscribe(map[string]any{"channels": []string{"trade:BAD", "trade:GOOD"}})
	if f := s.Read(); f.Type != "snapshot" || len(f.Events) != 1 || f.Events[0].Ch != "trade:GOOD" {
		t.Fatalf("got %+v, want a snapshot of trade:GOOD only", f)
	}
}

// A history entry whose id is ahead of the feed (written by hand) is
// neither replayed nor snapshotted: it would raise the connection's
// per-channel id floor above every live event to come and silence the
// channel. Live events keep flowing after a resume and after a snapshot.
func TestFutureHistoryEntryDoesNotBlockLive(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", nil)
	e.write("trade:AAPL", 1, 2)
	ctx := context.Background()
	key := e.layout.History(mustChannel(t, "trade:AAPL"))
	hist, err := e.rdb.XRange(ctx, key, "-", "+").Result()
	if err != nil || len(hist) != 2 {
		t.Fatalf("history: %v %v", hist, err)
	}
	future := futureID()
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: future, Values: goodFields("trade:AAPL", 99)}).Err(); err != nil {
		t.Fatal(err)
	}
	resumed := dialAuthed(t, r, "alice")
	resumed.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "since": map[string]string{"trade:AAPL": hist[0].ID}})
	if f := resumed.Read(); f.Type != "events" || len(f.Events) != 1 || f.Events[0].ID != hist[1].ID {
		t.Fatalf("replay %+v, want only %s (not the future entry)", f, hist[1].ID)
	}
	snap := dialAuthed(t, r, "bob")
	snap.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}})
	if f := snap.Read(); f.Type != "snapshot" || len(f.Events) != 1 || f.Events[0].ID != hist[1].ID {
		t.Fatalf("snapshot %+v, want the latest entry written by the collector, %s", f, hist[1].ID)
	}
	e.write("trade:AAPL", 3)
	for _, c := range []*client{resumed, snap} {
		f := c.Read()
		if f.Type != "events" || len(f.Events) != 1 || f.Events[0].ID == future || !idLess(t, hist[1].ID, f.Events[0].ID) {
			t.Fatalf("live after the future entry: %+v, want the new event", f)
		}
	}
}
