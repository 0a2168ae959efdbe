package derive

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickwire/tickwire/collector/internal/source"
	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/poll"
)

func TestBars(t *testing.T) {
	const s0 = 1764340200000 // a whole second
	tests := []struct {
		name   string
		trades []source.Event
		want   string // bars emitted by the trades, then by Flush
		late   float64
	}{
		{"one second, flushed", []source.Event{
			tradeEv("AAPL", s0+10, 10, 100), tradeEv("AAPL", s0+500, 12, 50), tradeEv("AAPL", s0+900, 9, 10), tradeEv("AAPL", s0+999, 11, 1),
		}, lines(
			`bar:AAPL 1764340201000 {"open":10,"high":12,"low":9,"close":11,"volume":161,"start":1764340200000,"end":1764340201000}`,
		), 0},
		{"a later second closes the bar", []source.Event{
			tradeEv("AAPL", s0, 10, 1), tradeEv("AAPL", s0+1000, 11, 2), tradeEv("AAPL", s0+5500, 12, 3),
		}, lines(
			`bar:AAPL 1764340201000 {"open":10,"high":10,"low":10,"close":10,"volume":1,"start":1764340200000,"end":1764340201000}`,
			`bar:AAPL 1764340202000 {"open":11,"high":11,"low":11,"close":11,"volume":2,"start":1764340201000,"end":1764340202000}`,
			`bar:AAPL 1764340206000 {"open":12,"high":12,"low":12,"close":12,"volume":3,"start":1764340205000,"end":1764340206000}`,
		), 0},
		{"symbols apart", []source.Event{
			tradeEv("MSFT", s0+100, 400, 1), tradeEv("AAPL", s0+200, 10, 1), tradeEv("AAPL", s0+1200, 11, 1), tradeEv("MSFT", s0+300, 401, 1),
		}, lines(
			`bar:AAPL 1764340201000 {"open":10,"high":10,"low":10,"close":10,"volume":1,"start":1764340200000,"end":1764340201000}`,
			`bar:AAPL 1764340202000 {"open":11,"high":11,"low":11,"close":11,"volume":1,"start":1764340201000,"end":1764340202000}`,
			`bar:MSFT 1764340201000 {"open":400,"high":401,"low":400,"close":401,"volume":2,"start":1764340200000,"end":1764340201000}`,
		), 0},
		{"late trades are left out", []source.Event{
			tradeEv("AAPL", s0+1100, 10, 1), tradeEv("AAPL", s0+900, 99, 1), // earlier than the open bar
			tradeEv("AAPL", s0+2100, 11, 1), tradeEv("AAPL", s0+1500, 99, 1), // its bar was emitted
		}, lines(
			`bar:AAPL 1764340202000 {"open":10,"high":10,"low":10,"close":10,"volume":1,"start":1764340201000,"end":1764340202000}`,
			`bar:AAPL 1764340203000 {"open":11,"high":11,"low":11,"close":11,"volume":1,"start":1764340202000,"end":1764340203000}`,
		), 2},
		{"time starting again", []source.Event{
			tradeEv("AAPL", s0+120_000, 10, 1), tradeEv("AAPL", s0, 11, 1), tradeEv("AAPL", s0+300, 12, 1),
		}, lines(
			`bar:AAPL 1764340321000 {"open":10,"high":10,"low":10,"close":10,"volume":1,"start":1764340320000,"end":1764340321000}`,
			`bar:AAPL 1764340201000 {"open":11,"high":12,"low":11,"close":12,"volume":2,"start":1764340200000,"end":1764340201000}`,
		), 0},
		{"size absent is 0", []source.Event{
			rawEv(event.KindTrade, "A", 5, `{"price":2}`),
		}, `bar:A 1000 {"open":2,"high":2,"low":2,"close":2,"volume":0,"start":0,"end":1000}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, out := newStage(t, Config{Bars: true})
			for _, e := range tt.trades {
				st.Emit(e)
			}
			st.Flush()
			if got := lines(out.take(event.KindBar)...); got != tt.want {
				t.Errorf("bars:\n%s\nwant\n%s", got, tt.want)
			}
			if n := testutil.ToFloat64(st.m.late); n != tt.late {
				t.Errorf("late trades %v, want %v", n, tt.late)
			}
		})
	}
}

// TestEmitPassesEverythingOn: every event goes on unchanged, first; only
// usable trades make bars.
func TestEmitPassesEverythingOn(t *testing.T) {
	st, out := newStage(t, Config{Bars: true})
	in := []source.Event{
		tradeEv("AAPL", 1000, 10, 1),
		rawEv(event.KindQuote, "AAPL", 1001, `{"bid":1,"ask":2}`),
		rawEv(event.KindBar, "AAPL", 1002, `{"open":1}`),
		rawEv(event.KindTrade, "AAPL", 1003, `{"price":"10"}`),
		rawEv(event.KindTrade, "AAPL", 1004, `{"size":1}`),
		rawEv(event.KindTrade, "AAPL", 1005, `{"price":0,"size":1}`),
		rawEv(event.KindTrade, "AAPL", 1006, `{"price":1,"size":-1}`),
		tradeEv("AAPL", 2000, 11, 1),
	}
	for _, e := range in {
		st.Emit(e)
	}
	if len(out.events) != len(in)+1 {
		t.Fatalf("%d events passed on, want %d", len(out.events), len(in)+1)
	}
	for i, e := range in[:len(in)-1] {
		if got := out.events[i]; got.Channel != e.Channel || got.TS != e.TS || string(got.Data) != encoded(e) {
			t.Errorf("event %d: %+v, want %+v", i, got, e)
		}
	}
	// The last trade comes first, then the bar it closed.
	if got := out.events[len(in)-1]; got.TS != 2000 || got.Channel.Kind != event.KindTrade {
		t.Errorf("event before the bar: %s %d", got.Channel, got.TS)
	}
	if got := out.events[len(in)]; got.Channel.String() != "bar:AAPL" || got.TS != 2000 {
		t.Errorf("last event: %s %d %s", got.Channel, got.TS, got.Data)
	}
	if n := testutil.ToFloat64(st.m.skipped); n != 4 {
		t.Errorf("skipped trades %v, want 4", n)
	}
}

func TestBarsOff(t *testing.T) {
	st, out := newStage(t, Config{})
	st.Emit(tradeEv("AAPL", 1000, 10, 1))
	st.Emit(tradeEv("AAPL", 2000, 10, 1))
	st.Flush()
	if len(out.events) != 2 {
		t.Errorf("%d events, want the 2 trades only", len(out.events))
	}
}

// TestQuietBarCloses: with CloseQuiet, a bar closes by the wall clock once
// its second is over (counted from its first trade's arrival) plus
// barGrace; a trade of that second arriving after it is late.
func TestQuietBarCloses(t *testing.T) {
	st, out := newStage(t, Config{Bars: true, CloseQuiet: true})
	wall := time.Unix(5000, 0)
	st.now = func() time.Time { return wall }
	st.Emit(tradeEv("AAPL", 1764340200300, 10, 1)) // 700 ms before its second ends
	st.Emit(tradeEv("MSFT", 1764340200900, 20, 1)) // 100 ms before
	st.tick(wall.Add(349 * time.Millisecond))
	if got := out.take(event.KindBar); len(got) != 0 {
		t.Fatalf("closed early: %v", got)
	}
	st.tick(wall.Add(350 * time.Millisecond))
	if got := lines(out.take(event.KindBar)...); got != `bar:MSFT 1764340201000 {"open":20,"high":20,"low":20,"close":20,"volume":1,"start":1764340200000,"end":1764340201000}` {
		t.Fatalf("after 350 ms: %s", got)
	}
	st.tick(wall.Add(950 * time.Millisecond))
	if got := out.take(event.KindBar); len(got) != 1 || got[0][:9] != "bar:AAPL " {
		t.Fatalf("after 950 ms: %v", got)
	}
	st.Emit(tradeEv("AAPL", 1764340200999, 11, 1))
	st.Flush()
	if got := out.take(event.KindBar); len(got) != 0 {
		t.Errorf("late trade made a bar: %v", got)
	}
	if n := testutil.ToFloat64(st.m.late); n != 1 {
		t.Errorf("late %v, want 1", n)
	}
}

// TestRunClosesQuietBars runs the timer itself, on the real clock.
func TestRunClosesQuietBars(t *testing.T) {
	st, out := newStage(t, Config{Bars: true, CloseQuiet: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	st.Emit(tradeEv("AAPL", time.Now().UnixMilli(), 10, 1))
	poll.Until(t, 10*time.Second, func() error {
		st.mu.Lock() // out runs under the stage's lock
		defer st.mu.Unlock()
		if n := len(out.events); n != 2 {
			return fmt.Errorf("%d events, want the trade and its bar", n)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
