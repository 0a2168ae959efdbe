package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/collector/internal/derive"
	"github.com/tickwire/tickwire/collector/internal/source"
	"github.com/tickwire/tickwire/shared/event"
)

// signalRate runs the synthetic feed of cfg with seed through the derive
// stage of cfg for minutes of simulated time (stamped as Synthetic.Run
// would, in 10 ms ticks) and counts the signals by type and symbol.
func signalRate(t testing.TB, cfg Config, seed uint64, minutes int) (byType map[string]int, bySymbol map[string]int) {
	t.Helper()
	syn, err := source.NewSynthetic(source.SyntheticConfig{Symbols: cfg.Symbols, Rate: cfg.Rate, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	byType, bySymbol = map[string]int{}, map[string]int{}
	count := func(e source.Event) {
		if e.Channel.Kind != event.KindSignal {
			return
		}
		out, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		var s struct{ Signal string }
		if err := json.Unmarshal(out.Data, &s); err != nil {
			t.Fatal(err)
		}
		byType[s.Signal]++
		bySymbol[e.Channel.Symbol]++
	}
	st, err := derive.New(cfg.deriveConfig(), count, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	const start = 1764340200000 // 2025-11-28T14:30:00Z
	n := int(cfg.Rate * float64(minutes) * 60)
	for i := range n {
		ms := int64(float64(i) / cfg.Rate * 1000)
		st.Emit(syn.Next(start + ms - ms%10))
	}
	st.Flush()
	return byType, bySymbol
}

// TestSyntheticSignalRate checks that the defaults make the default
// synthetic feed (200 events/s over ten symbols) signal a few times a
// minute: enough to watch, far from a flood. It logs the rates measured.
func TestSyntheticSignalRate(t *testing.T) {
	const minutes = 10
	cfg := loadConfig(t, nil)
	for _, seed := range []uint64{1, 2, 3} {
		byType, bySymbol := signalRate(t, cfg, seed, minutes)
		total := 0
		for _, n := range byType {
			total += n
		}
		perMin := float64(total) / minutes
		syms := make([]string, 0, len(bySymbol))
		for s := range bySymbol {
			syms = append(syms, s)
		}
		slices.Sort(syms)
		t.Logf("seed %d: %.1f signals/min over %d simulated minutes: %v; symbols signalling: %d %v",
			seed, perMin, minutes, byType, len(syms), bySymbol)
		if perMin < 1 || perMin > 20 {
			t.Errorf("seed %d: %.1f signals a minute, want a few (1 to 20)", seed, perMin)
		}
		for _, typ := range []string{"new_high", "new_low", "surge"} {
			if byType[typ] == 0 {
				t.Errorf("seed %d: no %s in %d minutes", seed, typ, minutes)
			}
		}
	}
}
