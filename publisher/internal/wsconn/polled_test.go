//go:build linux

package wsconn

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickwire/tickwire/shared/poll"
)

// startOne upgrades one WebSocket as the server does and Starts it with
// d (whose Poller it sets if d has none), pre-authenticated; the handler
// returns at once. It returns the Conn, the client side, and what is
// closed when Start's done runs.
func startOne(t testing.TB, d *Deps) (*Conn, *websocket.Conn, <-chan struct{}) {
	return startWith(t, d, true)
}

// startWith is startOne; without polled, the connection is read on a
// goroutine of its own (no Poller).
func startWith(t testing.TB, d *Deps, polled bool) (*Conn, *websocket.Conn, <-chan struct{}) {
	t.Helper()
	if polled && d.Poller == nil {
		d.Poller = NewPoller(d.Log)
		t.Cleanup(d.Poller.Stop)
	}
	conns := make(chan *Conn, 1)
	ended := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, br, err := Upgrade(&websocket.Upgrader{ReadBufferSize: 288}, w, r)
		if err != nil {
			return
		}
		c := New(d, ws, br, nil)
		c.authed, c.ident.Subject = true, "u"
		conns <- c
		c.Start(false, func() { close(ended) })
	}))
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = ws.Close()
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Error("connection not ended 10s after its client closed")
			return // leave the server: closing it would wait for the connection
		}
		srv.Close()
	})
	return <-conns, ws, ended
}

func waitEnded(t testing.TB, ended <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatalf("connection not ended within 10s: %s", what)
	}
}

// stacksIn returns the stacks of the goroutines that run in wsconn, but
// for the Poller's loop and the tests'.
func stacksIn() []string {
	buf := make([]byte, 1<<20)
	var in []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "wsconn.") && !strings.Contains(g, "wsconn.(*Poller).loop(") && !strings.Contains(g, "wsconn.Test") {
			in = append(in, g)
		}
	}
	return in
}

// Idle connections hold no goroutine: each is armed with the Poller, and
// nothing of wsconn runs for them but the Poller's one loop.
func TestIdleConnectionsHoldNoGoroutine(t *testing.T) {
	d := testDeps(64)
	const n = 20
	conns := make([]*Conn, n)
	for i := range conns {
		conns[i], _, _ = startOne(t, d)
	}
	for _, c := range conns {
		waitIdle(t, c)
	}
	poll.Until(t, 10*time.Second, func() error {
		if in := stacksIn(); len(in) != 0 {
			return fmt.Errorf("%d goroutines run in wsconn for %d idle connections, want none; the first:\n%s", len(in), n, in[0])
		}
		return nil
	})
}

// The read deadline holds while the connection is idle: a client that
// answers no ping is ended two heartbeats on, as a read timeout, though
// no goroutine waits in a read with that deadline.
func TestPolledPongTimeout(t *testing.T) {
	d := testDeps(64)
	d.Config.Heartbeat = 50 * time.Millisecond
	c, _, ended := startOne(t, d) // authed: the deadline is two heartbeats; the client never reads, so never answers a ping
	waitEnded(t, ended, "no pong was ever sent")
	err, _ := c.stats.clientEnd.Load().(error)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ended by %v, want the read deadline", err)
	}
}

// A client that answers no close frame is cut off after closeGrace: the
// writer shuts the socket down, which wakes the Poller for the idle
// connection, whose reader then ends it. Had the writer closed the
// descriptor, the epoll set would have dropped it without an event, and
// the connection would never end.
func TestPolledCloseWithSilentClient(t *testing.T) {
	c, ws, ended := startOne(t, testDeps(64))
	waitIdle(t, c)
	c.GoAway()
	waitEnded(t, ended, "the client never answered the close")
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, int(CloseGoingAway)) {
				t.Fatalf("got %v, want close 1001", err)
			}
			return
		}
	}
}

// Stop ends the connections left armed (after a drain that did not finish
// them), and a connection started after it gets close 1001.
func TestPollerStopEndsConnections(t *testing.T) {
	d := testDeps(64)
	c, ws, ended := startOne(t, d)
	waitIdle(t, c)
	d.Poller.Stop()
	waitEnded(t, ended, "the poller stopped")
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("read a frame after the poller stopped, want the connection ended")
	}

	_, late, lateEnded := startOne(t, d)
	waitEnded(t, lateEnded, "started after the poller stopped")
	_ = late.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := late.ReadMessage(); !websocket.IsCloseError(err, int(CloseGoingAway)) {
		t.Fatalf("got %v, want close 1001 for a connection started after Stop", err)
	}
}

// A Poller that can no longer wait for clients (epoll_wait failed) ends
// the connections waiting for theirs, refuses new ones with close 1001,
// and says why in Err, which makes the replica not ready (Server.Ready).
func TestPollerFailureEndsConnections(t *testing.T) {
	d := testDeps(64)
	d.Poller = NewPoller(d.Log)
	t.Cleanup(d.Poller.Stop)
	d.Poller.wait = func(int, []syscall.EpollEvent, int) (int, error) { return 0, syscall.EINVAL }
	if err := d.Poller.Err(); err != nil {
		t.Fatalf("Err before any connection: %v, want nil", err)
	}
	_, ws, ended := startOne(t, d) // its arm starts the loop, whose first wait fails
	waitEnded(t, ended, "the poller failed")
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("read a frame after the poller failed, want the connection ended")
	}
	if err := d.Poller.Err(); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("Err after the failure: %v, want epoll_wait's EINVAL", err)
	}

	_, late, lateEnded := startOne(t, d)
	waitEnded(t, lateEnded, "started after the poller failed")
	_ = late.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := late.ReadMessage(); !websocket.IsCloseError(err, int(CloseGoingAway)) {
		t.Fatalf("got %v, want close 1001 for a connection started after the failure", err)
	}
}

// BenchmarkClientFrame is the cost of one client frame (a ping answered
// with a pong) on a polled connection, which the Poller wakes and arms
// again each time, and on one read by a goroutine of its own.
func BenchmarkClientFrame(b *testing.B) {
	for _, polled := range []bool{true, false} {
		b.Run(map[bool]string{true: "poller", false: "goroutine"}[polled], func(b *testing.B) {
			d := testDeps(64)
			d.Config.RateLimit, d.Config.RateBurst = 1e9, 1e9 // no frame dropped
			_, ws, _ := startWith(b, d, polled)
			ping := []byte(`{"op":"ping","id":"b"}`)
			_ = ws.SetReadDeadline(time.Now().Add(time.Minute))
			b.ReportAllocs()
			for b.Loop() {
				if err := ws.WriteMessage(websocket.TextMessage, ping); err != nil {
					b.Fatal(err)
				}
				if _, _, err := ws.ReadMessage(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
