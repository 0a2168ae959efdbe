package wsconn

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/gorilla/websocket"

	"github.com/tickwire/tickwire/shared/auth"
	"github.com/tickwire/tickwire/shared/poll"
)

// maskedFrame encodes a masked text frame, as a client sends it (payload
// under 64 KiB).
func maskedFrame(payload string) []byte {
	mask := [4]byte{1, 2, 3, 4}
	b := []byte{0x81}
	if n := len(payload); n < 126 {
		b = append(b, 0x80|byte(n))
	} else {
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	}
	b = append(b, mask[:]...)
	for i := range len(payload) {
		b = append(b, payload[i]^mask[i%4])
	}
	return b
}

// readerAt reports where the connection's reader is: whether c is armed
// with its Poller (idle: no goroutine of its own), and how many goroutines
// run a reader or read a frame.
func readerAt(c *Conn) (armed bool, running, reading int) {
	p := c.d.Poller
	p.mu.Lock()
	armed = p.armed[c.ready.fd] == c
	p.mu.Unlock()
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	return armed, strings.Count(stacks, "wsconn.(*Conn).readable("), strings.Count(stacks, "wsconn.(*Conn).readFrame(")
}

// waitIdle waits until c is armed with the Poller and no goroutine reads
// for it.
func waitIdle(t *testing.T, c *Conn) {
	t.Helper()
	poll.Until(t, 10*time.Second, func() error {
		if armed, running, reading := readerAt(c); !armed || running != 0 || reading != 0 {
			return fmt.Errorf("armed %v, %d readers running, %d reading: want it armed and no reader", armed, running, reading)
		}
		return nil
	})
}

func pongs(t *testing.T, ws *websocket.Conn, ids ...string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, id := range ids {
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for pong %s: %v", id, err)
		}
		if want := `{"type":"pong","id":"` + id + `"}`; string(data) != want {
			t.Fatalf("got %s, want %s", data, want)
		}
	}
}

// An idle connection is armed with the Poller and holds no goroutine;
// frames that arrive together are all handled, the later ones from the
// read buffer without a wait (were they waited for, they would never be
// answered); a frame that arrives in pieces is read whole.
func TestIdleReaderWaitsShallow(t *testing.T) {
	c, ws := serveOne(t, 64)
	if !c.polled() {
		t.Fatal("not polled: the connection would hold a reader goroutine")
	}
	raw := ws.NetConn()
	waitIdle(t, c)

	// Three frames in one write, right away: the first read takes all.
	var three []byte
	for _, id := range []string{"1", "2", "3"} {
		three = append(three, maskedFrame(`{"op":"ping","id":"`+id+`"}`)...)
	}
	if _, err := raw.Write(three); err != nil {
		t.Fatal(err)
	}
	pongs(t, ws, "1", "2", "3")
	waitIdle(t, c)

	// A frame in two pieces: the reader reads the first and waits, in
	// gorilla's read, for the rest.
	f := maskedFrame(`{"op":"ping","id":"4"}`)
	if _, err := raw.Write(f[:5]); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() error {
		if _, _, reading := readerAt(c); reading != 1 {
			return fmt.Errorf("reader not reading the partial frame")
		}
		return nil
	})
	if _, err := raw.Write(f[5:]); err != nil {
		t.Fatal(err)
	}
	pongs(t, ws, "4")
	waitIdle(t, c)

	// A frame larger than the read buffer, in one write.
	big := strings.Repeat("x", 3000)
	if _, err := raw.Write(maskedFrame(`{"op":"ping","id":"` + big + `"}`)); err != nil {
		t.Fatal(err)
	}
	pongs(t, ws, big)
	waitIdle(t, c)

	// Again and again: a wake-up left over from the reads is not taken
	// for data (a reader would wait in gorilla's read).
	for i := 5; i < 25; i++ {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"op":"ping","id":"%d"}`, i))); err != nil {
			t.Fatal(err)
		}
		pongs(t, ws, fmt.Sprint(i))
	}
	waitIdle(t, c)
}

// gateUsers holds the first Acquire until release is closed.
type gateUsers struct {
	entered chan struct{}
	release chan struct{}
}

func (g gateUsers) Acquire(string) bool {
	close(g.entered)
	<-g.release
	return true
}

func (gateUsers) Release(string) {}

// A frame that arrives while the reader handles the one before stays in
// the socket (gorilla is not reading): the idle wait that follows must
// find it there. The poller's wake-up for it may have been consumed, so
// only asking the socket finds it; a wait without asking would never end.
func TestIdleReaderFindsBytesInSocket(t *testing.T) {
	const secret = "idle-test-secret"
	d := testDeps(64)
	v, err := auth.NewVerifier(auth.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	gate := gateUsers{entered: make(chan struct{}), release: make(chan struct{})}
	d.Verifier, d.Users = v, gate
	ws := serveWith(t, d, func(*Conn) {})
	tok, err := auth.Mint(secret, "u", time.Hour, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"auth","token":"`+tok+`"}`)); err != nil {
		t.Fatal(err)
	}
	<-gate.entered // the auth frame is read and being handled
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"ping","id":"p"}`)); err != nil {
		t.Fatal(err)
	}
	// Not a synchronisation (the test passes however long this is): time
	// for the runtime's poller to take the ping's wake-up while the
	// reader is still busy, which is the case to test.
	time.Sleep(50 * time.Millisecond)
	close(gate.release)
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, data, err := ws.ReadMessage(); err != nil || !strings.Contains(string(data), `"type":"welcome"`) {
		t.Fatalf("got %s %v, want welcome", data, err)
	}
	pongs(t, ws, "p")
}

// The read deadline applies to the idle wait: a client that does not
// authenticate in time gets the auth timeout, as when the reader waited
// in gorilla's read.
func TestIdleReaderAuthTimeout(t *testing.T) {
	d := testDeps(64)
	d.Config.AuthTimeout = 200 * time.Millisecond
	ws := serveWith(t, d, func(c *Conn) {})
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := ws.ReadMessage()
	if err != nil || !strings.Contains(string(data), `"code":"unauthorized"`) {
		t.Fatalf("got %s %v, want the unauthorized error", data, err)
	}
	_, _, err = ws.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != int(CloseUnauthorized) {
		t.Fatalf("got %v, want close %d", err, CloseUnauthorized)
	}
}

// Bytes a client sends with its handshake, before the server answered,
// are not lost in the swap of read buffers: the upgrade is refused, as
// gorilla refuses it.
func TestUpgradeRefusesEarlyData(t *testing.T) {
	upgraded := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, _, err := Upgrade(&websocket.Upgrader{ReadBufferSize: 288}, w, r)
		if err == nil {
			_ = ws.Close()
		}
		upgraded <- err
	}))
	defer srv.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := conn.Write(append([]byte(req), maskedFrame(`{"op":"ping"}`)...)); err != nil {
		t.Fatal(err)
	}
	if err := <-upgraded; err == nil {
		t.Fatal("upgraded a connection whose first frame came with the handshake")
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	if strings.Contains(line, "101") {
		t.Fatalf("got %q, want no switch of protocols", line)
	}
}

// A connection's struct fits the 512-byte size class of the allocator
// (one more field of 8 bytes takes it to 576: every idle connection pays).
func TestConnSize(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > 512 {
		t.Fatalf("Conn is %d bytes, want at most 512", n)
	}
}

// Without a readiness (not Linux, or no read buffer from Upgrade), the
// reader reads in gorilla itself, one goroutine, and still handles each
// frame aside; it does not wait on a second goroutine blocked in the read.
func TestReaderWithoutReadiness(t *testing.T) {
	d := testDeps(64)
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := New(d, ws, nil, nil)
		c.authed, c.ident.Subject = true, "u"
		c.Serve(r.Context(), false)
		close(done)
	}))
	defer func() { <-done; srv.Close() }()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for i := range 3 {
		id := fmt.Sprint(i)
		if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"ping","id":"`+id+`"}`)); err != nil {
			t.Fatal(err)
		}
		pongs(t, ws, id)
	}
	poll.Until(t, 10*time.Second, func() error {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		reading, aside := strings.Count(stacks, "wsconn.(*Conn).readFrame("), strings.Count(stacks, "wsconn.(*Conn).aside(")
		if reading != 1 || aside != 0 {
			return fmt.Errorf("%d goroutines reading, %d waiting aside: want the reader alone in the read", reading, aside)
		}
		return nil
	})
}

// The client's pongs (its answers to the heartbeat) and pings arrive
// between messages, alone: the reader takes them and goes back to its
// idle wait. Handled by gorilla, a pong left the goroutine that read it
// blocked in gorilla's read until the next message: a second, deep
// goroutine on every connection after its first heartbeat.
func TestIdleReaderTakesPingsAndPongs(t *testing.T) {
	c, ws, pings := serveClocked(t, 30*time.Millisecond)
	got := make(chan string, 16)
	ws.SetPongHandler(func(data string) error {
		got <- data
		return nil
	})
	reads := make(chan error, 1)
	go func() { // the client's reads run its ping and pong handlers
		_, _, err := ws.ReadMessage()
		reads <- err
	}()
	poll.Until(t, 10*time.Second, func() error {
		if n := pings.Load(); n < 5 {
			return fmt.Errorf("%d pings answered", n)
		}
		return nil
	})
	if err := ws.WriteControl(websocket.PingMessage, []byte("hello"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case data := <-got:
		if data != "hello" {
			t.Fatalf("pong %q, want hello", data)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no pong for the client's ping")
	}
	waitIdle(t, c)
	_ = ws.Close()
	<-reads
}

// A pong that arrives in pieces is read whole, and a message right after
// a ping or pong, in the same read, is handled.
func TestIdleReaderControlInPieces(t *testing.T) {
	c, ws := serveOne(t, 64)
	raw := ws.NetConn()
	waitIdle(t, c)
	pong := maskedFrame("abc")
	pong[0] = 0x80 | 0xa // FIN, pong
	if _, err := raw.Write(pong[:3]); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() error {
		buf := make([]byte, 1<<20)
		if !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "wsconn.(*Conn).control(") {
			return fmt.Errorf("reader not reading the rest of the pong")
		}
		return nil
	})
	rest := append(pong[3:], maskedFrame(`{"op":"ping","id":"after"}`)...)
	if _, err := raw.Write(rest); err != nil {
		t.Fatal(err)
	}
	pongs(t, ws, "after")
	waitIdle(t, c)
}
