package server

import (
	"github.com/tickwire/tickwire/testkit/wsclient"

	"github.com/tickwire/tickwire/testkit/tape"

	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/streams"
)

// writeQuotes writes one quote with bid price to each of syms.
func (e *env) writeQuotes(syms []string, price float64) {
	e.t.Helper()
	data, _ := json.Marshal(event.Quote{Bid: price, BidSize: 1, Ask: price + 0.01, AskSize: 1})
	evs := make([]streams.Pending, len(syms))
	for i, s := range syms {
		c := event.Channel{Kind: event.KindQuote, Symbol: s}
		evs[i] = streams.Pending{Event: event.Event{Channel: c, TS: time.Now().UnixMilli(), Data: data}}
	}
	if _, err := e.writer.Write(context.Background(), evs); err != nil {
		e.t.Fatalf("write quotes: %v", err)
	}
}

func tickers(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("S%03d", i)
	}
	return out
}

// paceStats is what a client of quote:* counted.
type paceStats struct {
	frames, events, bytes int
	first, last           time.Time
	maxPerChannel         int // most events of one channel in one frame
	lastBid               map[string]float64
}

// readQuotes reads events frames until stop is closed and the connection
// has been quiet for a moment, or until done reports true.
func readQuotes(t *testing.T, c *client, done func(*paceStats) bool) *paceStats {
	t.Helper()
	st := &paceStats{lastBid: map[string]float64{}}
	deadline := time.Now().Add(30 * time.Second)
	for !done(st) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after 30 s: %d frames, %d events", st.frames, st.events)
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("frame %s: %v", data, err)
		}
		if f.Type != "events" {
			t.Fatalf("unexpected frame %s", data)
		}
		now := time.Now()
		if st.frames == 0 {
			st.first = now
		}
		st.last = now
		st.frames++
		st.events += len(f.Events)
		st.bytes += len(data)
		per := map[string]int{}
		for _, ev := range f.Events {
			per[ev.Ch]++
			st.maxPerChannel = max(st.maxPerChannel, per[ev.Ch])
			var q event.Quote
			if err := json.Unmarshal(ev.Data, &q); err != nil {
				t.Fatalf("quote %s: %v", ev.Data, err)
			}
			st.lastBid[ev.Ch] = q.Bid
		}
	}
	return st
}

// TestThrottlePacesAndConflatesQuotes: 500 quote channels written in
// rounds, every round to every channel, reach a client of quote:* at
// throttle_ms 250 in at most one frame per window, each channel at most
// once per frame (conflated), and the latest price of every channel
// arrives.
func TestThrottlePacesAndConflatesQuotes(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", nil)
	c := dialAuthed(t, r, "alice")
	c.Subscribe(map[string]any{"channels": []string{"quote:*"}, "snapshot": false, "throttle_ms": 250})

	syms := tickers(500)
	const rounds = 60
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // writes for about 1.2 s, far more rounds than windows
		defer wg.Done()
		for i := 1; i <= rounds; i++ {
			e.writeQuotes(syms, float64(i))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	st := readQuotes(t, c, func(st *paceStats) bool {
		if len(st.lastBid) < len(syms) {
			return false
		}
		for _, b := range st.lastBid {
			if b != rounds {
				return false
			}
		}
		return true
	})
	wg.Wait()
	if st.maxPerChannel > 1 {
		t.Errorf("a channel came %d times in one frame; want quotes conflated to one per window", st.maxPerChannel)
	}
	// Frames are written at least 250 ms apart; arrival may bunch them a
	// little, so the bound is generous.
	limit := int(st.last.Sub(st.first)/(250*time.Millisecond)) + 3
	if st.frames > limit {
		t.Errorf("%d frames in %v; want at most %d at throttle_ms 250", st.frames, st.last.Sub(st.first), limit)
	}
	if st.events >= rounds*len(syms) {
		t.Errorf("%d events for %d written: nothing was conflated", st.events, rounds*len(syms))
	}
	t.Logf("%d frames, %d events in %v", st.frames, st.events, st.last.Sub(st.first))
}

// TestThrottleKeepsEveryTrade: paced trades are held, never dropped: all
// arrive, in order, in fewer frames than writes.
func TestThrottleKeepsEveryTrade(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", nil)
	c := dialAuthed(t, r, "alice")
	c.Subscribe(map[string]any{"channels": []string{"trade:AAPL", "signal:*"}, "snapshot": false, "throttle_ms": 200})

	const writes, per = 40, 10
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < writes; i++ {
			prices := make([]float64, per)
			for j := range prices {
				prices[j] = float64(i*per + j + 1)
			}
			e.write("trade:AAPL", prices...)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	tp := tape.New(t)
	frames := 0
	for tp.Len("trade:AAPL") < writes*per {
		f := c.Read()
		if f.Type != "events" {
			t.Fatalf("unexpected frame %+v", f)
		}
		frames++
		wsclient.Record(tp, f.Events)
	}
	if got := tp.Len("trade:AAPL"); got != writes*per {
		t.Fatalf("%d trades, want %d", got, writes*per)
	}
	if frames >= writes {
		t.Errorf("%d frames for %d writes: trades were not held for the window", frames, writes)
	}
}

// TestThrottleResubscribeSetsPace: a later subscribe of the same channel
// sets its pace anew; what waited goes out, and later events at once.
func TestThrottleResubscribeSetsPace(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", nil)
	c := dialAuthed(t, r, "alice")
	c.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false, "throttle_ms": 60000})
	tp := tape.New(t)
	e.write("trade:AAPL", 1) // first after a quiet spell: at once
	c.collect(tp, "trade:AAPL", 1)
	e.write("trade:AAPL", 2) // waits for the minute's window ...
	c.Send(map[string]any{"op": "subscribe", "channels": []string{"trade:AAPL"}, "throttle_ms": 0})
	c.collect(tp, "trade:AAPL", 2) // ... until the pace is set anew
	e.write("trade:AAPL", 3)
	c.collect(tp, "trade:AAPL", 3) // read's 10 s bound: not paced any more
}

// TestThrottleRefusesBadValues: throttle_ms outside 0 and 50..60000, or
// not an integer, is bad_request and subscribes nothing.
func TestThrottleRefusesBadValues(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", nil)
	c := dialAuthed(t, r, "alice")
	for _, v := range []any{1, 49, 60001, -50, "250", 100.5} {
		c.Send(map[string]any{"op": "subscribe", "id": "x", "channels": []string{"trade:AAPL"}, "throttle_ms": v})
		f := c.Read()
		if f.Type != "error" || f.Code != "bad_request" {
			t.Errorf("throttle_ms %v: reply %+v, want bad_request", v, f)
		}
	}
	for _, v := range []int{0, 50, 60000} {
		c.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false, "throttle_ms": v})
	}
}

// TestMeasurePacing is the measurement behind BENCHMARKS.md (pacing):
// bytes/s and frames/s of a client of quote:* over 500 symbols, each
// quoted 10 times a second, with and without throttle_ms 250. Run with
// TICKWIRE_MEASURE=1 go test -run TestMeasurePacing -v.
func TestMeasurePacing(t *testing.T) {
	if os.Getenv("TICKWIRE_MEASURE") == "" {
		t.Skip("measurement: set TICKWIRE_MEASURE=1")
	}
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", func(c *Config) { c.LogLevel = "warn" })
	syms := tickers(500)
	for _, throttle := range []int{0, 250} {
		c := dialAuthed(t, r, "alice")
		c.Subscribe(map[string]any{"channels": []string{"quote:*"}, "snapshot": false, "throttle_ms": throttle})
		const dur = 5 * time.Second
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for i := 1; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
					e.writeQuotes(syms, float64(i))
				}
			}
		}()
		start := time.Now()
		st := readQuotes(t, c, func(*paceStats) bool { return time.Since(start) > dur })
		close(stop)
		wg.Wait()
		secs := st.last.Sub(st.first).Seconds()
		t.Logf("throttle_ms %d: %.1f frames/s, %.0f events/s, %.0f bytes/s (%d frames, %d events, %d bytes in %.2f s)",
			throttle, float64(st.frames)/secs, float64(st.events)/secs, float64(st.bytes)/secs, st.frames, st.events, st.bytes, secs)
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
		_ = c.ws.Close()
	}
}
