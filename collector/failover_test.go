package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/redistest"
)

// metric returns the value of an unlabelled metric served on addr.
func metric(addr, name string) (float64, error) {
	web := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := web.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("%s not in /metrics of %s", name, addr)
}

// collectorRun is one collector run in-process by runConfig.
type collectorRun struct {
	addr   string
	cancel context.CancelFunc
	done   chan error
}

func startCollector(t *testing.T, cfg Config, id string) *collectorRun {
	t.Helper()
	cfg.ID, cfg.Addr = id, freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	c := &collectorRun{addr: cfg.Addr, cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- runConfig(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg) }()
	t.Cleanup(func() { c.stop(t) })
	return c
}

// stop ends the collector and waits for run to return; again is a no-op.
func (c *collectorRun) stop(t *testing.T) {
	t.Helper()
	if c.done == nil {
		return
	}
	c.cancel()
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("run %s: %v", c.addr, err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("run %s did not stop", c.addr)
	}
	c.done = nil
}

func (c *collectorRun) active() (float64, error) { return metric(c.addr, "tickwire_collector_active") }

// TestLeaseStandbyTakesOver runs two collectors on one Redis: one writes,
// the other stands by and takes over once the first stops.
func TestLeaseStandbyTakesOver(t *testing.T) {
	srv := redistest.Start(t)
	cfg := loadConfig(t, map[string]string{
		"REDIS_URL": srv.URL(), "STREAM_PREFIX": "lease", "LOG_LEVEL": "warn",
		"COLLECTOR_RATE": "200", "COLLECTOR_FLUSH_INTERVAL": "20ms", "COLLECTOR_LEASE_TTL": "600ms",
	})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rdb := srv.Client()
	feedLen := func() int64 { return rdb.XLen(t.Context(), "lease:{0}:feed").Val() }
	cols := []*collectorRun{startCollector(t, cfg, "one"), startCollector(t, cfg, "two")}

	// Exactly one is active, and the other discards.
	var act, standby *collectorRun
	poll.Until(t, 10*time.Second, func() error {
		act, standby = nil, nil
		for _, c := range cols {
			v, err := c.active()
			switch {
			case err != nil:
				return err
			case v == 1 && act != nil:
				return errors.New("two collectors active")
			case v == 1:
				act = c
			default:
				standby = c
			}
		}
		if act == nil || standby == nil {
			return errors.New("want one active and one standby")
		}
		if n, err := metric(standby.addr, "tickwire_collector_standby_discarded_total"); err != nil || n == 0 {
			return fmt.Errorf("standby discarded %v events (%v)", n, err)
		}
		return nil
	})
	if n, err := metric(act.addr, "tickwire_collector_standby_discarded_total"); err != nil || n != 0 {
		t.Errorf("active collector discarded %v events (%v)", n, err)
	}
	if n, err := metric(standby.addr, "tickwire_collector_events_written_total"); err != nil || n != 0 {
		t.Errorf("standby counted %v discarded events as written (%v)", n, err)
	}
	holder, err := rdb.Get(t.Context(), "lease:collector:leader").Result()
	if err != nil {
		t.Fatal(err)
	}
	before := feedLen()
	poll.Until(t, 10*time.Second, func() error {
		if n := feedLen(); n <= before+50 {
			return fmt.Errorf("feed has %d entries, had %d", n, before)
		}
		return nil
	})

	// Stopping the active one releases the lease; the standby takes over.
	act.stop(t)
	if h := rdb.Get(t.Context(), "lease:collector:leader").Val(); h == holder {
		t.Errorf("lease still held by %q after it stopped", h)
	}
	poll.Until(t, 5*time.Second, func() error {
		if v, err := standby.active(); err != nil || v != 1 {
			return fmt.Errorf("standby active = %v (%v)", v, err)
		}
		return nil
	})
	before = feedLen()
	poll.Until(t, 10*time.Second, func() error {
		if n := feedLen(); n <= before+50 {
			return fmt.Errorf("feed has %d entries after takeover, had %d", n, before)
		}
		return nil
	})
}
