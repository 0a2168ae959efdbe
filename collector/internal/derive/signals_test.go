package derive

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickwire/tickwire/shared/event"
)

const day0 = 1764288000000 // 2025-11-28T00:00:00Z

// signals feeds prices (one trade a second from day0, size 100) to a stage
// and returns the signals.
func signals(t *testing.T, cfg Config, prices ...float64) ([]string, *Stage) {
	t.Helper()
	cfg.Signals = true
	st, out := newStage(t, cfg)
	for i, p := range prices {
		st.Emit(tradeEv("AAPL", day0+int64(i)*1000, p, 100))
	}
	return out.take(event.KindSignal), st
}

func TestNewHighAndLow(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		prices []float64
		want   string
	}{
		{"warm-up holds back", Config{Warmup: 3}, []float64{10, 11, 12}, ""},
		{"new high after warm-up", Config{Warmup: 3}, []float64{10, 11, 12, 13},
			`signal:AAPL 1764288003000 {"signal":"new_high","price":13,"prev_high":12,"move_pct":8.3333}`},
		{"equal is not new", Config{Warmup: 1}, []float64{10, 12, 12, 11, 10}, `signal:AAPL 1764288001000 {"signal":"new_high","price":12,"prev_high":10,"move_pct":20}`},
		{"new low", Config{Warmup: 2}, []float64{10, 9, 9.5, 8},
			`signal:AAPL 1764288003000 {"signal":"new_low","price":8,"prev_low":9,"move_pct":-11.1111}`},
		{"both ways", Config{}, []float64{10, 11, 9},
			lines(`signal:AAPL 1764288001000 {"signal":"new_high","price":11,"prev_high":10,"move_pct":10}`,
				`signal:AAPL 1764288002000 {"signal":"new_low","price":9,"prev_low":10,"move_pct":-10}`)},
		{"cooldown", Config{Cooldown: 3 * time.Second}, []float64{10, 11, 12, 13, 14, 15},
			lines(`signal:AAPL 1764288001000 {"signal":"new_high","price":11,"prev_high":10,"move_pct":10}`,
				`signal:AAPL 1764288004000 {"signal":"new_high","price":14,"prev_high":13,"move_pct":7.6923}`)},
		{"cooldown per type", Config{Cooldown: time.Hour}, []float64{10, 11, 12, 9, 8},
			lines(`signal:AAPL 1764288001000 {"signal":"new_high","price":11,"prev_high":10,"move_pct":10}`,
				`signal:AAPL 1764288003000 {"signal":"new_low","price":9,"prev_low":10,"move_pct":-10}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := signals(t, tt.cfg, tt.prices...)
			if lines(got...) != tt.want {
				t.Errorf("signals:\n%s\nwant\n%s", lines(got...), tt.want)
			}
		})
	}
}

func TestSuppressedCounted(t *testing.T) {
	_, st := signals(t, Config{Cooldown: time.Hour}, 10, 11, 12, 13)
	if n := testutil.ToFloat64(st.m.suppressed.WithLabelValues("new_high")); n != 2 {
		t.Errorf("suppressed %v, want 2", n)
	}
	if n := testutil.ToFloat64(st.m.derived.WithLabelValues("new_high")); n != 1 {
		t.Errorf("derived %v, want 1", n)
	}
}

// TestSessionPerDay: a new UTC day starts a new session: extremes and
// warm-up start again.
func TestSessionPerDay(t *testing.T) {
	st, out := newStage(t, Config{Signals: true, Warmup: 1})
	st.Emit(tradeEv("AAPL", day0-2000, 10, 1))
	st.Emit(tradeEv("AAPL", day0-1000, 11, 1)) // new high of the old day
	st.Emit(tradeEv("AAPL", day0, 5, 1))       // a new day: no new_low, first of its session
	st.Emit(tradeEv("AAPL", day0+1000, 6, 1))  // high of the new day
	got := out.take(event.KindSignal)
	want := lines(`signal:AAPL 1764287999000 {"signal":"new_high","price":11,"prev_high":10,"move_pct":10}`,
		`signal:AAPL 1764288001000 {"signal":"new_high","price":6,"prev_high":5,"move_pct":20}`)
	if lines(got...) != want {
		t.Errorf("signals:\n%s\nwant\n%s", lines(got...), want)
	}
}

func TestSymbolsApart(t *testing.T) {
	st, out := newStage(t, Config{Signals: true, Warmup: 1})
	st.Emit(tradeEv("AAPL", day0, 10, 1))
	st.Emit(tradeEv("MSFT", day0, 20, 1))
	st.Emit(tradeEv("MSFT", day0+1, 15, 1)) // below MSFT's low: a signal
	st.Emit(tradeEv("AAPL", day0+2, 15, 1)) // above AAPL's high: a signal
	got := out.take(event.KindSignal)
	if len(got) != 2 || got[0][:12] != "signal:MSFT " || got[1][:12] != "signal:AAPL " {
		t.Errorf("signals %v", got)
	}
}

// surgeOf decodes the surge signals among got.
func surgesOf(t *testing.T, out *sink) []surge {
	t.Helper()
	var s []surge
	for _, e := range out.events {
		if e.Channel.Kind != event.KindSignal {
			continue
		}
		var v surge
		if err := json.Unmarshal(e.Data, &v); err != nil {
			t.Fatal(err)
		}
		if v.Signal == "surge" {
			s = append(s, v)
		}
	}
	out.events = nil
	return s
}

func TestPriceSurge(t *testing.T) {
	cfg := Config{Signals: true, SurgePct: 1, SurgeWindow: 10 * time.Second, SurgeBaseline: 10 * time.Second}
	st, out := newStage(t, cfg)
	at := func(sec float64, price float64) {
		st.Emit(tradeEv("AAPL", day0+int64(sec*1000), price, 100))
	}
	at(0, 100)
	at(1, 100.5)
	at(2, 100.99) // 0.99 %: not yet
	if s := surgesOf(t, out); len(s) != 0 {
		t.Fatalf("early surge %+v", s)
	}
	at(3, 101) // 1 % up from the window's lowest
	at(4, 101.5)
	s := surgesOf(t, out)
	if len(s) != 1 || s[0].MovePct != 1 || s[0].Price != 101 || s[0].WindowMs != 10_000 || s[0].WindowVolume != 400 || s[0].VolumeRatio != nil {
		t.Fatalf("surges %+v, want one of 1 %% at 101 (and none while it lasts)", s)
	}
	// 100 leaves the window at 10 s: 101.5 is 0.5 % above 101 → over.
	at(10.5, 101.5)
	at(11, 100.4) // 1.08 % down from 101.5
	s = surgesOf(t, out)
	if len(s) != 1 || s[0].MovePct != -1.0837 {
		t.Fatalf("surges %+v, want one of -1.0837 %%", s)
	}
}

func TestVolumeSurge(t *testing.T) {
	cfg := Config{Signals: true, SurgeVolumeX: 3, SurgeWindow: 10 * time.Second, SurgeBaseline: time.Minute}
	st, out := newStage(t, cfg)
	for sec := range 71 { // 100 shares a second, 70 s: window 10 s and baseline 60 s covered
		st.Emit(tradeEv("AAPL", day0+int64(sec)*1000, 100, 100))
	}
	if s := surgesOf(t, out); len(s) != 0 {
		t.Fatalf("surge on steady volume: %+v", s)
	}
	st.Emit(tradeEv("AAPL", day0+70_500, 100, 3000))
	s := surgesOf(t, out)
	// Window (60.5 s, 70.5 s]: 10 trades of 100 and 3000 = 4000; baseline
	// (0.5 s, 60.5 s]: 60 trades of 100, 1000 per window: ratio 4.
	if len(s) != 1 || s[0].VolumeRatio == nil || *s[0].VolumeRatio != 4 || s[0].WindowVolume != 4000 || s[0].MovePct != 0 {
		t.Fatalf("surges %+v, want one with volume_ratio 4", s)
	}
}

// TestVolumeNeedsBaseline: no volume surge (and no ratio) before the
// session has lasted the window and the baseline.
func TestVolumeNeedsBaseline(t *testing.T) {
	cfg := Config{Signals: true, SurgePct: 1, SurgeVolumeX: 2, SurgeWindow: time.Second, SurgeBaseline: 10 * time.Second}
	st, out := newStage(t, cfg)
	st.Emit(tradeEv("AAPL", day0, 100, 1))
	st.Emit(tradeEv("AAPL", day0+5000, 100, 1_000_000))
	st.Emit(tradeEv("AAPL", day0+5100, 102, 1))
	s := surgesOf(t, out)
	if len(s) != 1 || s[0].VolumeRatio != nil || s[0].MovePct != 2 {
		t.Errorf("surges %+v, want one price surge without volume_ratio", s)
	}
}

func TestSurgeWarmupAndCooldown(t *testing.T) {
	cfg := Config{Signals: true, Warmup: 2, Cooldown: time.Minute, SurgePct: 1, SurgeWindow: time.Second, SurgeBaseline: time.Second}
	st, out := newStage(t, cfg)
	price := []float64{100, 110, 100, 100, 110, 100, 100, 110} // a surge every 1.5 s or so
	for i, p := range price {
		st.Emit(tradeEv("AAPL", day0+int64(i)*500, p, 1))
	}
	// 110 at trade 2 is within the warm-up; at trade 5 it fires (the move
	// from 100 up); at trade 8 the cooldown holds it back.
	s := surgesOf(t, out)
	if len(s) != 1 || s[0].Price != 110 {
		t.Errorf("surges %+v, want one", s)
	}
	if n := testutil.ToFloat64(st.m.suppressed.WithLabelValues("surge")); n < 1 {
		t.Errorf("suppressed surges %v, want some", n)
	}
}

// TestLateTradeKeepsWindowClock: a trade stamped a little earlier counts
// at the symbol's latest time, so windows never run backwards.
func TestLateTradeKeepsWindowClock(t *testing.T) {
	cfg := Config{Signals: true, SurgePct: 1, SurgeWindow: time.Second, SurgeBaseline: time.Second}
	st, out := newStage(t, cfg)
	st.Emit(tradeEv("AAPL", day0+5000, 100, 1))
	st.Emit(tradeEv("AAPL", day0+1000, 101, 1)) // late by 4 s: at 5 s for the window
	s := surgesOf(t, out)
	if len(s) != 1 || s[0].MovePct != 1 {
		t.Errorf("surges %+v", s)
	}
}

func TestWindowCompacts(t *testing.T) {
	var w window
	for i := range 100_000 {
		w.add(int64(i), float64(100+i%7), 1, 100, 1000)
	}
	if len(w.ticks) > 4*1100 {
		t.Errorf("window holds %d trades for 1100 in its spans", len(w.ticks))
	}
	if w.winVol != 100 || w.baseVol != 1000 {
		t.Errorf("volumes %v %v, want 100 1000", w.winVol, w.baseVol)
	}
	if got := fmt.Sprintf("%.4f", w.movePct(100)); got != "-5.6604" {
		t.Errorf("move %s", got)
	}
}
