package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

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
	if err == nil || !strings.Contains(err.Error(), "not implemented yet") {
		t.Errorf("run = %v, want not implemented yet", err)
	}
}
