package derive

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of a Stage; safe for concurrent use.
type metrics struct {
	derived    *prometheus.CounterVec // by type: bar, new_high, new_low, surge
	suppressed *prometheus.CounterVec // by signal
	late       prometheus.Counter
	skipped    prometheus.Counter
	symbols    prometheus.Gauge   // known now
	forgotten  prometheus.Counter // dropped after Config.Idle
	refused    prometheus.Counter // events of symbols beyond Config.MaxSymbols
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns = "tickwire_collector_"
	m := &metrics{
		derived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "derived_events_total", Help: "Events derived from trades, by type: bar, new_high, new_low, surge.",
		}, []string{"type"}),
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ns + "signals_suppressed_total", Help: "Signals not emitted because one of the same type and symbol was emitted less than the cooldown before.",
		}, []string{"signal"}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Name: ns + "late_trades_total", Help: "Trades left out of bars because their second's bar was already emitted.",
		}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: ns + "trades_not_derived_total", Help: "Trade events whose data has no usable price or size, so no bar or signal uses them.",
		}),
		symbols: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: ns + "symbols", Help: "Symbols whose state (bars, signals) the collector keeps; at most COLLECTOR_MAX_SYMBOLS.",
		}),
		forgotten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: ns + "symbols_forgotten_total", Help: "Symbols whose state was dropped after a quiet period without events.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: ns + "symbols_refused_total", Help: "Events refused because their symbol was new while COLLECTOR_MAX_SYMBOLS symbols were known.",
		}),
	}
	// Every series from the start, at zero: a dashboard or an alert sees
	// "none yet" rather than "no such metric".
	m.derived.WithLabelValues("bar")
	for _, name := range signalNames {
		m.derived.WithLabelValues(name)
		m.suppressed.WithLabelValues(name)
	}
	for _, c := range []prometheus.Collector{m.derived, m.suppressed, m.late, m.skipped, m.symbols, m.forgotten, m.refused} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register derive metrics: %w", err)
		}
	}
	return m, nil
}
