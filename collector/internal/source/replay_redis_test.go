package source

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickwire/tickwire/collector/internal/batch"
	"github.com/tickwire/tickwire/shared/config"
	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/shared/streams"
	"github.com/tickwire/tickwire/testkit/redisfix"
)

// TestReplayIntoRedis replays each test file at full speed through the
// real batcher and stream writer into a private redis-server, and compares
// every entry written with the file: count, order, channel, time, data.
// Two shards: order holds per symbol, and each channel's history holds
// exactly its feed entries.
func TestReplayIntoRedis(t *testing.T) {
	tests := []struct {
		file string
		want []wantEvent
	}{
		{"testdata/replay.csv", wantCSV},
		{"testdata/replay.jsonl", wantJSONL},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			srv := redistest.Start(t)
			layout, client := redisfix.Open(t, config.Common{RedisURL: srv.URL(), StreamPrefix: "replay", StreamShards: 2}, "test-replay")
			w := streams.NewWriter(client, layout, streams.WriterConfig{FeedLen: 100_000, HistoryLen: 100_000})
			m, err := batch.NewMetrics(prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			const buffer = 16 // small: the replay must wait for room, not overflow
			b, err := batch.New(w, batch.Config{MaxBatch: 2, Buffer: buffer}, slog.New(slog.NewTextHandler(io.Discard, nil)), m)
			if err != nil {
				t.Fatal(err)
			}
			ctx, stop := context.WithCancel(context.Background())
			flushed := make(chan error, 1)
			go func() { flushed <- b.Run(ctx) }()
			r, _ := newReplay(t, ReplayConfig{File: tt.file, Speed: 0, Busy: func() bool { return b.Pending() >= buffer/2 }})
			runErr := r.Run(context.Background(), func(e Event) {
				out, err := e.Encode()
				if err != nil {
					t.Error(err)
				}
				b.Add(out)
			})
			stop()
			if err := <-flushed; err != nil || runErr != nil {
				t.Fatalf("replay %v, final flush %v", runErr, err)
			}
			if n := testutil.ToFloat64(m.Dropped); n != 0 {
				t.Errorf("%v events dropped", n)
			}

			got := readStored(t, srv, layout)
			for sym, want := range bySymbol(tt.want) {
				if fmt.Sprint(got[sym]) != fmt.Sprint(want) {
					t.Errorf("%s stored:\n%v\nwant\n%v", sym, got[sym], want)
				}
			}
			total := 0
			for _, evs := range got {
				total += len(evs)
			}
			if total != len(tt.want) {
				t.Errorf("%d entries stored, want %d", total, len(tt.want))
			}
		})
	}
}

func bySymbol(evs []wantEvent) map[string][]wantEvent {
	out := map[string][]wantEvent{}
	for _, e := range evs {
		ch, _ := event.ParseChannel(e.ch)
		out[ch.Symbol] = append(out[ch.Symbol], e)
	}
	return out
}

// readStored reads every feed, checks each entry against its channel's
// history (same id, same fields), and returns the events per symbol in
// stream order.
func readStored(t *testing.T, srv *redistest.Server, layout streams.Layout) map[string][]wantEvent {
	t.Helper()
	ctx := context.Background()
	rdb := srv.Client()
	out := map[string][]wantEvent{}
	hist := map[string]int{} // channel → entries of its history seen
	for _, key := range layout.Feeds() {
		for _, en := range redisfix.Entries(t, rdb, key) {
			m, e := en.Msg, en.Event
			h, err := rdb.XRange(ctx, layout.History(e.Channel), "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			i := hist[e.Channel.String()]
			if i >= len(h) || h[i].ID != m.ID || fmt.Sprint(h[i].Values) != fmt.Sprint(m.Values) {
				t.Fatalf("%s entry %s is not the history's entry %d", e.Channel, m.ID, i)
			}
			hist[e.Channel.String()]++
			out[e.Channel.Symbol] = append(out[e.Channel.Symbol], wantEvent{ch: e.Channel.String(), ts: e.TS, data: string(e.Data)})
		}
	}
	return out
}
