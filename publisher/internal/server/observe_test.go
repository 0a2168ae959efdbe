package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickwire/tickwire/publisher/internal/monitor"
	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/testkit/logbuf"
	"github.com/tickwire/tickwire/testkit/tape"
)

// refusedCount is tickwire_publisher_connections_refused_total{reason}.
func refusedCount(t *testing.T, r *replica, reason string) float64 {
	t.Helper()
	mfs, err := r.srv.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tickwire_publisher_connections_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no refused series for reason %q", reason)
	return 0
}

// Each way a connection is refused is counted under its reason and logged
// at INFO with the reason and the remote address.
func TestRefusalsCountedAndLogged(t *testing.T) {
	e := newEnv(t, 1)
	logs := &logbuf.Buffer{}
	r := e.startReplicaWith("pub-refuse", func(c *Config) {
		c.MaxConnsPerUser = 1
		c.AuthTimeout = 300 * time.Millisecond
		c.AllowedOrigins = []string{"https://app.example"}
	}, logs)
	for _, reason := range monitor.RefusedReasons {
		if v := refusedCount(t, r, reason); v != 0 {
			t.Fatalf("%s = %v at start, want 0", reason, v)
		}
	}
	url := wsURL(r, "")
	refusedDial := func(query string, hdr http.Header) {
		t.Helper()
		u := url
		if query != "" {
			u = wsURL(r, query)
		}
		ws, _, err := websocketDial(u, hdr)
		if err == nil {
			ws.Close()
			t.Fatalf("dial %s succeeded, want a refused upgrade", query)
		}
	}
	refusedDial("", http.Header{"Authorization": {"Bearer garbage"}})
	// A refused access_token upgrades, then gets its error frame and 4001.
	if code := dial(t, r, token(t, "old", -time.Minute)).CloseCode(); code != 4001 {
		t.Fatalf("expired access_token closed %d, want 4001", code)
	}
	refusedDial("", http.Header{"Origin": {"https://evil.example"}})
	// Answered by the server before any WebSocket is set up.
	if code, _ := httpStatus(t, r.http.URL+"/v1/stream", nil); code != http.StatusBadRequest {
		t.Fatalf("plain GET %d, want 400", code)
	}

	dialAuthed(t, r, "bob")
	second := dial(t, r, token(t, "bob", time.Hour))
	if code := second.CloseCode(); code != 4009 {
		t.Fatalf("second connection of bob closed %d, want 4009", code)
	}
	silent := dial(t, r, "")
	if code := silent.CloseCode(); code != 4001 {
		t.Fatalf("connection without auth closed %d, want 4001", code)
	}
	frameAuth := dial(t, r, "")
	frameAuth.Send(map[string]any{"op": "auth", "token": token(t, "carol", -time.Minute)})
	if code := frameAuth.CloseCode(); code != 4001 {
		t.Fatalf("expired auth frame closed %d, want 4001", code)
	}

	want := map[string]float64{
		monitor.RefusedUnauthorized: 1, monitor.RefusedTokenExpired: 2, monitor.RefusedForbiddenOrigin: 1,
		monitor.RefusedBadHandshake: 1, monitor.RefusedUserLimit: 1, monitor.RefusedAuthTimeout: 1,
	}
	poll.Until(t, 10*time.Second, func() error {
		for reason, n := range want {
			if v := refusedCount(t, r, reason); v != n {
				return fmt.Errorf("refused{%s} = %v, want %v", reason, v, n)
			}
		}
		return nil
	})
	for reason := range want {
		if countLines(logs, "level=INFO", `msg="connection refused"`, "reason="+reason, "remote=127.0.0.1:") == 0 {
			t.Errorf("no INFO line for a refusal with reason %s:\n%s", reason, logs.String())
		}
	}
	if strings.Contains(logs.String(), "garbage") {
		t.Error("a refused token was logged")
	}
}

// A full replica and a draining one refuse with their own reasons.
func TestRefusalsFullAndDraining(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplicaWith("pub-full", func(c *Config) { c.MaxConns = 1 }, &logbuf.Buffer{})
	dialAuthed(t, r, "alice")
	if _, resp, err := websocketDial(wsURL(r, "access_token="+token(t, "bob", time.Hour)), nil); err == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second connection: %v, want 503", err)
	}
	if v := refusedCount(t, r, monitor.RefusedFull); v != 1 {
		t.Errorf("refused{full} = %v, want 1", v)
	}
	r.srv.mu.Lock()
	r.srv.draining = true // as Run's drain sets it; the rest of the drain is not needed here
	r.srv.mu.Unlock()
	if _, resp, err := websocketDial(wsURL(r, "access_token="+token(t, "bob", time.Hour)), nil); err == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("connection while draining: %v, want 503", err)
	}
	if v := refusedCount(t, r, monitor.RefusedDraining); v != 1 {
		t.Errorf("refused{draining} = %v, want 1", v)
	}
}

// One line when a connection opens, one when it closes, with who closed it,
// the code and reason, its duration and the events it was sent.
func TestConnectionLogLines(t *testing.T) {
	e := newEnv(t, 1)
	logs := &logbuf.Buffer{}
	r := e.startReplicaWith("pub-log", nil, logs)
	c := dialAuthed(t, r, "dora")
	c.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false})
	e.write("trade:AAPL", 1, 2, 3)
	c.collect(tape.New(t), "trade:AAPL", 3)
	_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"))
	poll.Until(t, 10*time.Second, func() error {
		if countLines(logs, `msg="connection closed"`) == 0 {
			return fmt.Errorf("no close line yet")
		}
		return nil
	})
	if n := countLines(logs, "level=INFO", `msg="connection opened"`, "replica=pub-log", "user=dora", "remote=127.0.0.1:"); n != 1 {
		t.Errorf("%d open lines, want 1:\n%s", n, logs.String())
	}
	if n := countLines(logs, "level=INFO", `msg="connection closed"`, "replica=pub-log", "user=dora", "remote=127.0.0.1:",
		"duration=", "closed_by=client", "close_code=1000", "close_reason=bye", "events_delivered=3"); n != 1 {
		t.Errorf("%d matching close lines, want 1:\n%s", n, logs.String())
	}

	// Closed by the server: the code and reason it sent.
	bad := dialAuthed(t, r, "hal")
	for i := 0; i < 10; i++ {
		bad.SendRaw("{")
	}
	if code := bad.CloseCode(); code != 4000 {
		t.Fatalf("closed %d, want 4000", code)
	}
	poll.Until(t, 10*time.Second, func() error {
		if countLines(logs, `msg="connection closed"`, "user=hal", "closed_by=server", "close_code=4000", `close_reason="too many malformed frames"`) != 1 {
			return fmt.Errorf("no server close line for hal:\n%s", logs.String())
		}
		return nil
	})
}
