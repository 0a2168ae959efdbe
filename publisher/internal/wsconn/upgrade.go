package wsconn

import (
	"bufio"
	"net"
	"net/http"

	"github.com/gorilla/websocket"
)

// minReadBuffer is the smallest read buffer Upgrade gives a connection:
// gorilla takes the hijacked reader as the connection's own only when it
// holds more than 256 bytes.
const minReadBuffer = 257

// Upgrade upgrades r like u.Upgrade, and also returns the connection's
// read buffer (u.ReadBufferSize bytes, at least minReadBuffer), which
// New needs so that an idle reader can wait for the client at a shallow
// depth (idle.go). The buffer is handed to gorilla as the hijacked
// reader, which gorilla keeps when its own ReadBufferSize is zero (its
// documented "buffers allocated by the HTTP server are used"): so the
// read buffer is the same size as before and nothing more is allocated.
// On error the upgrader has answered r, as u.Upgrade does.
func Upgrade(u *websocket.Upgrader, w http.ResponseWriter, r *http.Request) (*websocket.Conn, *bufio.Reader, error) {
	size := u.ReadBufferSize
	if size == 0 {
		size = 4096 // gorilla's default
	}
	own := *u
	own.ReadBufferSize = 0
	h := &hijacker{ResponseWriter: w, size: max(size, minReadBuffer)}
	ws, err := own.Upgrade(h, r, nil)
	if err != nil {
		return nil, nil, err
	}
	return ws, h.br, nil
}

// hijacker is the ResponseWriter Upgrade passes to gorilla: its Hijack
// replaces net/http's read buffer (4 KiB) by the connection's own.
type hijacker struct {
	http.ResponseWriter
	size int
	br   *bufio.Reader
}

// Hijack hijacks the connection. When net/http's buffer holds bytes the
// client sent before the handshake completed, it is left in place: gorilla
// then refuses the upgrade, so no byte is ever lost. Otherwise nothing has
// been read past the request, and a fresh reader on the connection sees
// every byte that follows.
func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil || brw.Reader.Buffered() > 0 {
		return conn, brw, err
	}
	h.br = bufio.NewReaderSize(conn, h.size)
	brw.Reader = h.br
	return conn, brw, nil
}
