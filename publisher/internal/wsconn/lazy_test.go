package wsconn

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/shared/poll"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The lazy writer runs one goroutine at a time, only while kicked, ends
// after its linger, starts again on the next kick, and never after stop;
// on goroutines of its own or of a WriterPool.
func TestLazyWriterLifecycle(t *testing.T) {
	t.Run("own goroutines", func(t *testing.T) { testLazyWriterLifecycle(t, nil) })
	t.Run("pool", func(t *testing.T) {
		p := NewWriterPool(2)
		defer p.Stop()
		testLazyWriterLifecycle(t, p)
	})
}

func testLazyWriterLifecycle(t *testing.T, pool *WriterPool) {
	var runs, running, most atomic.Int32
	var w *lazyWriter
	w = newLazyWriter(func() {
		runs.Add(1)
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		defer running.Add(-1)
		for {
			if w.wait(20 * time.Millisecond) {
				continue // kicked: more to do
			}
			if w.retire(func() bool { return false }) {
				continue
			}
			return
		}
	}, pool)
	for range 50 {
		w.kick()
	}
	poll.Until(t, 5*time.Second, func() error {
		if runs.Load() == 0 || running.Load() != 0 {
			return errString("writer not run, or still running after its linger")
		}
		return nil
	})
	if runs.Load() != 1 || most.Load() != 1 {
		t.Fatalf("%d runs, at most %d at once: want one writer for a burst of kicks", runs.Load(), most.Load())
	}
	w.kick()
	poll.Until(t, 5*time.Second, func() error {
		if runs.Load() != 2 {
			return errString("no new writer after a kick")
		}
		return nil
	})
	w.stop() // waits for the running one
	if running.Load() != 0 {
		t.Fatal("stop returned while the writer ran")
	}
	w.kick()
	if runs.Load() != 2 || w.running.Load() {
		t.Fatal("a writer started after stop")
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// serveOne upgrades one WebSocket and runs a Conn with the given queue
// limits over it, pre-authenticated; it returns the client side.
func serveOne(t *testing.T, queueEvents int) (*Conn, *websocket.Conn) {
	t.Helper()
	conns := make(chan *Conn, 1)
	ws := serveWith(t, testDeps(queueEvents), func(c *Conn) {
		c.authed, c.ident.Subject = true, "u"
		conns <- c
	})
	return <-conns, ws
}

func testDeps(queueEvents int) *Deps {
	return &Deps{
		Config: Config{Replica: "r", AuthTimeout: time.Second, Heartbeat: time.Minute, MaxChannels: 10,
			RateLimit: 100, RateBurst: 100, QueueEvents: queueEvents, QueueBytes: 1 << 20},
		Hub: hub.New(), Metrics: NewMetrics(prometheus.NewRegistry()), Users: noUsers{},
		Log: slog.New(slog.DiscardHandler),
	}
}

// serveWith upgrades one WebSocket as the server does (Upgrade, New) and
// serves it with d after setup, read by d's Poller (a new one if d has
// none); it returns the client side. The test's
// cleanup closes it and waits for Serve to return.
func serveWith(t testing.TB, d *Deps, setup func(*Conn)) *websocket.Conn {
	t.Helper()
	if d.Poller == nil {
		d.Poller = NewPoller(d.Log)
		t.Cleanup(d.Poller.Stop) // last: after the connection's cleanup below
	}
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, br, err := Upgrade(&websocket.Upgrader{ReadBufferSize: 288}, w, r)
		if err != nil {
			return
		}
		c := New(d, ws, br, nil)
		setup(c)
		c.Serve(r.Context(), false)
		close(done)
	}))
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = ws.Close()
		<-done
		srv.Close()
	})
	return ws
}

type noUsers struct{}

func (noUsers) Acquire(string) bool { return true }
func (noUsers) Release(string)      {}

// The writer sends what is queued, consecutive events as one events frame,
// control frames as they are, in queue order.
func TestWriterFramesInOrder(t *testing.T) {
	c, ws := serveOne(t, 64)
	c.Deliver(msg(t, "trade:A", 1)) // queued; no writer runs yet
	c.Deliver(msg(t, "trade:A", 2))
	c.send([]byte(`{"type":"pong"}`)) // starts the writer
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []string
	for len(got) < 2 {
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(data))
	}
	if got[1] != `{"type":"pong"}` || !strings.HasPrefix(got[0], `{"type":"events","events":[`) || strings.Count(got[0], `"ts":`) != 2 {
		t.Fatalf("frames %q: want one events frame of 2 events, then the pong", got)
	}
}

// An overflow cuts short a write to a client that does not read, and the
// client gets 4008 or a dropped connection.
func TestWriterClosesSlowConsumer(t *testing.T) {
	c, ws := serveOne(t, 8)
	for i := uint64(1); i <= 9; i++ { // one more than the queue holds
		c.Deliver(msg(t, "trade:A", i))
	}
	c.Wake()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		if ce, ok := err.(*websocket.CloseError); ok && ce.Code != int(CloseSlowConsumer) && ce.Code != websocket.CloseAbnormalClosure {
			t.Fatalf("closed with %d, want 4008", ce.Code)
		}
		return
	}
}

// BenchmarkLazyWriterWake measures a busy writer's wait for its next kick
// (writer.go: the writer waits up to busyGap after each write at W3): the
// kicker queues, kicks and waits for the writer to have taken it.
func BenchmarkLazyWriterWake(b *testing.B) {
	var w *lazyWriter
	var stop atomic.Bool
	took := make(chan struct{})
	w = newLazyWriter(func() {
		for !stop.Load() {
			w.wait(busyGap)
			took <- struct{}{}
		}
		w.retire(func() bool { return false })
	}, nil)
	for b.Loop() {
		w.kick()
		<-took
	}
	stop.Store(true)
	w.kick()
	<-took
	w.stop()
}
