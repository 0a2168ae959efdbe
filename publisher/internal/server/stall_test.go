package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickwire/tickwire/publisher/internal/feed"
	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/shared/obs"
	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/testkit/logbuf"
	"github.com/tickwire/tickwire/testkit/tape"
)

// gate is a feed stage that the test can shut: while shut, Publish blocks,
// as the seed's drain blocked on its lock.
type gate struct {
	next    feed.Publisher
	blocked chan struct{} // a Publish is held at the gate (capacity 1)
	mu      sync.Mutex
	shut    chan struct{} // non-nil while shut
}

func newGate() *gate { return &gate{blocked: make(chan struct{}, 1)} }

func (g *gate) Publish(msgs []*hub.Message) {
	g.mu.Lock()
	ch := g.shut
	g.mu.Unlock()
	if ch != nil {
		select {
		case g.blocked <- struct{}{}:
		default:
		}
		<-ch
	}
	g.next.Publish(msgs)
}

func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut == nil {
		g.shut = make(chan struct{})
	}
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut != nil {
		close(g.shut)
		g.shut = nil
	}
}

// countLines returns the number of lines of logs containing every one of
// subs.
func countLines(logs *logbuf.Buffer, subs ...string) int {
	n := 0
	for _, line := range strings.Split(logs.String(), "\n") {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			n++
		}
	}
	return n
}

// startReplicaWith is startReplica with New's options, and its log copied
// to logs as well as the test's log.
func (e *env) startReplicaWith(id string, mod func(*Config), logs io.Writer, opts ...option) *replica {
	e.t.Helper()
	cfg := e.config(id)
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		e.t.Fatal(err)
	}
	out := io.MultiWriter(testWriter{e.t}, logs)
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := New(cfg, log.With("replica", id), obs.NewRegistry(), cfg.NewRedis, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{srv: srv, http: httptest.NewServer(srv.Handler()), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Run(ctx) }()
	e.t.Cleanup(r.stop)
	waitReady(e.t, r)
	return r
}

// TestStallIsLoud reproduces the failure of the system tickwire replaces:
// a user connected and authenticated over a real WebSocket, events in
// Redis, and nothing delivered, because a stage between the feed reader and
// the clients blocks. The replica must say so within seconds: /readyz 503
// with the reason, tickwire_publisher_stalled 1, one ERROR line (not one
// per poll). Once the stage moves again: everything is delivered, stalled
// is 0, the replica is ready, and one INFO line says the stall ended.
func TestStallIsLoud(t *testing.T) {
	e := newEnv(t, 1)
	g := newGate()
	logs := &logbuf.Buffer{}
	r := e.startReplicaWith("pub-stall", func(c *Config) { c.StallAfter = time.Second }, logs,
		withFeedStage(func(_ int, next feed.Publisher) feed.Publisher {
			g.next = next
			return g
		}))
	t.Cleanup(g.open) // runs before the replica's stop: a shut gate would hold its reader

	c := dialAuthed(t, r, "alice")
	c.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false})
	tp := tape.New(t)
	e.write("trade:AAPL", 1)
	c.collect(tp, "trade:AAPL", 1) // the pipeline works
	if v := metricValue(t, r, "tickwire_publisher_stalled"); v != 0 {
		t.Fatalf("stalled = %v before the fault", v)
	}

	g.close()
	e.write("trade:AAPL", 2, 3) // the reader takes these and blocks handing them on
	select {
	case <-g.blocked:
	case <-time.After(10 * time.Second):
		t.Fatal("the reader never reached the shut gate")
	}
	e.write("trade:AAPL", 4, 5) // these wait in Redis: written once the reader is held
	readyz := r.http.URL + "/readyz"
	poll.Until(t, 15*time.Second, func() error {
		code, body := httpStatus(t, readyz, nil)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "feed stalled") {
			return fmt.Errorf("/readyz %d %s, want 503 feed stalled", code, body)
		}
		return nil
	})
	if v := metricValue(t, r, "tickwire_publisher_stalled"); v != 1 {
		t.Errorf("stalled = %v while stalled, want 1", v)
	}
	if v := metricValue(t, r, "tickwire_publisher_ready"); v != 0 {
		t.Errorf("ready = %v while stalled, want 0", v)
	}
	// The original symptom: connected, events in Redis, nothing delivered.
	if v := metricValue(t, r, "tickwire_publisher_connections"); v != 1 {
		t.Errorf("connections = %v, want the user still connected", v)
	}
	if v := metricValue(t, r, "tickwire_publisher_events_delivered_total"); v != 1 {
		t.Errorf("delivered = %v while stalled, want only the first event", v)
	}
	if n, _ := e.rdb.XLen(context.Background(), e.layout.Feed(0)).Result(); n != 5 {
		t.Errorf("feed length %d, want the 5 events in Redis", n)
	}
	if v := metricValue(t, r, "tickwire_publisher_group_lag"); v < 2 {
		t.Errorf("group lag = %v, want the 2 entries not read", v)
	}

	// More polls see the stall go on (the lag gauge follows a new write);
	// the ERROR line is not repeated.
	e.write("trade:AAPL", 6)
	poll.Until(t, 15*time.Second, func() error {
		if v := metricValue(t, r, "tickwire_publisher_group_lag"); v != 3 {
			return fmt.Errorf("group lag %v, want 3", v)
		}
		return nil
	})
	if n := countLines(logs, "level=ERROR", "feed stalled"); n != 1 {
		t.Errorf("%d ERROR lines about the stall, want 1:\n%s", n, logs.String())
	}

	g.open()
	c.collect(tp, "trade:AAPL", 6) // everything, in order, once
	poll.Until(t, 15*time.Second, func() error {
		if code, body := httpStatus(t, readyz, nil); code != http.StatusOK {
			return fmt.Errorf("/readyz %d %s after the stall, want 200", code, body)
		}
		if v := metricValue(t, r, "tickwire_publisher_stalled"); v != 0 {
			return fmt.Errorf("stalled = %v after the stall", v)
		}
		return nil
	})
	if n := countLines(logs, "level=INFO", "feed stall ended"); n != 1 {
		t.Errorf("%d INFO lines about the end of the stall, want 1", n)
	}
	if n := countLines(logs, "level=ERROR", "feed stalled"); n != 1 {
		t.Errorf("%d ERROR lines about the stall in all, want 1", n)
	}
}
