package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickwire/tickwire/collector/internal/batch"
	"github.com/tickwire/tickwire/collector/internal/derive"
	"github.com/tickwire/tickwire/collector/internal/pipeline"
	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/streams"
)

// flakyWriter fails its first writes, each time writing half the batch
// and returning the rest, as a writer whose Redis went away mid-batch;
// then it writes everything.
type flakyWriter struct {
	mu    sync.Mutex
	fails int
	got   []event.Event
}

var errDown = errors.New("redis down")

func (w *flakyWriter) Write(_ context.Context, evs []streams.Pending) (streams.Result, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fails > 0 {
		w.fails--
		half := len(evs) / 2
		for _, p := range evs[:half] {
			w.got = append(w.got, p.Event)
		}
		return streams.Result{Written: half, Unwritten: evs[half:]}, errDown
	}
	for _, p := range evs {
		w.got = append(w.got, p.Event)
	}
	return streams.Result{Written: len(evs)}, nil
}

// writeTrades writes a CSV of n trades over syms, ten a second.
func writeTrades(t testing.TB, n int, syms ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("ts,symbol,price,size\n")
	for i := range n {
		fmt.Fprintf(&b, "%d,%s,%d.%02d,%d\n", 1764340200000+int64(i)*100, syms[i%len(syms)], 100+i%7, i%100, 100*(1+i%5))
	}
	path := filepath.Join(t.TempDir(), "trades.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReplayNeverDrops replays at full speed into a small buffer while the
// writes fail: the replay waits for room (newSource's rule), so nothing is
// dropped, and every row arrives once, in order, with its bars.
func TestReplayNeverDrops(t *testing.T) {
	const rows = 3000
	cfg := loadConfig(t, map[string]string{
		"COLLECTOR_SOURCE": "replay", "COLLECTOR_REPLAY_FILE": writeTrades(t, rows, "A", "B", "C"),
		"COLLECTOR_REPLAY_SPEED": "0", "COLLECTOR_BUFFER": "16", "COLLECTOR_MAX_BATCH": "2",
		"COLLECTOR_FLUSH_INTERVAL": "0", "COLLECTOR_SIGNALS": "false",
	})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	w := &flakyWriter{fails: 4} // backoff 50+100+200+400 ms
	m, _ := runPipeline(t, cfg, w, 0)
	if n := testutil.ToFloat64(m.Dropped); n != 0 {
		t.Errorf("%v events dropped", n)
	}
	if n := testutil.ToFloat64(m.WriteErrors); n != 4 {
		t.Errorf("%v write errors, want 4", n)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	last := map[string]int64{}
	trades, bars := 0, 0
	for _, e := range w.got {
		if e.TS < last[e.Channel.String()] {
			t.Fatalf("%s out of order at ts %d", e.Channel, e.TS)
		}
		last[e.Channel.String()] = e.TS
		switch e.Channel.Kind {
		case event.KindTrade:
			trades++
		case event.KindBar:
			bars++
		}
	}
	// Ten trades a second over three symbols: each symbol trades in every
	// second of the 300 the file spans.
	if trades != rows || bars != 3*rows/10 {
		t.Errorf("%d trades and %d bars written, want %d and %d", trades, bars, rows, 3*rows/10)
	}
}

// TestMaxSymbolsThroughPipeline replays trades of more symbols than
// COLLECTOR_MAX_SYMBOLS through the real stages: only the first symbols'
// events are written, the others' are refused and counted.
func TestMaxSymbolsThroughPipeline(t *testing.T) {
	const max, syms, rows = 50, 200, 2000
	names := make([]string, syms)
	for i := range names {
		names[i] = fmt.Sprintf("S%d", i)
	}
	cfg := loadConfig(t, map[string]string{
		"COLLECTOR_SOURCE": "replay", "COLLECTOR_REPLAY_FILE": writeTrades(t, rows, names...),
		"COLLECTOR_REPLAY_SPEED": "0", "COLLECTOR_MAX_SYMBOLS": fmt.Sprint(max), "COLLECTOR_SIGNALS": "false",
	})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	w := &flakyWriter{}
	_, reg := runPipeline(t, cfg, w, 0)
	seen := map[string]bool{}
	trades := 0
	w.mu.Lock()
	for _, e := range w.got {
		seen[e.Channel.Symbol] = true
		if e.Channel.Kind == event.KindTrade {
			trades++
		}
	}
	w.mu.Unlock()
	if len(seen) != max || trades != rows*max/syms {
		t.Errorf("%d symbols and %d trades written, want %d and %d", len(seen), trades, max, rows*max/syms)
	}
	refused, err := testutil.GatherAndCount(reg, "tickwire_collector_symbols_refused_total")
	if err != nil || refused != 1 {
		t.Fatalf("refused counter: %d series, %v", refused, err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(`
# HELP tickwire_collector_symbols_refused_total Events refused because their symbol was new while COLLECTOR_MAX_SYMBOLS symbols were known.
# TYPE tickwire_collector_symbols_refused_total counter
tickwire_collector_symbols_refused_total %d
`, rows-rows*max/syms)), "tickwire_collector_symbols_refused_total"); err != nil {
		t.Error(err)
	}
}

// runPipeline runs cfg's source through derive and a batcher writing to w
// until the source ends, and returns the batcher's metrics and the registry
// of every stage's metrics.
func runPipeline(tb testing.TB, cfg Config, w batch.Writer, finalFlush time.Duration) (*batch.Metrics, *prometheus.Registry) {
	tb.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	m, err := batch.NewMetrics(reg)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := batch.New(w, batch.Config{FlushInterval: cfg.FlushInterval, MaxBatch: cfg.MaxBatch, Buffer: cfg.Buffer, FinalFlush: finalFlush}, log, m)
	if err != nil {
		tb.Fatal(err)
	}
	stage, err := derive.New(cfg.deriveConfig(), pipeline.Encode(b.Add, log), log, reg)
	if err != nil {
		tb.Fatal(err)
	}
	src, err := newSource(cfg, b, log, reg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := pipeline.New(src, stage, b).Run(context.Background()); err != nil {
		tb.Fatalf("pipeline: %v", err)
	}
	return m, reg
}
