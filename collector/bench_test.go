package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickwire/tickwire/shared/config"
	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/shared/streams"
)

// benchRows is the size of the replayed file: 60% quotes, 40% trades over
// 50 symbols, 20 rows a millisecond... of file time, which speed 0 ignores.
const benchRows = 200_000

// writeBenchFile writes the benchmark's file as CSV or JSONL.
func writeBenchFile(b *testing.B, jsonl bool) string {
	b.Helper()
	var sb strings.Builder
	if !jsonl {
		sb.WriteString("timestamp,symbol,price,size,bid,ask,bid_size,ask_size\n")
	}
	for i := range benchRows {
		ts := int64(1764340200000) + int64(i)/20
		sym := fmt.Sprintf("SYM%d", i%50)
		price := fmt.Sprintf("%d.%02d", 100+i%13, i%100)
		switch {
		case jsonl && i%5 < 3:
			fmt.Fprintf(&sb, `{"ch":"quote:%s","ts":%d,"data":{"bid":%s,"bid_size":300,"ask":%s9,"ask_size":500}}`+"\n", sym, ts, price, price)
		case jsonl:
			fmt.Fprintf(&sb, `{"ch":"trade:%s","ts":%d,"data":{"price":%s,"size":100}}`+"\n", sym, ts, price)
		case i%5 < 3:
			fmt.Fprintf(&sb, "%d,%s,,,%s,%s9,300,500\n", ts, sym, price, price)
		default:
			fmt.Fprintf(&sb, "%d,%s,%s,100,,,,\n", ts, sym, price)
		}
	}
	name := "bench.csv"
	if jsonl {
		name = "bench.jsonl"
	}
	path := filepath.Join(b.TempDir(), name)
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkReplay measures a replay at speed 0 into a local redis-server
// through the whole collector pipeline (source, derive stage, batcher,
// stream writer) with the default configuration: rows/s read from the
// file, and events/s written (rows and the bars and signals derived).
func BenchmarkReplay(b *testing.B) {
	tests := []struct {
		name   string
		jsonl  bool
		derive bool
	}{
		{"csv", false, true},
		{"csv/derive=off", false, false},
		{"jsonl", true, true},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			file := writeBenchFile(b, tt.jsonl)
			srv := redistest.Start(b)
			var written float64
			b.ResetTimer()
			for i := range b.N {
				env := map[string]string{
					"REDIS_URL": srv.URL(), "STREAM_PREFIX": fmt.Sprintf("bench%d", i),
					"COLLECTOR_SOURCE": "replay", "COLLECTOR_REPLAY_FILE": file, "COLLECTOR_REPLAY_SPEED": "0",
				}
				if !tt.derive {
					env["COLLECTOR_BARS"], env["COLLECTOR_SIGNALS"] = "false", "false"
				}
				written += replayOnce(b, env)
			}
			b.ReportMetric(float64(b.N*benchRows)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(written/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// replayOnce runs the pipeline as run wires it, and returns the events
// written.
func replayOnce(b *testing.B, env map[string]string) float64 {
	b.Helper()
	for k, v := range env {
		b.Setenv(k, v)
	}
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		b.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	layout, err := cfg.Layout()
	if err != nil {
		b.Fatal(err)
	}
	client, err := cfg.NewRedis(config.ClientOptions{Name: "bench", MaxRetries: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	w := streams.NewWriter(client, layout, streams.WriterConfig{FeedLen: cfg.FeedLen, HistoryLen: cfg.HistoryLen, Retention: cfg.Retention})
	m, _ := runPipeline(b, cfg, w, finalFlushTimeout)
	if n := testutil.ToFloat64(m.Dropped); n != 0 {
		b.Fatalf("%v events dropped", n)
	}
	return testutil.ToFloat64(m.Written)
}
