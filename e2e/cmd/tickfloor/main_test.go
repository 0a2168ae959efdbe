package main

import (
	"context"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tickwire/tickwire/shared/redistest"
)

func TestMain(m *testing.M) {
	if readerChild() { // the child of writeFloor is this test binary
		return
	}
	goleak.VerifyTestMain(m)
}

func short(o options) options {
	o.tick, o.warmup, o.duration = 5*time.Millisecond, 20*time.Millisecond, 200*time.Millisecond
	return o
}

// Both ways of writing reach a reader child and measure some CPU; a
// reader that cannot connect is an error, not a hang.
func TestWriteFloor(t *testing.T) {
	for _, serial := range []bool{false, true} {
		o := short(options{conns: 5, bytes: 300, events: 2, serial: serial})
		if err := writeFloor(context.Background(), o); err != nil {
			t.Fatalf("serial=%v: %v", serial, err)
		}
	}
}

func TestRedisFloor(t *testing.T) {
	srv := redistest.Start(t)
	o := short(options{redis: "redis://" + srv.Addr() + "/0", events: 3})
	if err := redisFloor(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := redisFloor(ctx, short(options{redis: "redis://127.0.0.1:1/0", events: 1})); err == nil {
		t.Error("an unreachable Redis was not an error")
	}
}

func TestSelfCPU(t *testing.T) {
	before, err := selfCPU()
	if err != nil {
		t.Fatal(err)
	}
	for after := before; after <= before; {
		if after, err = selfCPU(); err != nil {
			t.Fatal(err)
		}
		_ = os.Getpid() // spin through a syscall
	}
}

func TestLatencies(t *testing.T) {
	var l latencies
	if got := l.String(); got != "no frames measured" {
		t.Errorf("empty = %q", got)
	}
	for i := 1; i <= 100; i++ {
		l.add(time.Duration(i) * 100 * time.Microsecond) // 0.1 .. 10 ms
	}
	l.add(-time.Millisecond) // a clock step back counts as 0
	if p50, p99 := l.quantile(.5), l.quantile(.99); p50 != 5010*time.Microsecond || p99 != 9910*time.Microsecond {
		t.Errorf("p50 %v p99 %v, want 5.01ms 9.91ms", p50, p99)
	}
	if l.max != 10*time.Millisecond || l.n != 101 {
		t.Errorf("max %v n %d", l.max, l.n)
	}
}

func TestWriteFloorFrameTooSmall(t *testing.T) {
	if err := writeFloor(context.Background(), short(options{conns: 1, bytes: 4, events: 1})); err == nil {
		t.Error("a frame too small for its time was accepted")
	}
}
