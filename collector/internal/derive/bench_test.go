package derive

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/shared/event"
)

// BenchmarkEmit measures the stage on trades of 50 symbols, 20 a
// millisecond, with bars and every signal on.
func BenchmarkEmit(b *testing.B) {
	cfg := Config{
		Bars: true, Signals: true, Warmup: 50, Cooldown: 2 * time.Minute,
		SurgePct: 0.5, SurgeWindow: 10 * time.Second, SurgeVolumeX: 4, SurgeBaseline: 2 * time.Minute,
	}
	n := 0
	st, err := New(cfg, func(event.Event) { n++ }, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	trades := make([]event.Event, 10_000)
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
