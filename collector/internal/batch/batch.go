// Package batch is the collector's buffer between its source and Redis.
// The source adds events without ever waiting on Redis; one goroutine
// writes them in batches, every flush interval or as soon as a full batch
// waits. While Redis is unreachable the events stay in a bounded buffer and
// the write is retried with backoff; when the buffer overflows, the oldest
// events are dropped, counted and logged.
//
// Delivery is at least once: a write that fails after Redis applied it (a
// timeout, a connection lost mid-reply) is retried, and its events appear
// twice.
package batch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/streams"
)

// ErrNoWriteYet is what Ready reports before the first write or probe has
// reached Redis.
var ErrNoWriteYet = errors.New("no redis write or ping yet")

// Timing of the flusher.
const (
	minBackoff   = 50 * time.Millisecond // first wait after a failed write
	maxBackoff   = 2 * time.Second       // longest wait between retries
	writeTimeout = 5 * time.Second       // bound of one batch write
	probeEvery   = time.Second           // idle probe and drop report period
	pingTimeout  = 2 * time.Second       // bound of one probe
	dropLogEvery = time.Second           // at most one drop report per period
	skipLogEvery = 10 * time.Second      // at most one skipped-history or fence line per period

	// DefaultFinalFlush bounds the last flush at shutdown when Config
	// leaves it zero.
	DefaultFinalFlush = 5 * time.Second
)

// Writer writes a batch of events and returns what it did: the events it
// did not write (Result.Unwritten), with the error, so that they can be
// retried without duplicating the others, and the histories it skipped.
// An error wrapping streams.ErrNotLeader means this collector does not hold
// the lease: the unwritten events are discarded (the leader writes its
// own), and counted by the writer as standby discards, not as written.
// *streams.Writer satisfies it.
type Writer interface {
	Write(ctx context.Context, events []streams.Pending) (streams.Result, error)
}

// Config sizes and paces a Batcher.
type Config struct {
	// FlushInterval is the time between writes; 0 writes as soon as the
	// previous write returned, batching what waited meanwhile.
	FlushInterval time.Duration
	// MaxBatch is the number of waiting events that starts a write before
	// the interval ends. At least 1.
	MaxBatch int
	// Buffer is the most events kept waiting; beyond it the oldest are
	// dropped. At least MaxBatch.
	Buffer int
	// FinalFlush bounds the last flush when Run's context ends; 0 means
	// DefaultFinalFlush.
	FinalFlush time.Duration
	// Ping, if set, is called when nothing was written for a second, so that
	// Ready follows Redis while the source is quiet.
	Ping func(ctx context.Context) error
}

// Batcher buffers events and writes them in batches. Add and the read-only
// methods may be called from any goroutine, concurrently with Run; Run must
// be called once.
type Batcher struct {
	w    Writer
	cfg  Config
	log  *slog.Logger
	m    *Metrics
	wake chan struct{} // one slot: "a batch is waiting"

	mu       sync.Mutex
	buf      []streams.Pending // oldest first
	spare    []streams.Pending // an empty array to swap in at the next take
	inFlight int               // events of the batch being written
	unlogged int               // drops not yet logged
	ready    error

	// Owned by the Run goroutine.
	lastOK    time.Time
	downSince time.Time // zero while Redis answers
	failures  int
	lastDrops time.Time
	skipped   rateLog // histories skipped by the write script
	fenced    rateLog // batches refused by the lease fence
}

// New returns a Batcher writing to w. log is narrowed to the component.
func New(w Writer, cfg Config, log *slog.Logger, m *Metrics) (*Batcher, error) {
	if cfg.MaxBatch < 1 {
		return nil, fmt.Errorf("max batch %d: want at least 1", cfg.MaxBatch)
	}
	if cfg.Buffer < cfg.MaxBatch {
		return nil, fmt.Errorf("buffer %d: want at least the max batch (%d)", cfg.Buffer, cfg.MaxBatch)
	}
	if cfg.FlushInterval < 0 {
		return nil, fmt.Errorf("flush interval %v: want 0 or more", cfg.FlushInterval)
	}
	if cfg.FinalFlush <= 0 {
		cfg.FinalFlush = DefaultFinalFlush
	}
	b := &Batcher{
		w: w, cfg: cfg, log: log.With("component", "batch"), m: m,
		wake: make(chan struct{}, 1), ready: ErrNoWriteYet,
	}
	m.gauges.attach(b)
	return b, nil
}

// Add appends e to the buffer, dropping the oldest event if it is full. It
// never waits for Redis, only for the buffer's lock, which no I/O holds.
func (b *Batcher) Add(e event.Event) {
	b.m.Received.Inc()
	b.mu.Lock()
	if len(b.buf) >= b.cfg.Buffer {
		b.buf[0] = streams.Pending{} // let the collector free its data
		b.buf = b.buf[1:]
		b.unlogged++
		b.m.Dropped.Inc()
	}
	b.buf = append(b.buf, streams.Pending{Event: e})
	n := len(b.buf)
	b.m.gauges.added(n)
	b.m.Buffered.Set(float64(n))
	b.mu.Unlock()
	if b.cfg.FlushInterval == 0 || n >= b.cfg.MaxBatch {
		select {
		case b.wake <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

// Len returns the number of events waiting in the buffer, not counting a
// batch being written.
func (b *Batcher) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.buf)
}

// Pending returns the events waiting plus those of the batch being
// written: what the buffer must hold should that write fail and its events
// be put back. A source that waits while Pending is at most half the buffer
// (and adds a few events between looks) therefore never causes a drop.
func (b *Batcher) Pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.buf) + b.inFlight
}

// Ready returns nil while the last write or probe reached Redis, and why not
// otherwise.
func (b *Batcher) Ready() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ready
}

// Run writes batches until ctx ends, then makes a final flush bounded by
// Config.FinalFlush and returns. It returns an error only if that flush
// left events unwritten. A write in progress when ctx ends is allowed to
// finish (bounded by its own timeout) rather than cut off, which could
// duplicate its events.
func (b *Batcher) Run(ctx context.Context) error {
	var tick <-chan time.Time
	if b.cfg.FlushInterval > 0 {
		t := time.NewTicker(b.cfg.FlushInterval)
		defer t.Stop()
		tick = t.C
	}
	probe := time.NewTicker(probeEvery)
	defer probe.Stop()
	b.probe(ctx)
	writeCtx := context.WithoutCancel(ctx)
	for {
		select {
		case <-ctx.Done():
			return b.finalFlush(ctx)
		case <-probe.C:
			b.reportDrops(false)
			b.probe(ctx)
			continue
		case <-tick:
		case <-b.wake:
		}
		_ = b.flush(ctx, writeCtx) // failures are logged; ctx end is seen above
	}
}

// finalFlush writes what is left, within Config.FinalFlush.
func (b *Batcher) finalFlush(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.FinalFlush)
	defer cancel()
	var err error
	for err == nil && b.Len() > 0 {
		err = b.flush(ctx, ctx)
	}
	b.reportDrops(true)
	if n := b.Len(); n > 0 {
		return fmt.Errorf("final flush: %d events not written: %w", n, err)
	}
	return nil
}
