package wsconn

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the connections' Prometheus series.
type Metrics struct {
	Connections prometheus.Gauge
	FramesIn    prometheus.Counter
	Delivered   prometheus.Counter
	RateLimited prometheus.Counter
	Errors      *prometheus.CounterVec // error frames sent, by code
	Closes      *prometheus.CounterVec // close frames sent, by reason
	Lag         prometheus.Histogram   // event time to write, newest event of a frame
	Stalls      prometheus.Counter     // writers closed for no progress (observe.go)
	Panics      prometheus.Counter     // connections closed because their handling panicked (aside)
}

// NewMetrics registers the connection series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tickwire_publisher_connections", Help: "Open WebSocket connections.",
		}),
		FramesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tickwire_publisher_client_frames_total", Help: "Frames received from clients.",
		}),
		Delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tickwire_publisher_events_delivered_total", Help: "Events written to clients (one per client per event).",
		}),
		RateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tickwire_publisher_frames_rate_limited_total", Help: "Client frames dropped by the rate limit.",
		}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickwire_publisher_error_frames_total", Help: "Error frames sent to clients, by code.",
		}, []string{"code"}),
		Closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickwire_publisher_closes_total", Help: "Connections closed by the server, by reason (slow_consumer counts 4008).",
		}, []string{"reason"}),
		Lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tickwire_publisher_delivery_lag_seconds",
			Help:    "Event time to the write of its frame to the client, for the newest event of each frame.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
	}
	reg.MustRegister(m.Connections, m.FramesIn, m.Delivered, m.RateLimited, m.Errors, m.Closes, m.Lag)
	initMetrics(m, reg)
	return m
}

// observeLag records the lag of a frame written at now whose newest event
// has the time tsMs.
func (m *Metrics) observeLag(tsMs int64, now time.Time) {
	if tsMs > 0 {
		m.Lag.Observe(max(0, now.Sub(time.UnixMilli(tsMs)).Seconds()))
	}
}
