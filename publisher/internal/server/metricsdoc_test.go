package server

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// documentedFamilies returns the metric names of docs/metrics.md's tables
// that start with prefix.
func documentedFamilies(t *testing.T, path, prefix string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if name, ok := strings.CutPrefix(line, "| `"+prefix); ok {
			name, _, _ = strings.Cut(name, "`")
			out = append(out, prefix+name)
		}
	}
	slices.Sort(out)
	return out
}

// scrapedFamilies returns the families with prefix in a /metrics answer.
func scrapedFamilies(body, prefix string) []string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "+prefix); ok {
			name, _, _ := strings.Cut(rest, " ")
			out = append(out, prefix+name)
		}
	}
	slices.Sort(out)
	return out
}

// A freshly started replica, before any client or event, exposes every
// publisher family of docs/metrics.md, and no family the page does not
// document; labelled families have their known labels at zero.
func TestEveryMetricFamilyFromStart(t *testing.T) {
	e := newEnv(t, 2)
	r := e.startReplica("pub-fresh", nil)
	_, body := httpStatus(t, r.http.URL+"/metrics", nil)
	doc := documentedFamilies(t, "../../../docs/metrics.md", "tickwire_publisher_")
	got := scrapedFamilies(body, "tickwire_publisher_")
	if len(doc) < 15 {
		t.Fatalf("docs/metrics.md lists %d publisher families; the table was not read", len(doc))
	}
	for _, name := range doc {
		if !slices.Contains(got, name) {
			t.Errorf("%s is documented but not exposed at start", name)
		}
	}
	for _, name := range got {
		if !slices.Contains(doc, name) {
			t.Errorf("%s is exposed but not in docs/metrics.md", name)
		}
	}
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
