package wsconn

import (
	"errors"
	"net"
	"time"

	"github.com/gorilla/websocket"
)

// RFC 6455 frame header bits of a client's ping or pong.
const (
	finBit     = 0x80
	opPing     = 0x9
	opPong     = 0xa
	maskBit    = 0x80
	maxControl = 125 // a control frame's largest payload
)

// control takes one ping or pong frame from the head of the read buffer
// (reading it whole if needed), as gorilla would, and reports whether it
// did. The reader calls it between messages only, so the buffer starts
// with a frame. Anything else (a data or close frame, a malformed frame,
// a read error) is left where it is for gorilla, which reports it as
// before. Runs on the aside goroutine (it may wait for the frame's rest).
func (c *Conn) control() (bool, error) {
	h, err := c.br.Peek(2)
	if err != nil {
		return false, nil
	}
	op := h[0] & 0x0f
	size := int(h[1] &^ maskBit)
	if h[0]&0xf0 != finBit || (op != opPing && op != opPong) || h[1]&maskBit == 0 || size > maxControl {
		return false, nil
	}
	f, err := c.br.Peek(6 + size)
	if err != nil {
		return false, nil
	}
	mask, payload := f[2:6], make([]byte, size)
	for i := range payload {
		payload[i] = f[6+i] ^ mask[i%4]
	}
	if _, err := c.br.Discard(6 + size); err != nil {
		return false, err
	}
	if op == opPong {
		return true, c.pong()
	}
	return true, c.answerPing(payload)
}

// answerPing answers a client's ping with a pong of its payload, as
// gorilla's default ping handler does: a pong that cannot be written is
// not an error of the read (the writer sees the connection fail).
func (c *Conn) answerPing(payload []byte) error {
	err := c.ws.WriteControl(websocket.PongMessage, payload, time.Now().Add(writeWait))
	var ne net.Error
	if err == nil || errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) {
		return nil
	}
	return err
}
