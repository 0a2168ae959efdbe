package server

import (
	"github.com/tickwire/tickwire/testkit/tape"

	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/streams"
)

// TestCompressionNegotiated: with PUBLISHER_COMPRESSION a client offering
// permessage-deflate gets it and reads events through it; without it, or
// from a client not offering it, frames go uncompressed.
func TestCompressionNegotiated(t *testing.T) {
	e := newEnv(t, 1)
	on := e.startReplica("on", func(c *Config) { c.Compression = true })
	off := e.startReplica("off", nil)
	tok := token(t, "alice", time.Hour)
	for _, tc := range []struct {
		name  string
		r     *replica
		offer bool
		want  bool
	}{{"on, offered", on, true, true}, {"on, not offered", on, false, false}, {"off, offered", off, true, false}} {
		d := websocket.Dialer{EnableCompression: tc.offer}
		ws, resp, err := d.Dial(wsURL(tc.r, "access_token="+tok), nil)
		if err != nil {
			t.Fatalf("%s: dial: %v", tc.name, err)
		}
		got := strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
		if got != tc.want {
			t.Errorf("%s: negotiated %v (%q), want %v", tc.name, got, resp.Header.Get("Sec-WebSocket-Extensions"), tc.want)
		}
		c := newClient(t, ws)
		if f := c.Read(); f.Type != "welcome" {
			t.Fatalf("%s: first frame %+v", tc.name, f)
		}
		c.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false})
		e.write("trade:AAPL", 1)
		tp := tape.New(t)
		c.collect(tp, "trade:AAPL", 1)
		_ = ws.Close()
	}
}

// countingConn counts the bytes a client reads off the wire.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestMeasureCompression is the measurement behind BENCHMARKS.md
// (permessage-deflate): n clients of trade:* and quote:* over 50 symbols,
// about 1 000 events/s written for 5 s, with and without compression; bytes the
// clients read off the wire and the process's CPU time (replica, clients
// and writer together, in one process: the difference is the cost).
// Run with TICKWIRE_MEASURE=1 go test -run TestMeasureCompression -v.
func TestMeasureCompression(t *testing.T) {
	if os.Getenv("TICKWIRE_MEASURE") == "" {
		t.Skip("measurement: set TICKWIRE_MEASURE=1")
	}
	e := newEnv(t, 1)
	for _, n := range []int{100, 1000} {
		for _, comp := range []bool{false, true} {
			r := e.startReplica(fmt.Sprintf("m%d-%v", n, comp), func(c *Config) { c.LogLevel = "warn"; c.Compression = comp })
			measureCompression(t, e, r, n, comp)
			r.stop()
		}
	}
}

func measureCompression(t *testing.T, e *env, r *replica, n int, comp bool) {
	var wire, events atomic.Int64
	d := websocket.Dialer{EnableCompression: comp, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, &wire}, nil
	}}
	var wg sync.WaitGroup
	var conns []*websocket.Conn
	for i := 0; i < n; i++ {
		ws, _, err := d.Dial(wsURL(r, "access_token="+token(t, fmt.Sprintf("u%d", i), time.Hour)), nil)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, ws)
		_, _, _ = ws.ReadMessage() // welcome
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","snapshot":false,"channels":["trade:*","quote:*"]}`))
		_, _, _ = ws.ReadMessage() // subscribed
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, data, err := ws.ReadMessage()
				if err != nil {
					return
				}
				events.Add(int64(bytes.Count(data, []byte(`"ts":`))))
			}
		}()
	}
	syms := make([]string, 50)
	for i := range syms {
		syms[i] = fmt.Sprintf("SYM%02d", i)
	}
	const dur, every = 5 * time.Second, 100 * time.Millisecond // 100 events a round: about 1 000/s
	wire.Store(0)
	events.Store(0)
	cpu0, t0 := cpuTime(), time.Now()
	for i := 0; time.Since(t0) < dur; i++ {
		evs := make([]streams.Pending, 0, 2*len(syms))
		for j, s := range syms {
			p := 100 + float64(i%100)/100 + float64(j)
			td, _ := json.Marshal(event.Trade{Price: p, Size: float64(100 + j)})
			qd, _ := json.Marshal(event.Quote{Bid: p - 0.01, BidSize: 300, Ask: p + 0.01, AskSize: 200})
			now := time.Now().UnixMilli()
			evs = append(evs,
				streams.Pending{Event: event.Event{Channel: event.Channel{Kind: event.KindTrade, Symbol: s}, TS: now, Data: td}},
				streams.Pending{Event: event.Event{Channel: event.Channel{Kind: event.KindQuote, Symbol: s}, TS: now, Data: qd}})
		}
		if _, err := e.writer.Write(context.Background(), evs); err != nil {
			t.Fatal(err)
		}
		time.Sleep(every)
	}
	// Let the clients drain what was written.
	want := events.Load()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if now := events.Load(); now == want && now > 0 {
			break
		} else {
			want = now
		}
	}
	cpu, el := cpuTime()-cpu0, time.Since(t0)
	for _, ws := range conns {
		_ = ws.Close()
	}
	wg.Wait()
	ev := events.Load()
	t.Logf("clients %d compression %v: %d events delivered, wire %.1f MB (%.0f B/event), CPU %.2f s over %.1f s (%.1f µs/event)",
		n, comp, ev, float64(wire.Load())/1e6, float64(wire.Load())/float64(max(ev, 1)), cpu.Seconds(), el.Seconds(), float64(cpu.Microseconds())/float64(max(ev, 1)))
}
