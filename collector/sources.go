package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/collector/internal/batch"
	"github.com/tickwire/tickwire/collector/internal/source"
)

// newSource builds the source COLLECTOR_SOURCE names.
func newSource(cfg Config, b *batch.Batcher, log *slog.Logger, reg prometheus.Registerer) (source.Source, error) {
	// Finite sources wait while half the buffer is taken (counting the
	// batch being written, which a failed write puts back): a file read
	// faster than Redis takes it then waits upstream instead of being
	// dropped. Validate keeps the other half larger than what one input
	// event may become (derive.MaxOut), so that the buffer never overflows.
	busy := func() bool { return b.Pending() >= cfg.Buffer/2 }
	switch cfg.Source {
	case sourceSynthetic:
		s, err := source.NewSynthetic(source.SyntheticConfig{Symbols: cfg.Symbols, Rate: cfg.Rate, Seed: cfg.Seed})
		if err != nil {
			return nil, fmt.Errorf("synthetic source: %w", err)
		}
		log.Info("synthetic source", "seed", s.Seed(), "rate", cfg.Rate, "symbols", len(cfg.Symbols))
		return s, nil
	case sourceReplay:
		s, err := source.NewReplay(source.ReplayConfig{
			File: cfg.ReplayFile, Speed: cfg.ReplaySpeed, Loop: cfg.ReplayLoop,
			Symbol: cfg.ReplaySymbol, Strict: cfg.ReplayStrict, Busy: busy,
		}, log, reg)
		if err != nil {
			return nil, fmt.Errorf("COLLECTOR_REPLAY_FILE: %w", err)
		}
		log.Info("replay source", "file", cfg.ReplayFile, "speed", cfg.ReplaySpeed, "loop", cfg.ReplayLoop)
		return s, nil
	case sourceStdin:
		s, err := source.NewJSONL(os.Stdin, source.JSONLConfig{Name: "stdin", Busy: busy}, log, reg)
		if err != nil {
			return nil, fmt.Errorf("stdin source: %w", err)
		}
		return s, nil
	default: // Validate lets no other through
		return nil, fmt.Errorf("COLLECTOR_SOURCE %q: not implemented", cfg.Source)
	}
}
