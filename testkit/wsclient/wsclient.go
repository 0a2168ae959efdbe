// Package wsclient is a protocol v1.1 WebSocket client for tests: it dials
// with a token or headers, reads frames with a deadline, sends, and reads
// close codes. Every failure fails the test that owns the client. A Client
// belongs to one goroutine at a time, as a gorilla/websocket connection
// does (one reader, one writer).
package wsclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickwire/tickwire/testkit/tape"
)

// Frame is any server frame, its fields the union of all frame types.
type Frame struct {
	Type      string          `json:"type"`
	ID        string          `json:"id"`
	User      string          `json:"user"`
	Replica   string          `json:"replica"`
	Code      string          `json:"code"`
	Message   string          `json:"message"`
	Reason    string          `json:"reason"`
	Channels  []string        `json:"channels"`
	Recovered map[string]bool `json:"recovered"`
	Events    []Event         `json:"events"`
}

// Event is one event of an events or snapshot frame.
type Event struct {
	Ch   string          `json:"ch"`
	ID   string          `json:"id"`
	TS   int64           `json:"ts"`
	Data json.RawMessage `json:"data"`
}

// DefaultWait is how long Read waits for a frame unless Client.Wait says.
const DefaultWait = 10 * time.Second

// CloseWait is how long CloseCode waits for each frame before the close.
const CloseWait = 15 * time.Second

// Client is a test's connection. WS is the connection itself, for what the
// helpers do not cover (raw reads, pings, control frames).
type Client struct {
	t    testing.TB
	WS   *websocket.Conn
	Wait time.Duration // Read's and Collect's deadline per frame
}

// Dial connects to url with hdr (nil: none) and closes the connection at
// the test's cleanup. A refused upgrade fails the test, with the HTTP
// status and body.
func Dial(t testing.TB, url string, hdr http.Header) *Client {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, hdr)
	if err != nil {
		body := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			body = fmt.Sprintf(" (HTTP %d %s)", resp.StatusCode, b)
		}
		t.Fatalf("dial: %v%s", err, body)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return New(t, ws)
}

// New wraps a connection the test dialed itself; closing it stays the
// test's business.
func New(t testing.TB, ws *websocket.Conn) *Client {
	return &Client{t: t, WS: ws, Wait: DefaultWait}
}

// Send writes v as a JSON text frame.
func (c *Client) Send(v any) {
	c.t.Helper()
	if err := c.WS.WriteJSON(v); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// SendRaw writes s as a text frame as it is.
func (c *Client) SendRaw(s string) {
	c.t.Helper()
	if err := c.WS.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// Read returns the next frame, failing the test after c.Wait.
func (c *Client) Read() Frame {
	c.t.Helper()
	f, err := c.TryRead(c.Wait)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

// TryRead returns the next frame, or the error that ended the wait for it.
func (c *Client) TryRead(wait time.Duration) (Frame, error) {
	_ = c.WS.SetReadDeadline(time.Now().Add(wait))
	_, data, err := c.WS.ReadMessage()
	if err != nil {
		return Frame{}, err
	}
	var f Frame
	if err := json.Unmarshal(data, &f); err != nil {
		return Frame{}, fmt.Errorf("frame %s: %w", data, err)
	}
	return f, nil
}

// ReadType reads until a frame of type typ, failing on an error frame.
func (c *Client) ReadType(typ string) Frame {
	c.t.Helper()
	for {
		f := c.Read()
		if f.Type == typ {
			return f
		}
		if f.Type == "error" {
			c.t.Fatalf("error frame while waiting for %s: %+v", typ, f)
		}
	}
}

// Expect reads the next frame and fails the test unless it is of type typ.
func (c *Client) Expect(typ string) Frame {
	c.t.Helper()
	f := c.Read()
	if f.Type != typ {
		c.t.Fatalf("got %+v, want %s", f, typ)
	}
	return f
}

// Subscribe sends a subscribe with the fields of req and returns the
// subscribed reply, failing the test on any other.
func (c *Client) Subscribe(req map[string]any) Frame {
	c.t.Helper()
	req["op"] = "subscribe"
	c.Send(req)
	return c.Expect("subscribed")
}

// CloseCode reads until the connection closes and returns its close code;
// an end without a close frame fails the test.
func (c *Client) CloseCode() int {
	c.t.Helper()
	for {
		_, err := c.TryRead(CloseWait)
		if err == nil {
			continue
		}
		if code, ok := CloseCodeOf(err); ok {
			return code
		}
		c.t.Fatalf("connection ended without a close frame: %v", err)
	}
}

// Collect reads events and snapshot frames into tp until its channel ch
// holds n ids; it fails the test on an error frame and returns the read
// error that ended the connection first, if any.
func (c *Client) Collect(tp *tape.Tape, ch string, n int) error {
	c.t.Helper()
	for tp.Len(ch) < n {
		f, err := c.TryRead(c.Wait)
		if err != nil {
			return err
		}
		switch f.Type {
		case "events", "snapshot":
			Record(tp, f.Events)
		case "error":
			c.t.Fatalf("error frame: %+v", f)
		}
	}
	return nil
}

// Record adds events to tp, each to its channel, in order.
func Record(tp *tape.Tape, evs []Event) {
	for _, e := range evs {
		tp.Add(e.Ch, e.ID)
	}
}

// CloseCodeOf returns the close code err carries, if it is a close frame.
func CloseCodeOf(err error) (int, bool) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code, true
	}
	return 0, false
}
