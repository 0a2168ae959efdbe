package batch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tickwire/tickwire/shared/streams"
)

// flush writes what waits, retrying with backoff (waits bounded by ctx)
// until one write succeeds or ctx ends; it then returns the last write
// error. Writes use writeCtx, so that ending ctx never cuts one off.
func (b *Batcher) flush(ctx, writeCtx context.Context) error {
	delay := minBackoff
	for {
		batch := b.take()
		if len(batch) == 0 {
			return nil
		}
		err := b.write(writeCtx, batch)
		if err == nil {
			return nil
		}
		b.reportDrops(false)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(2*delay, maxBackoff)
	}
}

// write writes one batch, puts back what was not written, and records the
// outcome in metrics and readiness. Events refused by the lease fence are
// discarded: a standby's events are not retried.
func (b *Batcher) write(ctx context.Context, batch []streams.Pending) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	start := time.Now()
	res, err := b.w.Write(ctx, batch)
	b.m.WriteDuration.Observe(time.Since(start).Seconds())
	b.m.BatchSize.Observe(float64(len(batch)))
	b.m.Written.Add(float64(res.Written))
	b.reportSkipped(res.Skipped)
	if err == nil && len(res.Unwritten) > 0 {
		err = fmt.Errorf("writer returned %d unwritten events without an error", len(res.Unwritten))
	}
	if errors.Is(err, streams.ErrNotLeader) {
		if b.fenced.allow(time.Now()) {
			// Info: on a standby this is the normal state (at most one line
			// per skipLogEvery).
			b.log.Info("events discarded: this collector does not hold the lease",
				"discarded", len(res.Unwritten), "batches_since_last_line", b.fenced.take())
		}
		b.recycle(batch)
		b.succeeded() // Redis answered
		return nil
	}
	if err != nil {
		b.m.WriteErrors.Inc()
		b.putBack(res.Unwritten)
		b.failed(fmt.Errorf("redis write: %w", err))
		return err
	}
	b.m.gauges.wrote()
	b.recycle(batch)
	b.succeeded()
	return nil
}

// reportSkipped counts the histories the write script skipped and logs
// them, at most once per skipLogEvery.
func (b *Batcher) reportSkipped(skipped []streams.Skipped) {
	if len(skipped) == 0 {
		return
	}
	b.m.HistorySkipped.Add(float64(len(skipped)))
	if !b.skipped.allow(time.Now()) {
		b.skipped.n += len(skipped) - 1
		return
	}
	b.log.Warn("history key refused events (not a stream?); its events are in the feed only",
		"channel", skipped[0].Channel, "err", skipped[0].Reason,
		"also_skipped", len(skipped)-1+b.skipped.take())
}

// take removes every waiting event from the buffer.
func (b *Batcher) take() []streams.Pending {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) == 0 {
		return nil
	}
	out := b.buf
	b.buf, b.spare = b.spare, nil
	b.inFlight = len(out)
	b.m.Buffered.Set(0)
	b.m.gauges.taken()
	return out
}

// putBack returns unwritten events to the front of the buffer, ahead of
// those added meanwhile, and drops the oldest beyond the bound. Appending
// the newer events to unwritten copies only those under the lock.
func (b *Batcher) putBack(unwritten []streams.Pending) {
	b.mu.Lock()
	defer b.mu.Unlock()
	merged := append(unwritten, b.buf...)
	if excess := len(merged) - b.cfg.Buffer; excess > 0 {
		clear(merged[:excess])
		merged = merged[excess:]
		b.unlogged += excess
		b.m.Dropped.Add(float64(excess))
	}
	clear(b.buf)
	b.buf, b.spare = merged, b.buf[:0]
	b.inFlight = 0
	b.m.Buffered.Set(float64(len(b.buf)))
	b.m.gauges.putBack(len(unwritten), len(b.buf))
}

// recycle keeps a written batch's array for the next take, so that a
// steady flow allocates no new buffers.
func (b *Batcher) recycle(batch []streams.Pending) {
	clear(batch)
	b.mu.Lock()
	b.spare = batch[:0]
	b.inFlight = 0
	b.mu.Unlock()
}

// probe pings Redis if nothing was written for a while and nothing waits.
func (b *Batcher) probe(ctx context.Context) {
	if b.cfg.Ping == nil || time.Since(b.lastOK) < probeEvery || b.Len() > 0 {
		return
	}
	pingCtx, cancel := context.WithTimeout(ctx, pingTimeout)
	err := b.cfg.Ping(pingCtx)
	cancel()
	switch {
	case err == nil:
		b.succeeded()
	case ctx.Err() != nil:
		// Shutting down: says nothing about Redis.
	default:
		b.failed(fmt.Errorf("redis ping: %w", err))
	}
}

// succeeded marks Redis reachable, and logs the end of an outage.
func (b *Batcher) succeeded() {
	b.setReady(nil)
	b.lastOK = time.Now()
	if b.downSince.IsZero() {
		return
	}
	b.log.Info("redis reachable again", "down_for", time.Since(b.downSince).Round(time.Millisecond),
		"failures", b.failures, "buffered", b.Len())
	b.downSince, b.failures = time.Time{}, 0
}

// failed marks Redis unreachable, and logs the start of an outage (not each
// retry).
func (b *Batcher) failed(err error) {
	b.setReady(err)
	b.failures++
	if !b.downSince.IsZero() {
		return
	}
	b.downSince = time.Now()
	if streams.IsOOM(err) {
		b.log.Error("redis out of memory (maxmemory reached); buffering events and retrying: "+
			"raise maxmemory, or lower COLLECTOR_HISTORY_LEN or COLLECTOR_RETENTION",
			"err", err, "buffered", b.Len())
		return
	}
	b.log.Warn("redis unreachable; buffering events and retrying", "err", err, "buffered", b.Len())
}

// rateLog lets one log line through per period and counts those held back.
// It is owned by the Run goroutine.
type rateLog struct {
	last time.Time
	n    int // occurrences held back since the last line
}

// allow reports whether a line may be logged at now; if not, it counts one
// held back.
func (r *rateLog) allow(now time.Time) bool {
	if now.Sub(r.last) < skipLogEvery {
		r.n++
		return false
	}
	r.last = now
	return true
}

// take returns and clears the count held back.
func (r *rateLog) take() int {
	n := r.n
	r.n = 0
	return n
}

func (b *Batcher) setReady(err error) {
	b.mu.Lock()
	b.ready = err
	b.mu.Unlock()
}

// reportDrops logs the events dropped since the last report, at most once
// per dropLogEvery unless forced.
func (b *Batcher) reportDrops(force bool) {
	if !force && time.Since(b.lastDrops) < dropLogEvery {
		return
	}
	b.mu.Lock()
	n := b.unlogged
	b.unlogged = 0
	b.mu.Unlock()
	if n == 0 {
		return
	}
	b.lastDrops = time.Now()
	b.log.Warn("buffer full: oldest events dropped", "dropped", n, "buffer", b.cfg.Buffer)
}
