package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/collector/internal/batch"
	"github.com/tickwire/tickwire/collector/internal/derive"
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

// pump runs the source through the derive stage into the batcher. When the
// source stops (ctx ended, or its input did), the stage's open bars are
// flushed and the batcher makes its final flush; pump returns once that is
// done: nothing the source emitted arrives after it.
func pump(ctx context.Context, src source.Source, stage *derive.Stage, b *batch.Batcher) error {
	batchCtx, stopBatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBatch()
	flushed := make(chan error, 1)
	go func() { flushed <- b.Run(batchCtx) }()
	stageCtx, stopStage := context.WithCancel(ctx)
	defer stopStage()
	staged := make(chan struct{})
	go func() {
		defer close(staged)
		_ = stage.Run(stageCtx) // returns nil when stageCtx ends
	}()

	srcErr := src.Run(ctx, stage.Emit)
	stopStage()
	<-staged
	stage.Flush()
	stopBatch()
	flushErr := <-flushed
	if srcErr != nil {
		srcErr = fmt.Errorf("source: %w", srcErr)
	}
	return errors.Join(srcErr, flushErr)
}

// serve serves HTTP on ln until stop is closed, then shuts the server down
// within shutdownTimeout.
func serve(srv *http.Server, ln net.Listener, stop <-chan struct{}) error {
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("http serve: %w", err)
	case <-stop:
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(ctx)
	<-served // Serve returns as soon as Shutdown closes the listener
	if err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}
