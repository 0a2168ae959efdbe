package batch

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/redistest"
)

const (
	msgDown = "redis unreachable; buffering events and retrying"
	msgUp   = "redis reachable again"
)

func TestWritesEverything(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		shards   int
	}{
		{"interval", 20 * time.Millisecond, 1},
		{"interval sharded", 20 * time.Millisecond, 3},
		{"as soon as possible", 0, 1},
		{"as soon as possible sharded", 0, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 3000
			f := newFixture(t, tt.shards, Config{FlushInterval: tt.interval, MaxBatch: 500, Buffer: 10_000})
			stop := f.run(t)
			f.add(events(t, 0, n))
			f.waitWritten(t, n)
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			f.wantStored(t, 0, n)
			if got := testutil.ToFloat64(f.m.Received); got != n {
				t.Errorf("received %v, want %d", got, n)
			}
			if got := testutil.ToFloat64(f.m.Dropped) + testutil.ToFloat64(f.m.WriteErrors); got != 0 {
				t.Errorf("drops + write errors = %v, want 0", got)
			}
			if f.b.Ready() != nil {
				t.Errorf("Ready() = %v after successful writes", f.b.Ready())
			}
		})
	}
}

func TestMaxBatchWakesEarly(t *testing.T) {
	f := newFixture(t, 1, Config{FlushInterval: time.Hour, MaxBatch: 100, Buffer: 1000})
	f.run(t)
	f.add(events(t, 0, 100))
	f.waitWritten(t, 100) // a full batch does not wait for the hour
	f.add(events(t, 100, 99))
	if n := f.b.Len(); n != 99 {
		t.Errorf("%d events waiting, want 99", n)
	}
}

func TestRidesOutRedisOutage(t *testing.T) {
	f := newFixture(t, 2, Config{FlushInterval: 10 * time.Millisecond, MaxBatch: 100, Buffer: 10_000},
		redistest.Options{AppendOnly: true}) // a restart keeps what was written
	stop := f.run(t)
	f.add(events(t, 0, 100))
	f.waitWritten(t, 100)

	f.srv.Stop()
	f.add(events(t, 100, 200))
	poll.Until(t, 20*time.Second, func() error {
		if testutil.ToFloat64(f.m.WriteErrors) < 3 || f.b.Ready() == nil {
			return fmt.Errorf("%v write errors, ready %v: want several retries, not ready", testutil.ToFloat64(f.m.WriteErrors), f.b.Ready())
		}
		return nil
	})
	if got := testutil.ToFloat64(f.m.Written); got != 100 {
		t.Fatalf("%v written while Redis was down", got)
	}

	f.srv.Restart()
	f.waitWritten(t, 300)
	poll.Until(t, 5*time.Second, f.b.Ready)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	f.wantStored(t, 0, 300)
	if down, up := logCount(f.logs, msgDown), logCount(f.logs, msgUp); down != 1 || up != 1 {
		t.Errorf("outage logged %d times down and %d up, want once each:\n%s", down, up, f.logs)
	}
}

func TestOverflowDropsOldest(t *testing.T) {
	f := newFixture(t, 1, Config{FlushInterval: time.Hour, MaxBatch: 10, Buffer: 10})
	f.add(events(t, 0, 25)) // Run not started: nothing is written
	if got := testutil.ToFloat64(f.m.Dropped); got != 15 {
		t.Errorf("dropped %v, want 15", got)
	}
	if n := f.b.Len(); n != 10 {
		t.Errorf("%d events buffered, want 10", n)
	}
	if err := f.run(t)(); err != nil { // start and stop at once: the final flush writes
		t.Fatalf("Run: %v", err)
	}
	f.wantStored(t, 15, 10)
	if n := droppedLogged(f.logs); n != 15 {
		t.Errorf("logged %d drops, want 15:\n%s", n, f.logs)
	}
}

func TestOverflowWhileRedisDown(t *testing.T) {
	f := newFixture(t, 1, Config{FlushInterval: 5 * time.Millisecond, MaxBatch: 5, Buffer: 10})
	stop := f.run(t)
	f.srv.Stop()
	poll.Until(t, 10*time.Second, func() error {
		if f.b.Ready() == nil {
			return errors.New("still ready")
		}
		return nil
	})
	f.add(events(t, 0, 25))
	poll.Until(t, 10*time.Second, func() error {
		if got := testutil.ToFloat64(f.m.Dropped); got != 15 {
			return fmt.Errorf("dropped %v, want 15", got)
		}
		return nil
	})
	f.srv.Restart()
	f.waitWritten(t, 10)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	f.wantStored(t, 15, 10)
	if n := droppedLogged(f.logs); n != 15 {
		t.Errorf("logged %d drops, want 15:\n%s", n, f.logs)
	}
}

func TestFinalFlushOnCancel(t *testing.T) {
	f := newFixture(t, 1, Config{FlushInterval: time.Hour, MaxBatch: 1000, Buffer: 1000})
	stop := f.run(t)
	f.add(events(t, 0, 100))
	if got := testutil.ToFloat64(f.m.Written); got != 0 {
		t.Fatalf("%v written before the interval or a full batch", got)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	f.wantStored(t, 0, 100)
}

func TestFinalFlushGivesUp(t *testing.T) {
	f := newFixture(t, 1, Config{FlushInterval: time.Hour, MaxBatch: 1000, Buffer: 1000, FinalFlush: 300 * time.Millisecond})
	stop := f.run(t)
	f.srv.Stop()
	f.add(events(t, 0, 10))
	start := time.Now()
	err := stop()
	if err == nil || !strings.Contains(err.Error(), "10 events not written") {
		t.Errorf("Run = %v, want 10 events not written", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("final flush took %v", d)
	}
}

func TestReadyFollowsRedisWhileIdle(t *testing.T) {
	f := newFixture(t, 1, Config{FlushInterval: 10 * time.Millisecond, MaxBatch: 10, Buffer: 10})
	if !errors.Is(f.b.Ready(), ErrNoWriteYet) {
		t.Fatalf("Ready() = %v before Run, want ErrNoWriteYet", f.b.Ready())
	}
	f.run(t)
	poll.Until(t, 10*time.Second, f.b.Ready)
	f.srv.Stop()
	poll.Until(t, 10*time.Second, func() error {
		if f.b.Ready() == nil {
			return errors.New("still ready with Redis stopped")
		}
		return nil
	})
	f.srv.Restart()
	poll.Until(t, 10*time.Second, f.b.Ready)
}

func TestNewRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no max batch", Config{Buffer: 10}},
		{"buffer below max batch", Config{MaxBatch: 10, Buffer: 5}},
		{"negative interval", Config{MaxBatch: 1, Buffer: 1, FlushInterval: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(nil, tt.cfg, nil, nil); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}
