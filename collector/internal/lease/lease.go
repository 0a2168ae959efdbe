// Package lease lets one of several collectors write: the holder of the
// lease key (streams.Lease) writes, the others stand by and discard. A
// Keeper renews the lease from its Run goroutine and gates the batcher's
// writes; its methods are safe for concurrent use.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/collector/internal/batch"
	"github.com/tickwire/tickwire/shared/streams"
)

// ErrUnknown is what a write returns while the last renewal of the lease
// failed, or none has completed yet: the batcher keeps the events and
// retries, as it does when Redis is down.
var ErrUnknown = errors.New("collector lease state unknown")

// leaseMode is what the collector may do with a batch.
type leaseMode int

const (
	modeUnknown leaseMode = iota // no renewal answered yet, or the last failed
	modeActive                   // lease held and renewed recently: write
	modeStandby                  // another has the lease, or ours is stale: discard
)

// Metrics are the lease's Prometheus metrics.
type Metrics struct {
	Active    prometheus.Gauge
	Discarded prometheus.Counter
}

// NewMetrics registers the lease's metrics on reg. Active is 1 while this
// collector writes, also without a lease (COLLECTOR_LEASE_TTL=0).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tickwire_collector_active",
			Help: "1 while this collector holds the lease and writes to Redis, 0 while it stands by.",
		}),
		Discarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tickwire_collector_standby_discarded_total",
			Help: "Events not written because another collector held the lease.",
		}),
	}
	for _, c := range []prometheus.Collector{m.Active, m.Discarded} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register collector lease metrics: %w", err)
		}
	}
	return m, nil
}

// Fencer is the writer behind a Keeper (streams.Writer): it writes the
// batches, and Fence makes them carry a lease term, refused by Redis once
// a later term has written (streams.Writer.Fence).
type Fencer interface {
	batch.Writer
	Fence(ctx context.Context, term int64) error
}

// Keeper keeps the collector's lease: Run renews it every TTL/3, and Write
// (the batcher's Writer) writes only while the lease was renewed less than
// TTL*2/3 ago. Each new term of the lease is fenced (Fencer) before the
// first write under it. Write and Run may run concurrently.
type Keeper struct {
	lease *streams.Lease
	w     Fencer
	log   *slog.Logger
	m     *Metrics

	// Owned by the renewing goroutine (Start, then Run).
	fenced int64 // the term the writer's fences were raised to
	least  int64 // the least term to ask for: above a fence found higher

	mu      sync.Mutex
	held    bool      // the last renewal answered that we hold the lease
	err     error     // the last renewal failed; nil before the first
	renewed time.Time // start of the last renewal that held the lease
	logged  leaseMode // mode last logged
	started bool      // a renewal has answered
}

// New returns a Keeper of lease that passes the writes it allows to w.
func New(lease *streams.Lease, w Fencer, log *slog.Logger, m *Metrics) *Keeper {
	return &Keeper{lease: lease, w: w, log: log.With("component", "lease"), m: m}
}

// Start makes the first renewal, so that the first batch finds the lease
// state known; it does not fail: an error leaves the state unknown.
func (l *Keeper) Start(ctx context.Context) { l.renew(ctx, l.lease.TTL()/3) }

// Run renews the lease every TTL/3 until ctx ends, then releases it so
// that a standby collector takes over at once, and returns nil. Its ctx
// must end after the final flush (run cancels it once the pipeline has
// returned), so that the flush is still written under the lease.
func (l *Keeper) Run(ctx context.Context) error {
	every := l.lease.TTL() / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.releaseLease(context.WithoutCancel(ctx))
			return nil
		case <-t.C:
			l.renew(ctx, every)
		}
	}
}

// renew acquires or extends the lease, bounded by timeout, and records the
// answer.
func (l *Keeper) renew(ctx context.Context, timeout time.Duration) {
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, timeout)
	held, err := l.acquire(rctx)
	cancel()
	l.mu.Lock()
	l.held, l.err, l.started = held, err, true
	if held {
		l.renewed = start
	}
	mode, changed := l.modeLocked(start), false
	if mode != l.logged {
		l.logged, changed = mode, true
	}
	l.mu.Unlock()
	if mode == modeActive {
		l.m.Active.Set(1)
	} else {
		l.m.Active.Set(0)
	}
	if changed {
		l.logMode(ctx, mode, err, timeout)
	}
}

// acquire acquires or extends the lease and, when that starts a term,
// fences it. A term found behind a shard's fence (its counter was lost,
// or a clock ran ahead) is replaced at once by one above the fence: the
// lease says this collector holds it, so the fence's writer does not. An
// error leaves the lease state unknown, so no batch is written unfenced.
func (l *Keeper) acquire(ctx context.Context) (bool, error) {
	for range 2 {
		held, term, err := l.lease.Acquire(ctx, l.least)
		if err != nil || !held || term == l.fenced {
			return held, err
		}
		err = l.w.Fence(ctx, term)
		var stale *streams.StaleTermError
		if errors.As(err, &stale) {
			l.log.Warn("lease term behind a shard's fence; starting a higher one", "term", term, "fence", stale.Fence)
			l.least = stale.Fence + 1
			continue
		}
		if err != nil {
			return false, fmt.Errorf("fence lease term %d: %w", term, err)
		}
		l.fenced = term
		return true, nil
	}
	return false, errors.New("lease term still behind a shard's fence")
}

// logMode logs a change of mode; timeout bounds the look-up of the
// holder that a standby names.
func (l *Keeper) logMode(ctx context.Context, mode leaseMode, err error, timeout time.Duration) {
	switch mode {
	case modeActive:
		l.log.Info("active: lease acquired")
	case modeStandby:
		ctx, cancel := context.WithTimeout(ctx, timeout)
		holder, _ := l.lease.Holder(ctx) // for the log only
		cancel()
		l.log.Info("standby: another collector holds the lease", "holder", holder)
	default:
		l.log.Warn("lease renewal failed; buffering events until it succeeds", "err", err)
	}
}

// releaseLease gives the lease up, if held, within one renewal period.
func (l *Keeper) releaseLease(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, l.lease.TTL()/3)
	defer cancel()
	l.m.Active.Set(0)
	l.mu.Lock()
	l.held = false
	l.mu.Unlock()
	if err := l.lease.Release(ctx); err != nil {
		l.log.Warn("release lease", "err", err)
		return
	}
	l.log.Info("lease released")
}

// mode is what a write starting at now may do.
func (l *Keeper) mode(now time.Time) leaseMode {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.modeLocked(now)
}

func (l *Keeper) modeLocked(now time.Time) leaseMode {
	switch {
	case !l.started || l.err != nil:
		return modeUnknown
	case l.held && now.Sub(l.renewed) < l.lease.TTL()*2/3:
		return modeActive
	default: // another holds it, or our last renewal is too old to trust
		return modeStandby
	}
}

// Write writes events while the lease is held and fresh, discards them
// on standby (streams.ErrNotLeader: the batcher drops them), and returns
// them unwritten with ErrUnknown while the lease state is unknown. A
// write the script's fence refuses counts as discarded too.
func (l *Keeper) Write(ctx context.Context, events []streams.Pending) (streams.Result, error) {
	switch l.mode(time.Now()) {
	case modeActive:
		res, err := l.w.Write(ctx, events)
		if errors.Is(err, streams.ErrNotLeader) {
			l.m.Discarded.Add(float64(len(res.Unwritten)))
		}
		return res, err
	case modeStandby:
		l.m.Active.Set(0) // also when our own renewal is stale
		l.m.Discarded.Add(float64(len(events)))
		return streams.Result{Unwritten: events}, streams.ErrNotLeader
	default:
		l.mu.Lock()
		err := l.err
		l.mu.Unlock()
		if err != nil {
			return streams.Result{Unwritten: events}, fmt.Errorf("%w: %w", ErrUnknown, err)
		}
		return streams.Result{Unwritten: events}, ErrUnknown
	}
}
