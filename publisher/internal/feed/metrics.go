package feed

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the feed's Prometheus series.
type Metrics struct {
	EventsRead   *prometheus.CounterVec // by shard
	BadEntries   prometheus.Counter
	ReadErrors   prometheus.Counter
	GroupsMade   prometheus.Counter // groups re-created after NOGROUP
	ReplicasReap prometheus.Counter
}

// NewMetrics registers the feed's series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		EventsRead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickwire_publisher_events_read_total", Help: "Events read from the feed streams.",
		}, []string{"shard"}),
		BadEntries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tickwire_publisher_bad_entries_total", Help: "Stream entries skipped because they do not follow the layout.",
		}),
		ReadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tickwire_publisher_read_errors_total", Help: "Failed XREADGROUP calls (Redis unreachable or erroring).",
		}),
		GroupsMade: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tickwire_publisher_groups_recreated_total", Help: "Consumer groups re-created after Redis lost them (NOGROUP).",
		}),
		ReplicasReap: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tickwire_publisher_replicas_reaped_total", Help: "Dead replicas whose groups this replica destroyed.",
		}),
	}
	reg.MustRegister(m.EventsRead, m.BadEntries, m.ReadErrors, m.GroupsMade, m.ReplicasReap)
	return m
}
