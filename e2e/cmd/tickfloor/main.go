// Command tickfloor measures what this machine charges for the two costs
// tickwire cannot avoid at light load, with none of tickwire's code in the
// way, so that its figures can be read against a floor:
//
//   - -mode write: every tick, one frame written to each of -conns loopback
//     TCP connections, by a goroutine per connection woken for it (as the
//     publisher's writers are), or by one goroutine in turn (-serial). The
//     reader is a child process, as a load tool would be. Reported: the
//     writing process's CPU per frame, and per delivery at -events events
//     per frame.
//   - -mode redis: every tick, one Redis round trip that adds -events
//     entries to a stream (a pipelined XADD per event, as one write of the
//     collector is one round trip). Reported: CPU per tick and per event.
//
// CPU is the process's user+system time from /proc/self/stat, so kernel
// work on the process's behalf (loopback TCP, the wake-ups of a thread) is
// counted, as it is for tickwire's own processes.
//
//	tickfloor -mode write -conns 100 -tick 10ms -bytes 300 -events 2
//	tickfloor -mode redis -redis redis://127.0.0.1:6379/0 -tick 10ms -events 2
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"
)

type options struct {
	mode     string
	redis    string
	conns    int
	tick     time.Duration
	bytes    int
	events   int
	serial   bool
	duration time.Duration
	warmup   time.Duration
}

func main() {
	if readerChild() {
		return
	}
	var o options
	flag.StringVar(&o.mode, "mode", "write", "write | redis")
	flag.StringVar(&o.redis, "redis", "redis://127.0.0.1:6379/0", "Redis URL (-mode redis)")
	flag.IntVar(&o.conns, "conns", 100, "connections written to every tick (-mode write)")
	flag.DurationVar(&o.tick, "tick", 10*time.Millisecond, "time between ticks")
	flag.IntVar(&o.bytes, "bytes", 300, "bytes of each frame (-mode write)")
	flag.IntVar(&o.events, "events", 2, "events per frame (-mode write) or per round trip (-mode redis)")
	flag.BoolVar(&o.serial, "serial", false, "one goroutine writes every connection in turn (-mode write)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long to measure")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "how long to run before measuring")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch {
	case o.mode == "write":
		err = writeFloor(ctx, o)
	case o.mode == "redis":
		err = redisFloor(ctx, o)
	default:
		err = fmt.Errorf("-mode %q: want write or redis", o.mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tickfloor:", err)
		os.Exit(1)
	}
}

// ticks calls f every o.tick for o.warmup, then measures the process's
// CPU over o.duration of ticks; it returns the CPU seconds and the ticks
// measured. Each of measuring, if any, is called when the measurement
// starts.
func ticks(ctx context.Context, o options, f func() error, measuring ...func() error) (cpu float64, n int, err error) {
	t := time.NewTicker(o.tick)
	defer t.Stop()
	warm := time.Now().Add(o.warmup)
	var start float64
	var end time.Time
	for {
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-t.C:
		}
		if err := f(); err != nil {
			return 0, 0, err
		}
		switch now := time.Now(); {
		case end.IsZero() && now.After(warm):
			for _, m := range measuring {
				if err := m(); err != nil {
					return 0, 0, err
				}
			}
			if start, err = selfCPU(); err != nil {
				return 0, 0, err
			}
			end = now.Add(o.duration)
		case !end.IsZero() && now.After(end):
			c, err := selfCPU()
			return c - start, n + 1, err
		case !end.IsZero():
			n++
		}
	}
}
