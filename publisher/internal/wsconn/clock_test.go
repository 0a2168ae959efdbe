package wsconn

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickwire/tickwire/shared/poll"
)

// serveClocked serves a connection with heartbeat hb whose client counts
// the pings it gets (and answers them). The connection is not
// authenticated, with an auth timeout of a minute: its read deadline is
// that, not two heartbeats, so a slow run (the race detector, a busy box)
// cannot drop it between pings.
func serveClocked(t *testing.T, hb time.Duration) (*Conn, *websocket.Conn, *atomic.Int32) {
	t.Helper()
	d := testDeps(64)
	d.Config.Heartbeat, d.Config.AuthTimeout = hb, time.Minute
	conns := make(chan *Conn, 1)
	ws := serveWith(t, d, func(c *Conn) { conns <- c })
	var pings atomic.Int32
	ws.SetPingHandler(func(data string) error {
		pings.Add(1)
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	return <-conns, ws, &pings
}

// The one timer sends the heartbeat's pings and, between them, the token's
// expiry: token_expired and close 4001, after pings.
func TestClockExpiryBetweenPings(t *testing.T) {
	c, ws, pings := serveClocked(t, 50*time.Millisecond)
	c.armExpiry(time.Now().Add(300 * time.Millisecond))
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := ws.ReadMessage() // pings are handled inside the read
	if err != nil || !strings.Contains(string(data), `"code":"token_expired"`) {
		t.Fatalf("got %s %v, want token_expired", data, err)
	}
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, int(CloseUnauthorized)) {
		t.Fatalf("got %v, want close 4001", err)
	}
	if pings.Load() < 2 {
		t.Fatalf("%d pings before the expiry, want the heartbeat's", pings.Load())
	}
}

// A renewal moves the expiry: an earlier one armed first does not fire,
// and the heartbeat goes on.
func TestClockRenewalMovesExpiry(t *testing.T) {
	c, ws, pings := serveClocked(t, 30*time.Millisecond)
	c.armExpiry(time.Now().Add(60 * time.Millisecond))
	c.armExpiry(time.Now().Add(time.Hour))
	got := make(chan error, 1)
	go func() {
		_, data, err := ws.ReadMessage()
		if err == nil {
			err = errString("got " + string(data))
		}
		got <- err
	}()
	poll.Until(t, 10*time.Second, func() error { // about 300 ms: five times the first expiry
		select {
		case err := <-got:
			t.Fatalf("read %v while waiting for pings, want nothing", err)
		default:
		}
		if n := pings.Load(); n < 10 {
			return fmt.Errorf("%d pings", n)
		}
		return nil
	})
	_ = ws.Close() // ends the read; the cleanup waits for Serve
	<-got
}
