package server

import (
	"strings"
	"testing"

	"github.com/tickwire/tickwire/testkit/metricsdoc"
)

// A freshly started replica, before any client or event, exposes every
// publisher family of docs/metrics.md, and no family the page does not
// document; labelled families have their known labels at zero.
func TestEveryMetricFamilyFromStart(t *testing.T) {
	e := newEnv(t, 2)
	r := e.startReplica("pub-fresh", nil)
	_, body := httpStatus(t, r.http.URL+"/metrics", nil)
	metricsdoc.Check(t, body, "../../../docs/metrics.md", "tickwire_publisher_", 15)
	for _, series := range []string{
		`tickwire_publisher_group_lag{shard="1"} 0`,
		`tickwire_publisher_feed_age_seconds{shard="0"} 0`,
		`tickwire_publisher_stalled 0`,
		`tickwire_publisher_connections_refused_total{reason="token_expired"} 0`,
		`tickwire_publisher_connections_refused_total{reason="draining"} 0`,
		`tickwire_publisher_closes_total{reason="slow_consumer"} 0`,
		`tickwire_publisher_error_frames_total{code="internal"} 0`,
		`tickwire_publisher_writer_stalls_total 0`,
	} {
		if !strings.Contains(body, series+"\n") {
			t.Errorf("/metrics lacks %s", series)
		}
	}
}
