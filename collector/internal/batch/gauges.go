package batch

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// gauges are the batcher's state as an operator watches it: how full the
// buffer is, how old its oldest event, and how long since a write reached
// Redis. They read the Batcher at scrape time; until New attaches one they
// read zero.
type gauges struct {
	b         atomic.Pointer[Batcher]
	lastWrite atomic.Int64 // Unix ns of the last successful write, or of attach

	// Guarded by the Batcher's mu.
	bufSince    time.Time // when the buffer's oldest event was added; zero if empty
	flightSince time.Time // the same for the batch being written
}

// registerGauges adds tickwire_collector_buffer_capacity,
// tickwire_collector_buffer_oldest_age_seconds and
// tickwire_collector_last_write_age_seconds to reg.
func (m *Metrics) registerGauges(reg prometheus.Registerer) error {
	const ns = "tickwire_collector_"
	g := &m.gauges
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: ns + "buffer_capacity", Help: "Events the buffer holds at most (COLLECTOR_BUFFER); beyond it the oldest are dropped.",
		}, g.capacity),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: ns + "buffer_oldest_age_seconds", Help: "How long the oldest event waiting to be written (buffered or in a write) has waited; 0 when none waits.",
		}, g.oldestAge),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: ns + "last_write_age_seconds", Help: "Seconds since a batch write last reached Redis (since start before the first).",
		}, g.lastWriteAge),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// attach makes the gauges read b; New calls it.
func (g *gauges) attach(b *Batcher) {
	g.lastWrite.Store(time.Now().UnixNano())
	g.b.Store(b)
}

// wrote records a successful write; its batch waits no more.
func (g *gauges) wrote() {
	g.lastWrite.Store(time.Now().UnixNano())
	if b := g.b.Load(); b != nil {
		b.mu.Lock()
		g.flightSince = time.Time{}
		b.mu.Unlock()
	}
}

func (g *gauges) capacity() float64 {
	if b := g.b.Load(); b != nil {
		return float64(b.cfg.Buffer)
	}
	return 0
}

func (g *gauges) lastWriteAge() float64 {
	ns := g.lastWrite.Load()
	if ns == 0 {
		return 0
	}
	return time.Since(time.Unix(0, ns)).Seconds()
}

// added notes that Add made the buffer n long. b.mu is held.
func (g *gauges) added(n int) {
	if n == 1 {
		g.bufSince = time.Now()
	}
}

// taken notes that take moved the buffer to a write. b.mu is held.
func (g *gauges) taken() {
	g.flightSince, g.bufSince = g.bufSince, time.Time{}
}

// putBack notes that a failed write put unwritten events back in front of
// the buffer, now n long. b.mu is held.
func (g *gauges) putBack(unwritten, n int) {
	switch {
	case unwritten > 0:
		g.bufSince = g.flightSince
	case n == 0:
		g.bufSince = time.Time{}
	}
	g.flightSince = time.Time{}
}

// oldestAge is how long the oldest event waiting (in the buffer, or in a
// write in flight) has waited: since it was added. Drops of the oldest
// events are not reflected, so after them it is an upper bound. Event
// times are not used: a replayed or piped-in event may carry any time.
func (g *gauges) oldestAge() float64 {
	b := g.b.Load()
	if b == nil {
		return 0
	}
	b.mu.Lock()
	since := g.bufSince
	if !g.flightSince.IsZero() && (since.IsZero() || g.flightSince.Before(since)) {
		since = g.flightSince
	}
	b.mu.Unlock()
	if since.IsZero() {
		return 0
	}
	return time.Since(since).Seconds()
}
