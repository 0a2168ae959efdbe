package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/streams"
	"github.com/tickwire/tickwire/testkit/logbuf"
)

// A client that keeps its connection alive (it sends frames) but reads
// nothing: once the socket's buffers are full the writer makes no progress
// while events wait. Within a couple of heartbeats the connection is
// counted in tickwire_publisher_writer_stalls_total and closed, with one
// WARN line, well before the 10 s write deadline would end it.
func TestWriterStallClosed(t *testing.T) {
	e := newEnv(t, 1)
	logs := &logbuf.Buffer{}
	r := e.startReplicaWith("pub-ws", func(c *Config) {
		c.Heartbeat = 300 * time.Millisecond
		c.QueueBytes = 256 << 20 // the queue must not overflow (4008) first
		c.QueueEvents = 1 << 20
	}, logs)
	if v := metricValue(t, r, "tickwire_publisher_writer_stalls_total"); v != 0 {
		t.Fatalf("writer stalls = %v at start", v)
	}
	dialer := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096) // fill up soon
		}
		return conn, err
	}}
	ws, _, err := dialer.Dial(wsURL(r, "access_token="+token(t, "slow", time.Hour)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	c := newClient(t, ws)
	c.ReadType("welcome")
	c.Subscribe(map[string]any{"channels": []string{"trade:BIG"}, "snapshot": false})

	// Keep the server's read deadline alive without reading anything.
	stop := make(chan struct{})
	pinged := make(chan struct{})
	go func() {
		defer close(pinged)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				_ = ws.SetWriteDeadline(time.Now().Add(time.Second))
				if ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"ping"}`)) != nil {
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-pinged }()

	big := json.RawMessage(`{"p":"` + strings.Repeat("a", event.MaxDataSize-8) + `"}`)
	ch, _ := event.ParseChannel("trade:BIG")
	poll.Until(t, 30*time.Second, func() error {
		if v := metricValue(t, r, "tickwire_publisher_writer_stalls_total"); v >= 1 {
			return nil
		}
		evs := make([]event.Event, 64) // 1 MB a round, until the socket is full
		for i := range evs {
			evs[i] = event.Event{Channel: ch, TS: time.Now().UnixMilli(), Data: big}
		}
		if _, err := e.writer.Write(context.Background(), streams.PendingOf(evs)); err != nil {
			t.Fatal(err)
		}
		return fmt.Errorf("no writer stall counted yet")
	})
	poll.Until(t, 10*time.Second, func() error {
		if v := metricValue(t, r, "tickwire_publisher_connections"); v != 0 {
			return fmt.Errorf("%v connections, want the stalled one closed", v)
		}
		return nil
	})
	if v := metricValue(t, r, "tickwire_publisher_writer_stalls_total"); v != 1 {
		t.Errorf("writer stalls = %v, want 1", v)
	}
	if v := metricValue(t, r, "tickwire_publisher_closes_total"); v != 0 {
		t.Errorf("closes = %v, want none (no 4008: the queue did not overflow)", v)
	}
	if n := countLines(logs, "level=WARN", "writer made no progress", "user=slow"); n != 1 {
		t.Errorf("%d WARN lines about the writer, want 1:\n%s", n, logs.String())
	}
}
