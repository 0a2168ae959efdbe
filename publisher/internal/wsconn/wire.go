package wsconn

import (
	"time"

	"github.com/gorilla/websocket"
)

// wire is what a connection's writer writes to: a WebSocket (wsWire), or
// a Server-Sent Events stream (sseWire, sse.go). writeFrame is called by
// the writer only; ping by the ping timer; abort and close from any
// goroutine.
type wire interface {
	// writeFrame writes one server frame by deadline (the writer's
	// clock read plus writeWait).
	writeFrame(b []byte, deadline time.Time) error
	// ping keeps the connection alive (a WebSocket ping, an SSE comment).
	ping() error
	// closeFrame tells the client the connection ends with code.
	closeFrame(code CloseCode, text string, deadline time.Time) error
	// abort cuts short a write blocked on a client that stopped reading.
	abort()
	// close ends the connection.
	close()
	remote() string
}

type wsWire struct{ ws *websocket.Conn }

func (w wsWire) writeFrame(b []byte, deadline time.Time) error {
	_ = w.ws.SetWriteDeadline(deadline)
	return w.ws.WriteMessage(websocket.TextMessage, b)
}

func (w wsWire) ping() error {
	return w.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait))
}

func (w wsWire) closeFrame(code CloseCode, text string, deadline time.Time) error {
	return w.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(int(code), text), deadline)
}

// abort sets a deadline, which is not I/O: the writer sees the abort
// between frames.
func (w wsWire) abort()         { _ = w.ws.UnderlyingConn().SetWriteDeadline(time.Now()) }
func (w wsWire) close()         { _ = w.ws.Close() }
func (w wsWire) remote() string { return w.ws.RemoteAddr().String() }
