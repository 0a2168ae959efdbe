package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/streams"
)

// BenchmarkFanout measures end-to-end fan-out inside one process: events
// written to Redis in batches of 100, read by the replica, delivered to
// 1000 WebSocket clients over loopback that count what they receive. One
// op is one event delivered to every client; deliveries/s is the figure
// that matters.
func BenchmarkFanout(b *testing.B) {
	const clients, batch = 1000, 100
	e := newEnvB(b)
	r := e.startReplicaB(b)
	var received atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); wg.Wait() }()
	for i := 0; i < clients; i++ {
		tok := tokenB(b, fmt.Sprintf("u%d", i))
		ws, _, err := websocket.DefaultDialer.Dial(wsURL(r, "access_token="+tok), nil)
		if err != nil {
			b.Fatal(err)
		}
		stop := context.AfterFunc(ctx, func() { _ = ws.Close() })
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := ws.ReadMessage(); err != nil { // welcome
			b.Fatalf("client %d: welcome: %v", i, err)
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","snapshot":false,"channels":["trade:*"]}`))
		if _, _, err := ws.ReadMessage(); err != nil { // subscribed
			b.Fatalf("client %d: subscribed: %v", i, err)
		}
		_ = ws.SetReadDeadline(time.Time{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer stop()
			for {
				_, data, err := ws.ReadMessage()
				if err != nil {
					return
				}
				received.Add(int64(bytes.Count(data, []byte(`"ts":`))))
			}
		}()
	}
	c := event.Channel{Kind: event.KindTrade, Symbol: "AAPL"}
	data, _ := json.Marshal(event.Trade{Price: 189.23, Size: 100})
	evs := make([]streams.Pending, batch)
	for i := range evs {
		evs[i] = streams.Pending{Event: event.Event{Channel: c, TS: time.Now().UnixMilli(), Data: data}}
	}
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < b.N; sent += batch {
		n := min(batch, b.N-sent)
		for i := range evs {
			evs[i].Seq = 0 // new events to the writer, not a retry of the last ones
		}
		if _, err := e.writer.Write(context.Background(), evs[:n]); err != nil {
			b.Fatal(err)
		}
		// Keep at most a few batches in flight, as a live feed would.
		for received.Load() < int64(sent-3*batch)*clients {
			if time.Since(start) > time.Minute {
				b.Fatalf("stalled: received %d of %d", received.Load(), int64(sent-3*batch)*clients)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	want := int64(b.N) * clients
	for received.Load() < want {
		if time.Since(start) > time.Minute {
			b.Fatalf("received %d of %d", received.Load(), want)
		}
		time.Sleep(100 * time.Microsecond)
	}
	b.ReportMetric(float64(want)/time.Since(start).Seconds(), "deliveries/s")
}
