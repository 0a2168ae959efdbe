package derive

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/collector/internal/source"
)

// BenchmarkEmit measures the stage on trades of 50 symbols, 20 a
// millisecond, with bars and every signal on.
func BenchmarkEmit(b *testing.B) {
	cfg := Config{
		Bars: true, Signals: true, Warmup: 50, Cooldown: 2 * time.Minute,
		SurgePct: 0.5, SurgeWindow: 10 * time.Second, SurgeVolumeX: 4, SurgeBaseline: 2 * time.Minute,
	}
	n := 0
	st, err := New(cfg, func(source.Event) { n++ }, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	trades := make([]source.Event, 10_000)
	for i := range trades {
		trades[i] = tradeEv(fmt.Sprintf("SYM%d", i%50), 0, 100+float64(i%13)/10, 100)
	}
	b.ResetTimer()
	for i := range b.N {
		e := trades[i%len(trades)]
		e.TS = 1764340200000 + int64(i)/20
		st.Emit(e)
	}
	b.ReportMetric(float64(n)/float64(b.N), "out/op")
}

// BenchmarkCloseQuiet measures one tick of the quiet-bar timer (Run's
// every quietEvery) on a stage that has seen 100 000 symbols: idle, all
// their bars closed already; open, every bar open and not yet due.
func BenchmarkCloseQuiet(b *testing.B) {
	const symbols = 100_000
	for _, open := range []bool{false, true} {
		name := "idle"
		if open {
			name = "open"
		}
		b.Run(name, func(b *testing.B) {
			cfg := Config{Bars: true, CloseQuiet: true}
			st, err := New(cfg, func(source.Event) {}, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			clock := time.Unix(1764340200, 0)
			st.now = func() time.Time { return clock }
			for i := range symbols {
				st.Emit(tradeEv(fmt.Sprintf("SYM%d", i), 1764340200000, 100, 1))
			}
			if !open {
				st.tick(clock.Add(2 * time.Second))
			}
			b.ResetTimer()
			for range b.N {
				st.tick(clock.Add(500 * time.Millisecond))
			}
		})
	}
}
