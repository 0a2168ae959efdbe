package streams

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/redistest"
)

// BenchmarkWriteSmall writes batches of 2 and 20 events over 10 symbols
// (what the collector writes per source tick at 200 and 2000 events/s with
// flush 0) and reports the commands Redis ran per event: history
// maintenance paced per period instead of per write shows there.
func BenchmarkWriteSmall(b *testing.B) {
	for _, n := range []int{2, 20} {
		b.Run(map[int]string{2: "batch=2", 20: "batch=20"}[n], func(b *testing.B) {
			f := fixture{srv: redistest.Start(b)}
			f.c = f.srv.Client()
			l := mustLayout(b, 1)
			w := NewWriter(f.c, l, WriterConfig{FeedLen: 100_000, HistoryLen: 1000, Retention: 10 * time.Minute})
			syms := []string{"AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "JPM", "V", "WMT"}
			calls0 := commandCalls(b, f, "")
			b.ResetTimer()
			for i := range b.N {
				evs := make([]Pending, n)
				for j := range evs {
					evs[j] = trade(b, syms[(i*n+j)%len(syms)], i*n+j)
				}
				if _, err := w.Write(context.Background(), evs); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(commandCalls(b, f, "")-calls0)/float64(b.N*n), "redis-calls/event")
		})
	}
}

// BenchmarkGroupReader measures events per second read from a feed by a
// GroupReader (XREADGROUP NOACK), and the time Redis spent in the reader's
// commands (XREADGROUP, XACK) per event.
func BenchmarkGroupReader(b *testing.B) {
	f := fixture{srv: redistest.Start(b)}
	f.c = f.srv.Client()
	l := mustLayout(b, 1)
	w := NewWriter(f.c, l, WriterConfig{FeedLen: 1_000_000, HistoryLen: 10})
	var got atomic.Int64
	r := NewGroupReader(f.srv.Client(), GroupReaderConfig{
		Layout: l, Shard: 0, Group: GroupName("bench"), Consumer: "bench",
		Handle: func(evs []event.Event) { got.Add(int64(len(evs))) },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for r.Ready() != nil {
		time.Sleep(time.Millisecond)
	}
	const batch = 100
	usec0 := readerUsec(b, f)
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		evs := make([]Pending, min(batch, b.N-i))
		for j := range evs {
			evs[j] = trade(b, "AAPL", i+j)
		}
		if _, err := w.Write(context.Background(), evs); err != nil {
			b.Fatal(err)
		}
	}
	for got.Load() < int64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(readerUsec(b, f)-usec0)*1000/float64(b.N), "redis-read-ns/event")
}

// readerUsec returns the µs Redis spent in XREADGROUP and XACK.
func readerUsec(b *testing.B, f fixture) int {
	b.Helper()
	info, err := f.c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	total := 0
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "cmdstat_xreadgroup:") && !strings.HasPrefix(line, "cmdstat_xack:") {
			continue
		}
		_, rest, _ := strings.Cut(line, ",usec=")
		n, err := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		if err != nil {
			b.Fatal(err)
		}
		total += n
	}
	return total
}
