package server

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/streams"
	"github.com/tickwire/tickwire/testkit/tape"
	"github.com/tickwire/tickwire/testkit/wsclient"
)

// A client that leaves and resumes with since ends with the same tape as a
// client that stayed: no gap, no duplicate.
func TestResumeMatchesControl(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", nil)
	control := dialAuthed(t, r, "control")
	control.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false})
	resumer := dialAuthed(t, r, "resumer")
	resumer.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false})

	ct, rt := tape.New(t), tape.New(t)
	e.write("trade:AAPL", 1, 2, 3, 4, 5)
	resumer.collect(rt, "trade:AAPL", 5)
	_ = resumer.ws.Close()

	e.write("trade:AAPL", 6, 7, 8)
	since := rt.IDs("trade:AAPL")[4]
	resumer = dialAuthed(t, r, "resumer")
	// Events keep coming while the resume runs.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 10; i++ {
			e.write("trade:AAPL", float64(9+i))
		}
	}()
	sub := resumer.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "since": map[string]string{"trade:AAPL": since}})
	if !sub.Recovered["trade:AAPL"] {
		t.Fatalf("subscribed %+v, want recovered", sub)
	}
	<-done
	control.collect(ct, "trade:AAPL", 18)
	resumer.collect(rt, "trade:AAPL", 18)
	if !slices.Equal(ct.IDs("trade:AAPL"), rt.IDs("trade:AAPL")) {
		t.Fatalf("resumed tape differs from control:\n%v\n%v", rt.IDs("trade:AAPL"), ct.IDs("trade:AAPL"))
	}
}

// since naming a trimmed entry: recovered false, a gap frame, then what is
// retained, then live.
func TestResumeAfterTrimReportsGap(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", nil)
	e.write("trade:AAPL", 1, 2, 3, 4, 5)
	hist := e.layout.History(event.Channel{Kind: event.KindTrade, Symbol: "AAPL"})
	all, err := e.rdb.XRange(context.Background(), hist, "-", "+").Result()
	if err != nil || len(all) != 5 {
		t.Fatalf("history: %v %d", err, len(all))
	}
	if err := e.rdb.XTrimMaxLen(context.Background(), hist, 2).Err(); err != nil {
		t.Fatal(err)
	}
	c := dialAuthed(t, r, "alice")
	sub := c.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "since": map[string]string{"trade:AAPL": all[0].ID}})
	if rec, ok := sub.Recovered["trade:AAPL"]; !ok || rec {
		t.Fatalf("subscribed %+v, want recovered false", sub)
	}
	gap := c.Read()
	if gap.Type != "gap" || !slices.Equal(gap.Channels, []string{"trade:AAPL"}) {
		t.Fatalf("got %+v, want gap for trade:AAPL", gap)
	}
	tp := tape.New(t)
	c.collect(tp, "trade:AAPL", 2)
	if got := tp.IDs("trade:AAPL"); got[0] != all[3].ID || got[1] != all[4].ID {
		t.Fatalf("replayed %v, want the two retained", got)
	}
	e.write("trade:AAPL", 6)
	c.collect(tp, "trade:AAPL", 3)
}

func TestSubscribeRefusals(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", func(c *Config) { c.MaxChannels = 3 })
	limited := func(t *testing.T) *client {
		c := dial(t, r, token(t, "lim", time.Hour, "trade:*", "quote:AAPL"))
		c.Read()
		return c
	}
	tests := []struct {
		name     string
		frame    string
		code     string
		channels []string
	}{
		{"not json", `{"op":`, "bad_request", nil},
		{"unknown op", `{"op":"dance","id":"7"}`, "bad_request", nil},
		{"channels wrong type", `{"op":"subscribe","channels":"trade:AAPL"}`, "bad_request", nil},
		{"no channels", `{"op":"subscribe","channels":[]}`, "bad_request", nil},
		{"invalid channel", `{"op":"subscribe","channels":["trade:AAPL","nope:X","trade:"]}`, "invalid_channel", []string{"nope:X", "trade:"}},
		{"forbidden", `{"op":"subscribe","channels":["trade:AAPL","quote:MSFT","quote:*"]}`, "forbidden", []string{"quote:MSFT", "quote:*"}},
		{"invalid before forbidden", `{"op":"subscribe","channels":["quote:MSFT","bad"]}`, "invalid_channel", []string{"bad"}},
		{"too many", `{"op":"subscribe","channels":["trade:A","trade:B","trade:C","trade:D"]}`, "too_many_channels", []string{"trade:A", "trade:B", "trade:C", "trade:D"}},
		{"since not listed", `{"op":"subscribe","channels":["trade:AAPL"],"since":{"trade:MSFT":"1-0"}}`, "bad_request", nil},
		{"since wildcard", `{"op":"subscribe","channels":["trade:*"],"since":{"trade:*":"1-0"}}`, "bad_request", nil},
		{"since bad id", `{"op":"subscribe","channels":["trade:AAPL"],"since":{"trade:AAPL":"yesterday"}}`, "bad_request", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := limited(t)
			c.SendRaw(tt.frame)
			f := c.Read()
			if f.Type != "error" || f.Code != tt.code {
				t.Fatalf("got %+v, want error %s", f, tt.code)
			}
			if tt.channels != nil && !slices.Equal(f.Channels, tt.channels) {
				t.Fatalf("error channels %v, want %v", f.Channels, tt.channels)
			}
			// Nothing was half-applied, and the connection still works.
			c.Send(map[string]string{"op": "ping", "id": "p"})
			if f := c.Read(); f.Type != "pong" || f.ID != "p" {
				t.Fatalf("after error got %+v, want pong", f)
			}
			sub := c.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false})
			if !slices.Equal(sub.Channels, []string{"trade:AAPL"}) {
				t.Fatalf("subscribed %v", sub.Channels)
			}
		})
	}
}

func TestRepeatedViolationsClose4000(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", nil)
	c := dialAuthed(t, r, "alice")
	for i := 0; i < 10; i++ {
		c.SendRaw(`not json`)
	}
	if code := c.CloseCode(); code != 4000 {
		t.Fatalf("close code %d, want 4000", code)
	}
}

func TestConnectionsPerUser(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", func(c *Config) { c.MaxConnsPerUser = 2 })
	dialAuthed(t, r, "alice")
	dialAuthed(t, r, "alice")
	third := dial(t, r, token(t, "alice", time.Hour))
	if code := third.CloseCode(); code != 4009 {
		t.Fatalf("third connection closed %d, want 4009", code)
	}
	dialAuthed(t, r, "bob") // other users are not affected
}

func TestUnsubscribeStopsDelivery(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", nil)
	c := dialAuthed(t, r, "alice")
	c.Subscribe(map[string]any{"channels": []string{"trade:AAPL", "trade:MSFT"}, "snapshot": false})
	c.Send(map[string]any{"op": "unsubscribe", "id": "u", "channels": []string{"trade:aapl"}})
	if f := c.ReadType("unsubscribed"); !slices.Equal(f.Channels, []string{"trade:AAPL"}) || f.ID != "u" {
		t.Fatalf("got %+v", f)
	}
	e.write("trade:AAPL", 1)
	e.write("trade:MSFT", 2)
	f := c.ReadType("events")
	for _, ev := range f.Events {
		if ev.Ch != "trade:MSFT" {
			t.Fatalf("event of unsubscribed channel: %+v", ev)
		}
	}
}

// A client that stops reading is closed (4008) without slowing a normal
// client on the same replica.
func TestSlowConsumer(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", func(c *Config) { c.QueueEvents = 64 })
	slow := dialAuthed(t, r, "slow")
	slow.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false})
	normal := dialAuthed(t, r, "normal")
	normal.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false})

	// Big events fill the socket buffers of the client that does not read.
	big, _ := json.Marshal(map[string]any{"price": 1, "size": 1, "pad": strings.Repeat("x", 12000)})
	c := event.Channel{Kind: event.KindTrade, Symbol: "AAPL"}
	tp := tape.New(t)
	const batches, per = 40, 50
	for i := 0; i < batches; i++ {
		evs := make([]event.Event, per)
		for j := range evs {
			evs[j] = event.Event{Channel: c, TS: time.Now().UnixMilli(), Data: big}
		}
		if _, err := e.writer.Write(context.Background(), streams.PendingOf(evs)); err != nil {
			t.Fatal(err)
		}
		normal.collect(tp, "trade:AAPL", (i+1)*per)
	}
	closes := r.srv.deps.Metrics.Closes.WithLabelValues("slow_consumer")
	poll.Until(t, 20*time.Second, func() error {
		if testutil.ToFloat64(closes) < 1 {
			return errNotYet("no slow-consumer close yet")
		}
		return nil
	})
	// The slow client finds its data, then the close (or, if even the close
	// frame could not be written, a dropped connection).
	for {
		_, err := slow.TryRead(15 * time.Second)
		if err == nil {
			continue
		}
		if code, ok := wsclient.CloseCodeOf(err); ok && code != 4008 && code != 1006 {
			t.Fatalf("slow client closed with %d, want 4008 (or a dropped connection): %v", code, err)
		}
		break
	}
}

type errNotYet string

func (e errNotYet) Error() string { return string(e) }
