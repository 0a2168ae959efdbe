package wsclient

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickwire/tickwire/testkit/tape"
)

// serve answers the client's first frame with script, then closes with 4001.
func serve(t *testing.T, script ...string) string {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := ws.ReadMessage(); err != nil {
			return
		}
		for _, s := range script {
			_ = ws.WriteMessage(websocket.TextMessage, []byte(s))
		}
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye"), time.Now().Add(time.Second))
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func TestSubscribeCollectClose(t *testing.T) {
	url := serve(t,
		`{"type":"subscribed","channels":["trade:A"]}`,
		`{"type":"snapshot","events":[{"ch":"trade:A","id":"1-0","ts":1,"data":{}}]}`,
		`{"type":"events","events":[{"ch":"trade:A","id":"2-0","ts":2,"data":{}},{"ch":"trade:B","id":"1-0","ts":2,"data":{}}]}`,
	)
	c := Dial(t, url, nil)
	if f := c.Subscribe(map[string]any{"channels": []string{"trade:A"}}); len(f.Channels) != 1 {
		t.Fatalf("subscribed %+v", f)
	}
	tp := tape.New(t)
	if err := c.Collect(tp, "trade:A", 2); err != nil {
		t.Fatal(err)
	}
	if got := tp.IDs("trade:A"); len(got) != 2 || got[1] != "2-0" || tp.Last("trade:B") != "1-0" {
		t.Fatalf("tape %v / %v", got, tp.IDs("trade:B"))
	}
	if code := c.CloseCode(); code != 4001 {
		t.Fatalf("close code %d, want 4001", code)
	}
}

func TestCollectReturnsTheEnd(t *testing.T) {
	c := Dial(t, serve(t), nil)
	c.SendRaw("hello")
	err := c.Collect(tape.New(t), "trade:A", 1)
	if code, ok := CloseCodeOf(err); !ok || code != 4001 {
		t.Fatalf("Collect = %v, want the close 4001", err)
	}
}
