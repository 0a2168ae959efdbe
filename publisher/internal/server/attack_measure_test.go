package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/streams"
)

// latencies are a well-behaved client's event latencies (ts -> received).
type latencies struct {
	mu sync.Mutex
	ms []int64
}

func (l *latencies) take() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.ms
	l.ms = nil
	return out
}

// readLatencies reads c's events frames until the connection ends and
// records, for each event, now minus its ts in milliseconds.
func readLatencies(c *client, l *latencies) {
	_ = c.ws.SetReadDeadline(time.Time{})
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		now := time.Now().UnixMilli()
		var f frame
		if json.Unmarshal(data, &f) != nil || f.Type != "events" {
			continue
		}
		l.mu.Lock()
		for _, ev := range f.Events {
			l.ms = append(l.ms, now-ev.TS)
		}
		l.mu.Unlock()
	}
}

func percentileMS(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return -1
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// rssBytes is this process's resident set (the replica runs in it).
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// TestMeasureSnapshotAttack is the measurement behind BENCHMARKS.md
// (issue 8, item 2): a well-behaved user's event latency p99 (ts ->
// received) on 10 trade channels fed 500 events/s, with and without a
// second user whose 10 connections loop subscribe/unsubscribe of trade:*
// over 20 000 symbols of history, in alternating phases. It reports, per
// phase, p50/p99/max, Redis CPU and the process's RSS. It asserts
// nothing about timings. Run with
// TICKWIRE_MEASURE=1 go test -run TestMeasureSnapshotAttack -v.
func TestMeasureSnapshotAttack(t *testing.T) {
	if os.Getenv("TICKWIRE_MEASURE") == "" {
		t.Skip("measurement: set TICKWIRE_MEASURE=1")
	}
	const nsym, phase = 20000, 6 * time.Second
	e := newEnv(t, 1)
	e.fillHistory(symbols(nsym), 1, 50)
	r := e.startReplica("pub-1", func(c *Config) { c.LogLevel = "warn" })

	chans := symbols(10)
	good := dialAuthed(t, r, "alice")
	good.Subscribe(map[string]any{"channels": chans, "snapshot": false})
	var lat latencies
	var readers sync.WaitGroup
	readers.Add(1)
	go func() { defer readers.Done(); readLatencies(good, &lat) }()

	stopFeed := make(chan struct{})
	var feed sync.WaitGroup
	feed.Add(1)
	go func() { // 10 events every 20 ms, one per channel, ts = now
		defer feed.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		data, _ := json.Marshal(event.Trade{Price: 1, Size: 1})
		for {
			select {
			case <-stopFeed:
				return
			case <-tick.C:
			}
			evs := make([]streams.Pending, len(chans))
			for i, ch := range chans {
				c, _ := event.ParseChannel(ch)
				evs[i] = streams.Pending{Event: event.Event{Channel: c, TS: time.Now().UnixMilli(), Data: data}}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := e.writer.Write(ctx, evs)
			cancel()
			if err != nil {
				t.Errorf("write events: %v", err)
				return
			}
		}
	}()
	t.Cleanup(func() { close(stopFeed); feed.Wait(); _ = good.ws.Close(); readers.Wait() })

	time.Sleep(time.Second) // warm-up: the first events, the feed reader's first reads
	lat.take()
	rss0 := rssBytes()
	for i, attacked := range []bool{false, true, false, true} {
		var stop chan struct{}
		var wg *sync.WaitGroup
		if attacked {
			stop = make(chan struct{})
			wg = loopSnapshots(t, r, fmt.Sprintf("greedy-%d", i), "trade:*", 10, stop)
		}
		cpu0, xr0, start := redisCPU(t, e.rdb), commandCalls(t, e.rdb, "xrevrange"), time.Now()
		peak := rssBytes()
		for time.Since(start) < phase {
			time.Sleep(100 * time.Millisecond) // sampling RSS, not waiting for a condition
			peak = max(peak, rssBytes())
		}
		got := lat.take()
		elapsed := time.Since(start)
		cpu, xr := redisCPU(t, e.rdb)-cpu0, commandCalls(t, e.rdb, "xrevrange")-xr0
		if attacked {
			close(stop)
			wg.Wait()
		}
		slices.Sort(got)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		t.Logf("attacker %-5v: %5d events, latency p50 %d ms, p99 %d ms, max %d ms; Redis %.2f core, %d XREVRANGE; RSS %d MiB (peak %d, +%d over the start); heap in use %d MiB",
			attacked, len(got), percentileMS(got, .5), percentileMS(got, .99), percentileMS(got, 1),
			float64(cpu)/float64(elapsed), xr, rssBytes()>>20, peak>>20, (peak-rss0)>>20, ms.HeapInuse>>20)
		time.Sleep(500 * time.Millisecond) // let the attacker's connections go
		lat.take()
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("load average %s", strings.Join(strings.Fields(string(load))[:3], " "))
}
