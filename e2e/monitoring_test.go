package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Metric families that deploy/monitoring may use: those of docs/design.md's
// fixed names and those the processes export today. A name outside this
// list is a typo, or a new family to add here and to the docs.
var knownFamilies = []string{
	"up", "ALERTS",
	"tickwire_build_info",
	"tickwire_publisher_group_lag", "tickwire_publisher_feed_age_seconds",
	"tickwire_publisher_stalled", "tickwire_publisher_ready",
	"tickwire_publisher_closes_total", "tickwire_publisher_connections", "tickwire_publisher_connection_panics_total",
	"tickwire_publisher_events_delivered_total", "tickwire_publisher_connections_refused_total",
	"tickwire_publisher_delivery_lag_seconds_bucket",
	"tickwire_collector_buffer_events", "tickwire_collector_buffer_capacity",
	"tickwire_collector_buffer_oldest_age_seconds", "tickwire_collector_last_write_age_seconds",
	"tickwire_collector_events_written_total", "tickwire_collector_events_dropped_total",
	"tickwire_collector_active",
}

var metricName = regexp.MustCompile(`\b(tickwire_[a-z_]+|up|ALERTS)\b`)

// dashboardExprs returns every PromQL expression of the Grafana dashboard,
// with Grafana's variables replaced by what Prometheus would see.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../deploy/monitoring/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Annotations struct {
			List []struct {
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	vars := strings.NewReplacer("$__rate_interval", "1m", "$instance", ".*")
	var exprs []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, vars.Replace(tg.Expr))
		}
	}
	for _, a := range d.Annotations.List {
		exprs = append(exprs, vars.Replace(a.Expr))
	}
	return exprs
}

// TestDashboardQueries: every query of the dashboard uses known families,
// the panels the operators asked for are there, and (with promtool) every
// query parses as PromQL.
func TestDashboardQueries(t *testing.T) {
	exprs := dashboardExprs(t)
	all := strings.Join(exprs, "\n")
	for _, m := range metricName.FindAllString(all, -1) {
		if !slices.Contains(knownFamilies, m) {
			t.Errorf("dashboard uses unknown metric %s", m)
		}
	}
	for _, want := range []string{
		"tickwire_publisher_events_delivered_total", "tickwire_publisher_connections",
		"tickwire_publisher_group_lag", "tickwire_publisher_feed_age_seconds",
		"histogram_quantile(0.99, sum by (le) (rate(tickwire_publisher_delivery_lag_seconds_bucket",
		"sum by (reason) (rate(tickwire_publisher_closes_total",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("dashboard has no query with %q", want)
		}
	}
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Skip("promtool not installed (make test installs it as root): PromQL syntax not checked")
	}
	// promtool parses rule files: make each query a recording rule.
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range exprs {
		q, _ := json.Marshal(e) // a JSON string is a YAML string
		b.WriteString("      - record: dashboard:q" + string(rune('a'+i%26)) + "\n        expr: " + string(q) + "\n")
	}
	f := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("promtool", "check", "rules", f).CombinedOutput(); err != nil {
		t.Errorf("dashboard queries do not parse: %v\n%s", err, out)
	}
}

// TestAlertRules runs promtool on the alert rules and their unit tests, and
// checks the Prometheus configuration that loads them.
func TestAlertRules(t *testing.T) {
	raw, err := os.ReadFile("../deploy/monitoring/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range metricName.FindAllString(string(raw), -1) {
		if !slices.Contains(knownFamilies, m) {
			t.Errorf("alerts.yml uses unknown metric %s", m)
		}
	}
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Skip("promtool not installed (make test installs it as root)")
	}
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
		{"check", "config", "../prometheus.yml"},
	} {
		cmd := exec.Command("promtool", args...)
		cmd.Dir = "../deploy/monitoring"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
