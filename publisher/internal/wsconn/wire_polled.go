package wsconn

import "time"

// polledWire is a polled connection's wire: a WebSocket's, whose close
// shuts the socket down instead (shutdown), so that the reader wakes and
// ends the connection, which closes it.
type polledWire struct{ c *Conn }

func (w polledWire) writeFrame(b []byte, deadline time.Time) error {
	return wsWire{w.c.ws}.writeFrame(b, deadline)
}
func (w polledWire) ping() error    { return wsWire{w.c.ws}.ping() }
func (w polledWire) abort()         { wsWire{w.c.ws}.abort() }
func (w polledWire) close()         { w.c.shutdown() }
func (w polledWire) remote() string { return wsWire{w.c.ws}.remote() }
func (w polledWire) closeFrame(code CloseCode, text string, deadline time.Time) error {
	return wsWire{w.c.ws}.closeFrame(code, text, deadline)
}
