package batch

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickwire/tickwire/shared/poll"
)

// gaugeValue reads one of the batcher's gauges from its registry.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s", name)
	return 0
}

// The operator's gauges of the collector: while Redis is down, the buffer
// fills, its oldest event ages and the last write recedes; once Redis is
// back, all three return to (about) zero.
func TestGaugesFollowAnOutage(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tickwire_collector_buffer_events", "tickwire_collector_buffer_capacity",
		"tickwire_collector_buffer_oldest_age_seconds", "tickwire_collector_last_write_age_seconds"} {
		if v := gaugeValue(t, reg, name); v != 0 {
			t.Errorf("%s = %v before a batcher, want 0", name, v)
		}
	}
	f := newFixture(t, 1, Config{FlushInterval: 10 * time.Millisecond, MaxBatch: 100, Buffer: 1000})
	f.b.m, f.m = m, m // the fixture's batcher, reporting on reg
	m.gauges.attach(f.b)
	f.run(t)
	if v := gaugeValue(t, reg, "tickwire_collector_buffer_capacity"); v != 1000 {
		t.Errorf("capacity = %v, want 1000", v)
	}
	for _, e := range events(t, 0, 10) {
		f.b.Add(e)
	}
	f.waitWritten(t, 10)
	if v := gaugeValue(t, reg, "tickwire_collector_buffer_oldest_age_seconds"); v != 0 {
		t.Errorf("oldest age = %v with nothing waiting, want 0", v)
	}

	f.srv.Stop()
	for _, e := range events(t, 10, 10) {
		f.b.Add(e)
	}
	poll.Until(t, 20*time.Second, func() error {
		age := gaugeValue(t, reg, "tickwire_collector_buffer_oldest_age_seconds")
		last := gaugeValue(t, reg, "tickwire_collector_last_write_age_seconds")
		if age < 0.5 || last < 0.5 {
			return fmt.Errorf("oldest age %v, last write age %v; want both growing during the outage", age, last)
		}
		return nil
	})
	lastDuring := gaugeValue(t, reg, "tickwire_collector_last_write_age_seconds")

	f.srv.Restart()
	f.waitWritten(t, 20)
	next := 20
	poll.Until(t, 20*time.Second, func() error {
		age := gaugeValue(t, reg, "tickwire_collector_buffer_oldest_age_seconds")
		last := gaugeValue(t, reg, "tickwire_collector_last_write_age_seconds")
		if age < 0.5 && last < lastDuring {
			return nil
		}
		f.b.Add(events(t, next, 1)[0]) // keep writes coming
		next++
		return fmt.Errorf("oldest age %v, last write age %v (%v in the outage) after the outage", age, last, lastDuring)
	})
	if v := testutil.ToFloat64(m.Dropped); v != 0 {
		t.Errorf("dropped %v", v)
	}
}
