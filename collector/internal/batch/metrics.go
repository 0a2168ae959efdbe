package batch

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the batcher's Prometheus metrics. Their methods are safe for
// concurrent use.
type Metrics struct {
	Received    prometheus.Counter
	Written     prometheus.Counter
	Dropped     prometheus.Counter
	WriteErrors prometheus.Counter
	// HistorySkipped counts channels whose history refused a write's
	// events (a key of another type); the events are in the feed.
	HistorySkipped prometheus.Counter
	Buffered       prometheus.Gauge
	WriteDuration  prometheus.Histogram
	BatchSize      prometheus.Histogram
	gauges         gauges // read at scrape time (gauges.go)
}

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	const ns = "tickwire_collector_"
	m := &Metrics{
		Received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: ns + "events_received_total", Help: "Events handed to the batcher by the source.",
		}),
		Written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: ns + "events_written_total", Help: "Events written to Redis.",
		}),
		Dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: ns + "events_dropped_total", Help: "Oldest events dropped because the buffer was full.",
		}),
		WriteErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: ns + "write_errors_total", Help: "Batch writes to Redis that failed, in whole or in part.",
		}),
		HistorySkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: ns + "history_skipped_total", Help: "Channel histories that refused a write's events (key of another type); the events are in the feed only.",
		}),
		Buffered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: ns + "buffer_events", Help: "Events waiting in the buffer to be written.",
		}),
		WriteDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: ns + "write_duration_seconds", Help: "Duration of one batch write to Redis.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms to 4 s
		}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: ns + "batch_size_events", Help: "Events in one batch write.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10), // 1 to 262144
		}),
	}
	for _, c := range []prometheus.Collector{
		m.Received, m.Written, m.Dropped, m.WriteErrors, m.HistorySkipped, m.Buffered, m.WriteDuration, m.BatchSize,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register batch metrics: %w", err)
		}
	}
	if err := m.registerGauges(reg); err != nil {
		return nil, fmt.Errorf("register batch metrics: %w", err)
	}
	return m, nil
}
