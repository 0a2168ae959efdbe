package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestRunSynthetic runs the whole collector against a private Redis: it
// serves readiness and metrics, fills the feed, and stops cleanly.
func TestRunSynthetic(t *testing.T) {
	srv := redistest.Start(t)
	addr := freeAddr(t)
	loadConfig(t, map[string]string{
		"REDIS_URL": srv.URL(), "STREAM_PREFIX": "run", "LOG_LEVEL": "warn",
		"COLLECTOR_ADDR": addr, "COLLECTOR_RATE": "2000", "COLLECTOR_SEED": "1",
		"COLLECTOR_FLUSH_INTERVAL": "20ms",
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))) }()

	web := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) (int, string, error) {
		resp, err := web.Get("http://" + addr + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	poll.Until(t, 10*time.Second, func() error {
		code, body, err := get("/readyz")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("/readyz %d %s", code, body)
		}
		return err
	})
	rdb := srv.Client()
	poll.Until(t, 10*time.Second, func() error {
		n, err := rdb.XLen(ctx, "run:{0}:feed").Result()
		if err == nil && n < 200 {
			err = fmt.Errorf("feed has %d entries", n)
		}
		return err
	})
	code, body, err := get("/metrics")
	if err != nil || code != http.StatusOK || !strings.Contains(body, "tickwire_collector_events_written_total") {
		t.Errorf("/metrics: %d %v, written counter missing", code, err)
	}
	if code, _, err := get("/healthz"); err != nil || code != http.StatusOK {
		t.Errorf("/healthz: %d %v", code, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop")
	}
	if _, _, err := get("/healthz"); err == nil {
		t.Error("HTTP still served after run returned")
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	loadConfig(t, map[string]string{"COLLECTOR_SOURCE": "replay"})
	err := run(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "COLLECTOR_REPLAY_FILE is empty") {
		t.Errorf("run = %v, want COLLECTOR_REPLAY_FILE is empty", err)
	}
}

// TestRunReplayRefusesFile: a missing file, or one without a usable
// header, stops the collector with a message saying what was expected.
func TestRunReplayRefusesFile(t *testing.T) {
	tests := []struct{ file, want string }{
		{"internal/source/testdata/nope.csv", "no such file or directory: want a readable CSV or JSONL file"},
		{"go.mod", "no usable columns"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			srv := redistest.Start(t)
			loadConfig(t, map[string]string{
				"REDIS_URL": srv.URL(), "COLLECTOR_ADDR": freeAddr(t),
				"COLLECTOR_SOURCE": "replay", "COLLECTOR_REPLAY_FILE": tt.file,
			})
			err := run(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err == nil || !strings.Contains(err.Error(), "COLLECTOR_REPLAY_FILE") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run = %v, want an error naming COLLECTOR_REPLAY_FILE with %q", err, tt.want)
			}
		})
	}
}

// TestRunReplay runs the whole collector on the test CSV at full speed: it
// returns nil (the process exits 0) once everything is written: every
// valid row, and the 1-second bars of the trades.
func TestRunReplay(t *testing.T) {
	srv := redistest.Start(t)
	loadConfig(t, map[string]string{
		"REDIS_URL": srv.URL(), "STREAM_PREFIX": "rp", "LOG_LEVEL": "warn", "COLLECTOR_ADDR": freeAddr(t),
		"COLLECTOR_SOURCE": "replay", "COLLECTOR_REPLAY_FILE": "internal/source/testdata/replay.csv",
		"COLLECTOR_REPLAY_SPEED": "0",
	})
	done := make(chan error, 1)
	go func() { done <- run(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not end at the end of the file")
	}
	msgs, err := srv.Client().XRange(context.Background(), "rp:{0}:feed", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var rows, bars []string
	for _, m := range msgs {
		e, err := event.FromEntry(m.ID, m.Values)
		if err != nil {
			t.Fatal(err)
		}
		var b event.Bar
		if e.Channel.Kind == event.KindBar && json.Unmarshal(e.Data, &b) == nil && b.End-b.Start == 1000 {
			bars = append(bars, fmt.Sprintf("%s %d", e.Channel, b.Start))
			continue
		}
		rows = append(rows, e.Channel.String())
	}
	// The 12 valid rows of replay.csv, in file order (one shard).
	wantRows := "[trade:AAPL quote:AAPL trade:MSFT trade:AAPL quote:MSFT bar:MSFT bar:MSFT trade:V trade:AAPL trade:V quote:V bar:BRK.B]"
	if fmt.Sprint(rows) != wantRows {
		t.Errorf("rows written:\n%v\nwant\n%s", rows, wantRows)
	}
	// One bar per second with trades: three of AAPL, one of MSFT, two of V.
	slices.Sort(bars)
	wantBars := "[bar:AAPL 1764340200000 bar:AAPL 1764340201000 bar:AAPL 1764340323000 bar:MSFT 1764340200000 bar:V 1764340321000 bar:V 1764340325000]"
	if fmt.Sprint(bars) != wantBars {
		t.Errorf("bars written:\n%v\nwant\n%s", bars, wantBars)
	}
}
