package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/testkit/metricsdoc"
)

// A freshly started collector exposes every collector family of
// docs/metrics.md, and none the page does not document. The replay source
// is used because it has the one family of its own (bad input lines).
func TestEveryMetricFamilyFromStart(t *testing.T) {
	srv := redistest.Start(t)
	addr := freeAddr(t)
	loadConfig(t, map[string]string{
		"REDIS_URL": srv.URL(), "STREAM_PREFIX": "fam", "LOG_LEVEL": "warn", "COLLECTOR_ADDR": addr,
		"COLLECTOR_SOURCE": "replay", "COLLECTOR_REPLAY_FILE": "internal/source/testdata/replay.csv",
		"COLLECTOR_REPLAY_LOOP": "true",
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	web := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var body string
	poll.Until(t, 10*time.Second, func() error {
		resp, err := web.Get("http://" + addr + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/metrics %d", resp.StatusCode)
		}
		body = string(b)
		return err
	})
	metricsdoc.Check(t, body, "../docs/metrics.md", "tickwire_collector_", 10)
	for _, series := range []string{
		`tickwire_collector_derived_events_total{type="surge"}`,
		`tickwire_collector_signals_suppressed_total{signal="new_low"}`,
		`tickwire_collector_buffer_capacity 100000`,
	} {
		if !strings.Contains(body, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
}
