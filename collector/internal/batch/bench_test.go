package batch

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/streams"
)

// BenchmarkWrite measures events per second from Add into Redis through a
// real streams.Writer, with the default stream sizes. The producer holds
// back at half the buffer, as the stdin source does, so nothing is dropped.
func BenchmarkWrite(b *testing.B) {
	tests := []struct {
		name     string
		interval time.Duration
		shards   int
	}{
		{"asap", 0, 1},
		{"interval=500ms", 500 * time.Millisecond, 1},
		{"asap/shards=4", 0, 4},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			const buffer = 100_000
			f := newFixtureWith(b, tt.shards, Config{FlushInterval: tt.interval, MaxBatch: 1000, Buffer: buffer},
				streams.WriterConfig{FeedLen: 100_000, HistoryLen: 1000, Retention: 10 * time.Minute})
			evs := benchEvents(b, 10_000)
			f.run(b)
			b.ResetTimer()
			for i := range b.N {
				if i%1000 == 0 {
					for f.b.Len() >= buffer/2 {
						time.Sleep(100 * time.Microsecond)
					}
				}
				e := evs[i%len(evs)]
				e.TS = time.Now().UnixMilli()
				f.b.Add(e)
			}
			f.waitWritten(b, b.N)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// benchEvents returns trades and quotes of realistic size over 50 symbols.
func benchEvents(b *testing.B, n int) []event.Event {
	b.Helper()
	out := make([]event.Event, n)
	for i := range out {
		sym := fmt.Sprintf("SYM%d", i%50)
		var v any = event.Trade{Price: 189.23 + float64(i%100)/100, Size: 100}
		kind := event.KindTrade
		if i%5 < 3 {
			kind, v = event.KindQuote, event.Quote{Bid: 189.22, BidSize: 300, Ask: 189.24, AskSize: 500}
		}
		data, err := json.Marshal(v)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = event.Event{Channel: event.Channel{Kind: kind, Symbol: sym}, Data: data}
	}
	return out
}
