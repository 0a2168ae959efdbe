package derive

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickwire/tickwire/collector/internal/source"
	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/testkit/logbuf"
)

// TestMaxSymbolsRefuses: beyond MaxSymbols, events of new symbols are
// refused and counted, known symbols go on, the state stays at the cap,
// and the refusals are logged once per refusedLogEvery, not per event.
func TestMaxSymbolsRefuses(t *testing.T) {
	const max, sent = 100, 20_000
	var logs logbuf.Buffer
	var out sink
	st, err := New(Config{Bars: true, Signals: true, MaxSymbols: max}, out.add,
		slog.New(slog.NewTextHandler(&logs, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Unix(5000, 0)
	st.now = func() time.Time { return wall }
	for i := range sent {
		st.Emit(tradeEv(fmt.Sprintf("S%d", i), 1764340200000+int64(i), 10, 1))
	}
	st.Emit(tradeEv("S0", 1764340300000, 11, 1)) // known: passes
	if n := len(st.syms); n != max || st.due.Len() != max {
		t.Errorf("%d symbols kept (%d in the heap), want the cap %d", n, st.due.Len(), max)
	}
	if n := testutil.ToFloat64(st.m.refused); n != sent-max {
		t.Errorf("refused %v, want %d", n, sent-max)
	}
	if n := testutil.ToFloat64(st.m.symbols); n != max {
		t.Errorf("symbols gauge %v, want %d", n, max)
	}
	if n := len(out.take(event.KindTrade)); n != max+1 {
		t.Errorf("%d trades passed on, want %d", n, max+1)
	}
	if n := strings.Count(logs.String(), "events of new symbols refused"); n != 1 {
		t.Errorf("%d log lines about refusals, want 1 (rate-limited):\n%s", n, logs.String())
	}
	st.Emit(tradeEv("NEW", 1764340300000, 11, 1))
	st.tick(wall.Add(refusedLogEvery))
	if got := logs.String(); strings.Count(got, "events of new symbols refused") != 2 || !strings.Contains(got, fmt.Sprintf("refused=%d last_symbol=NEW", sent-max)) {
		t.Errorf("after %v, want a second line counting the refusals since the first:\n%s", refusedLogEvery, got)
	}
}

// TestIdleSymbolsForgotten: a symbol without events for Config.Idle is
// forgotten (its open bar emitted first), which makes room under the cap;
// one seen meanwhile is kept.
func TestIdleSymbolsForgotten(t *testing.T) {
	const n = 1000
	st, out := newStage(t, Config{Bars: true, Signals: true, MaxSymbols: n, Idle: time.Minute})
	wall := time.Unix(5000, 0)
	st.now = func() time.Time { return wall }
	st.tick(wall)
	for i := range n {
		st.Emit(tradeEv(fmt.Sprintf("S%d", i), 1764340200000, 10, 1))
	}
	st.tick(wall.Add(30 * time.Second))
	st.Emit(tradeEv("S7", 1764340230000, 10, 1)) // seen at +30 s
	st.tick(wall.Add(time.Minute))
	if got := len(st.syms); got != 1 || st.syms["S7"] == nil {
		t.Fatalf("%d symbols kept after a minute, want S7 only", got)
	}
	if got := len(out.take(event.KindBar)); got != n {
		t.Errorf("%d bars emitted, want each forgotten symbol's open bar and S7's first (%d)", got, n)
	}
	if got := testutil.ToFloat64(st.m.forgotten); got != n-1 {
		t.Errorf("forgotten %v, want %d", got, n-1)
	}
	st.Emit(tradeEv("FRESH", 1764340260000, 10, 1))
	if st.syms["FRESH"] == nil || testutil.ToFloat64(st.m.refused) != 0 {
		t.Error("a new symbol was refused although the idle ones made room")
	}
	st.tick(wall.Add(2 * time.Minute))
	if got := len(st.syms); got != 0 || st.due.Len() != 0 {
		t.Errorf("%d symbols (%d in the heap) after two idle minutes, want none", got, st.due.Len())
	}
}

// TestStateBoundedUnderChurn: a stream of ever new symbols, each trading
// once, keeps the state at the cap while the clock runs, and the heap
// and the map stay in step.
func TestStateBoundedUnderChurn(t *testing.T) {
	const max = 500
	st, _ := newStage(t, Config{Bars: true, Signals: true, CloseQuiet: true, MaxSymbols: max, Idle: time.Second})
	wall := time.Unix(5000, 0)
	st.now = func() time.Time { return wall }
	for i := range 50_000 {
		if i%100 == 0 {
			wall = wall.Add(100 * time.Millisecond)
			st.tick(wall)
		}
		st.Emit(source.Event{Channel: event.Channel{Kind: event.KindTrade, Symbol: fmt.Sprintf("C%d", i)}, TS: wall.UnixMilli(), Data: event.Trade{Price: 1, Size: 1}})
		if len(st.syms) > max || len(st.syms) != st.due.Len() {
			t.Fatalf("after %d symbols: %d kept, %d in the heap; cap %d", i+1, len(st.syms), st.due.Len(), max)
		}
	}
	for i, sym := range st.due {
		if sym.idx != i || st.syms[sym.name] != sym {
			t.Fatalf("heap entry %d (%s) out of step", i, sym.name)
		}
	}
	if testutil.ToFloat64(st.m.refused) == 0 || testutil.ToFloat64(st.m.forgotten) == 0 {
		t.Error("churn neither refused nor forgot a symbol: the test does not test the cap")
	}
}
