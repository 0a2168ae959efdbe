package wsconn

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/testkit/logbuf"
)

// idleWriter waits until c has no writer goroutine, and reports whether
// the idle connection still holds the writer's timer or spare slice.
func idleWriter(t *testing.T, c *Conn) (timer, spare bool) {
	t.Helper()
	poll.Until(t, 10*time.Second, func() error {
		if c.w.running.Load() {
			return errString("writer still running")
		}
		return nil
	})
	// running false was stored after these fields were last written.
	c.q.mu.Lock()
	defer c.q.mu.Unlock()
	return c.w.timer != nil, c.q.spare != nil
}

// A writer that emptied the queue, with no frame before it for a while,
// ends right away and leaves nothing behind: no timer, no spare slice
// (the old writer lingered 2 s on a timer it then kept).
func TestWriterEndsWhenQueueEmpty(t *testing.T) {
	c, ws := serveOne(t, 64)
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := uint64(1); i <= 3; i++ {
		c.Deliver(msg(t, "trade:A", i))
		c.Wake()
		if _, _, err := ws.ReadMessage(); err != nil {
			t.Fatal(err)
		}
		if timer, spare := idleWriter(t, c); timer || spare {
			t.Fatalf("event %d: idle writer kept its timer (%v) or spare slice (%v)", i, timer, spare)
		}
	}
}

// Events delivered while the writer ends and restarts again and again
// reach the client all, in order, each once.
func TestWriterRestartsInOrder(t *testing.T) {
	const n = 3000
	c, ws := serveOne(t, 4*n)
	msgs := make([]*hub.Message, n+1)
	for i := uint64(1); i <= n; i++ {
		msgs[i] = msg(t, "trade:A", i)
	}
	done := make(chan struct{})
	defer func() { <-done }()
	go func() {
		defer close(done)
		for i := uint64(1); i <= n; i++ {
			c.Deliver(msgs[i])
			c.Wake()
			switch {
			case i%500 == 0: // let the writer end before the next
				for c.w.running.Load() {
					time.Sleep(time.Millisecond)
				}
			case i%7 == 0:
				time.Sleep(time.Duration(i%3) * time.Millisecond)
			}
		}
	}()
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	var next int64 = 1
	for next <= n {
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %d events: %v", next-1, err)
		}
		var f struct {
			Events []struct {
				TS int64 `json:"ts"`
			} `json:"events"`
		}
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("frame %q: %v", data, err)
		}
		for _, e := range f.Events {
			if e.TS != next {
				t.Fatalf("event ts %d, want %d: lost, repeated or out of order", e.TS, next)
			}
			next++
		}
	}
}

// A panic while handling a frame (here: a subscribe with a snapshot and
// no history to read it from, a nil interface) ends that connection alone,
// with 1001 so that the client reconnects and resumes; it is logged with
// its stack and counted. The reader runs on a goroutine of the Server's,
// where nothing else would recover it: the replica would end.
func TestPanicEndsOnlyItsConnection(t *testing.T) {
	var log logbuf.Buffer
	d := testDeps(64)
	d.Log = log.Text(nil)
	ws := serveWith(t, d, func(c *Conn) { c.authed, c.ident.Subject = true, "u" })
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","id":"1","channels":["trade:A"]}`)); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var err error
	for err == nil {
		_, _, err = ws.ReadMessage()
	}
	if !websocket.IsCloseError(err, int(CloseGoingAway)) || !strings.Contains(err.Error(), "internal error") {
		t.Fatalf("read ended with %v, want close 1001 internal error", err)
	}
	if n := testutil.ToFloat64(d.Metrics.Panics); n != 1 {
		t.Errorf("panics counted: %v, want 1", n)
	}
	if !log.Contains("panic while serving a connection") || !log.Contains("handle.go") {
		t.Errorf("no ERROR line with the stack: %s", log.String())
	}
	// The same Deps serve the next connection as before.
	ws2 := serveWith(t, d, func(c *Conn) { c.authed, c.ident.Subject = true, "u" })
	if err := ws2.WriteMessage(websocket.TextMessage, []byte(`{"op":"ping","id":"p"}`)); err != nil {
		t.Fatal(err)
	}
	_ = ws2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, data, err := ws2.ReadMessage(); err != nil || !strings.Contains(string(data), `"pong"`) {
		t.Fatalf("the next connection: %s, %v; want a pong", data, err)
	}
}

// BenchmarkWriterFrame measures the publisher's cost per WebSocket frame
// at W3's shape (two events a frame, each frame woken for): deliver two
// events, wake the writer, and read the frame on the client. The client's
// read runs in the same process and is counted too.
func BenchmarkWriterFrame(b *testing.B) {
	conns := make(chan *Conn, 1)
	ws := serveWith(b, testDeps(64), func(c *Conn) {
		c.authed, c.ident.Subject = true, "u"
		conns <- c
	})
	c := <-conns
	msgs := w3Messages()
	_ = ws.SetReadDeadline(time.Now().Add(time.Minute))
	var id uint64
	b.ReportAllocs()
	for b.Loop() {
		for _, m := range msgs {
			id++
			m.Event.ID = event.ID{Ms: id}
			c.Deliver(m)
		}
		c.Wake()
		if _, _, err := ws.NextReader(); err != nil {
			b.Fatal(err)
		}
	}
}

// discardWire takes frames and writes them nowhere: BenchmarkWriteItems
// measures the writer's own work per frame without the system call.
type discardWire struct{ wire }

func (discardWire) writeFrame([]byte, time.Time) error { return nil }

// BenchmarkWriteItems measures the writer's work for one events frame of
// two events (W3's frames), system call aside, as writeLoop does it: take
// the two events queued, write them as one frame (encoding, the clock,
// the metrics, the connection's counters), give the slice back, and take
// again to find the queue empty.
func BenchmarkWriteItems(b *testing.B) {
	c := &Conn{d: testDeps(64), out: discardWire{}, q: newQueue(64, 1<<20)}
	msgs := w3Messages()
	var buf []byte
	var id uint64
	b.ReportAllocs()
	for b.Loop() {
		for _, m := range msgs {
			id++
			m.Event.ID = event.ID{Ms: id}
			c.q.deliver(m)
		}
		c.q.wakeUp()
		items, _, _, _ := c.q.take(time.Now)
		var err error
		if buf, err = c.writeItems(items, buf); err != nil {
			b.Fatal(err)
		}
		c.q.recycle(items)
		if items, _, _, _ := c.q.take(time.Now); len(items) != 0 {
			b.Fatal("queue not empty")
		}
	}
}

// w3Messages returns the two trades of a W3 frame, to be given ids.
func w3Messages() [2]*hub.Message {
	var msgs [2]*hub.Message
	for i := range msgs {
		msgs[i] = hub.NewMessage(event.Event{Channel: event.Channel{Kind: event.KindTrade, Symbol: "AAPL"},
			TS: time.Now().UnixMilli(), Data: json.RawMessage(`{"price":187.42,"size":100,"side":"buy","venue":"XNAS","conditions":["@","F"]}`)})
	}
	return msgs
}
