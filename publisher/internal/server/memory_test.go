package server

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// idleStack connects n clients that each subscribe to a quiet channel of
// their own and then do nothing (issue 9's W4), and returns the stack
// memory the replica holds per connection after a GC. The clients keep
// no goroutine, so the stacks counted are the replica's.
func idleStack(t *testing.T, n int) float64 {
	t.Helper()
	e := newEnv(t, 1)
	r := e.startReplica("mem", func(c *Config) { c.LogLevel = "warn" })
	stacks := func() uint64 {
		runtime.GC()
		runtime.GC() // the first frees the stacks of dead goroutines
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.StackInuse
	}
	before := stacks()
	conns := make([]*websocket.Conn, 0, n)
	defer func() {
		for _, ws := range conns {
			_ = ws.Close()
		}
	}()
	for i := range n {
		ws, _, err := websocket.DefaultDialer.Dial(wsURL(r, "access_token="+token(t, fmt.Sprintf("m%d", i), time.Hour)), nil)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, ws)
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := ws.ReadMessage(); err != nil { // welcome
			t.Fatal(err)
		}
		sub := fmt.Sprintf(`{"op":"subscribe","snapshot":false,"channels":["trade:IDLE%d"]}`, i)
		if err := ws.WriteMessage(websocket.TextMessage, []byte(sub)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ws.ReadMessage(); err != nil { // subscribed
			t.Fatal(err)
		}
	}
	return float64(stacks()-before) / float64(n)
}

// An idle connection's one goroutine, its reader, keeps the runtime's
// smallest stack (2 KiB): it waits for the client a few frames deep, and
// everything deeper runs on short-lived goroutines. A reader that waited
// in gorilla's read kept 4 KiB or more (8 KiB here). The bound leaves room
// for the runtime's part-used stack spans.
func TestIdleConnectionStack(t *testing.T) {
	if raceEnabled {
		t.Skip("stack sizes under the race detector are not the runtime's")
	}
	per := idleStack(t, 1000)
	t.Logf("stack per idle connection: %.0f B", per)
	if per > 3.5*1024 {
		t.Fatalf("%.0f B of stack per idle connection, want about 2 KiB", per)
	}
}
