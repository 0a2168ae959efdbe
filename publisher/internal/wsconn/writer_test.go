package wsconn

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/shared/poll"
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

// A panic while handling a frame comes back on the reader's goroutine,
// which net/http recovers for that connection alone; on the aside
// goroutine it would end the whole process.
func TestAsidePanicReachesReader(t *testing.T) {
	defer func() {
		if p := recover(); p != "boom" {
			t.Errorf("recovered %v on the reader, want boom", p)
		}
	}()
	var c Conn
	c.aside(func() { panic("boom") })
	t.Error("aside returned after a panic")
}
