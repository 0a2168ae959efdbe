package batch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/streams"
)

// gateWriter holds each write until release is closed.
type gateWriter struct {
	entered chan int
	release chan struct{}
}

func (g gateWriter) Write(_ context.Context, evs []streams.Pending) (streams.Result, error) {
	g.entered <- len(evs)
	<-g.release
	return streams.Result{Written: len(evs)}, nil
}

// Pending counts the batch being written, which Len does not: a source
// holding back on Pending leaves room for that batch to come back.
func TestPendingCountsBatchInFlight(t *testing.T) {
	g := gateWriter{entered: make(chan int, 10), release: make(chan struct{})}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(g, Config{MaxBatch: 10, Buffer: 100}, slog.New(slog.NewTextHandler(io.Discard, nil)), m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	for _, e := range events(t, 0, 5) {
		b.Add(e)
	}
	if n := <-g.entered; n < 1 {
		t.Fatalf("write of %d events", n)
	}
	for _, e := range events(t, 5, 2) {
		b.Add(e)
	}
	if got, want := b.Pending(), 7; got != want || b.Len() >= want {
		t.Errorf("during a write: Pending %d (want %d), Len %d (want less)", got, want, b.Len())
	}
	close(g.release)
	poll.Until(t, 10*time.Second, func() error {
		if n := b.Pending(); n != 0 {
			return fmt.Errorf("Pending %d after the writes, want 0", n)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
