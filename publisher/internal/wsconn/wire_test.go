package wsconn

import (
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkWireWrite measures what a frame costs the writer in gorilla's
// write path (wsWire: a deadline per frame, which gorilla sets on the
// socket, a runtime timer modified each time; gorilla's write lock; the
// write buffer from the server's pool, boxed into an interface each time)
// against a bare write of the same bytes to the same socket, with the
// deadline set once (raw). The frame is W3's: two events, about 300
// bytes. A client drains the socket. raw is what writing the frames
// ourselves would cost: it needs to know that the connection did not
// negotiate compression and to be the only writer of close frames (see
// BENCHMARKS.md, issue 9's frame cost), which this package cannot see.
func BenchmarkWireWrite(b *testing.B) {
	payload := []byte(`{"type":"events","events":[` + strings.Repeat(`{"channel":"trade:AAPL","id":"1764567890123-0","ts":1764567890123,"data":{"price":187.42,"size":100}},`, 2))
	payload = append(payload[:len(payload)-1], "]}"...)
	b.Run("gorilla", func(b *testing.B) {
		ws := wireBenchConn(b)
		w := wsWire{ws}
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			if err := w.writeFrame(payload, time.Now().Add(writeWait)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		conn := wireBenchConn(b).NetConn()
		_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
		buf := make([]byte, 0, 4+len(payload))
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			buf = append(buf[:0], 0x81, 126, 0, 0) // FIN, text; 16-bit length
			binary.BigEndian.PutUint16(buf[2:], uint16(len(payload)))
			buf = append(buf, payload...)
			if _, err := conn.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// wireBenchConn returns the server side of a WebSocket, upgraded as the
// publisher's server does (its write buffer pool), whose client drains
// everything it is sent until the benchmark's cleanup.
func wireBenchConn(b *testing.B) *websocket.Conn {
	b.Helper()
	conns := make(chan *websocket.Conn, 1)
	release := make(chan struct{})
	u := &websocket.Upgrader{ReadBufferSize: 288, WriteBufferSize: 16 << 10, WriteBufferPool: &sync.Pool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := u.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		conns <- ws
		<-release
		_ = ws.Close()
	}))
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		_, _ = io.Copy(io.Discard, client.NetConn())
	}()
	ws := <-conns
	b.Cleanup(func() {
		close(release)
		_ = client.NetConn().(*net.TCPConn).Close()
		<-drained
		srv.Close()
	})
	return ws
}
