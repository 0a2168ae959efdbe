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
	"github.com/tickwire/tickwire/collector/internal/source"
)

// newSource builds the source COLLECTOR_SOURCE names.
func newSource(cfg Config, b *batch.Batcher, log *slog.Logger, reg prometheus.Registerer) (source.Source, error) {
	switch cfg.Source {
	case sourceSynthetic:
		s, err := source.NewSynthetic(source.SyntheticConfig{Symbols: cfg.Symbols, Rate: cfg.Rate, Seed: cfg.Seed})
		if err != nil {
			return nil, fmt.Errorf("synthetic source: %w", err)
		}
		log.Info("synthetic source", "seed", s.Seed(), "rate", cfg.Rate, "symbols", len(cfg.Symbols))
		return s, nil
	case sourceStdin:
		// Hold stdin back at half the buffer, so a file piped in faster
		// than Redis takes it waits upstream instead of being dropped.
		busy := func() bool { return b.Len() >= max(1, cfg.Buffer/2) }
		s, err := source.NewJSONL(os.Stdin, source.JSONLConfig{Name: "stdin", Busy: busy}, log, reg)
		if err != nil {
			return nil, fmt.Errorf("stdin source: %w", err)
		}
		return s, nil
	default: // Validate lets no other through
		return nil, fmt.Errorf("COLLECTOR_SOURCE %q: not implemented", cfg.Source)
	}
}

// pump runs the source into the batcher. When the source stops (ctx ended,
// or its input did), the batcher makes its final flush, and pump returns
// once that is done: nothing the source emitted arrives after it.
func pump(ctx context.Context, src source.Source, b *batch.Batcher) error {
	batchCtx, stopBatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBatch()
	flushed := make(chan error, 1)
	go func() { flushed <- b.Run(batchCtx) }()
	srcErr := src.Run(ctx, b.Add)
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
