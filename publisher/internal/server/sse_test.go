package server

import (
	"github.com/tickwire/tickwire/testkit/wsclient"

	"github.com/tickwire/tickwire/testkit/tape"

	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/poll"
)

// sseMsg is one message of an event stream.
type sseMsg struct {
	event, id string
	data      string
	comment   bool
}

// sseStream reads an event stream as curl -N would.
type sseStream struct {
	t    *testing.T
	resp *http.Response
	msgs chan sseMsg
}

// openSSE opens GET /v1/sse?query with a Bearer token and lastID (if any),
// and returns the stream, or the refusal's status and body.
func openSSE(t *testing.T, r *replica, query, tok, lastID string) (*sseStream, int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.http.URL+"/v1/sse?"+query, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		return nil, resp.StatusCode, string(b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	s := &sseStream{t: t, resp: resp, msgs: make(chan sseMsg, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(s.msgs)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		var m sseMsg
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if m.event != "" || m.comment {
					s.msgs <- m
				}
				m = sseMsg{}
			case strings.HasPrefix(line, ":"):
				m.comment = true
			case strings.HasPrefix(line, "event: "):
				m.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				m.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				if m.data != "" {
					m.data += "\n"
				}
				m.data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	return s, http.StatusOK, ""
}

// next returns the next message that is not a comment (comments when
// comments is true), failing after 10 s.
func (s *sseStream) next(comments bool) sseMsg {
	s.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				s.t.Fatal("stream ended")
			}
			if m.comment != comments {
				continue
			}
			return m
		case <-timeout:
			s.t.Fatal("no message within 10 s")
		}
	}
}

func (m sseMsg) frame(t *testing.T) frame {
	t.Helper()
	var f frame
	if err := json.Unmarshal([]byte(m.data), &f); err != nil {
		t.Fatalf("data %q: %v", m.data, err)
	}
	if f.Type != m.event {
		t.Fatalf("event %q carries a %q frame", m.event, f.Type)
	}
	return f
}

// TestSSELiveAndSnapshot: a stream sends the snapshot, then live events,
// each message with its frame type, the frame's JSON and a position; and a
// ping comment every heartbeat.
func TestSSELiveAndSnapshot(t *testing.T) {
	e := newEnv(t, 1)
	e.write("trade:AAPL", 1)
	r := e.startReplica("pub-1", func(c *Config) { c.Heartbeat = 200 * time.Millisecond })
	s, st, body := openSSE(t, r, "channels=trade:AAPL", token(t, "alice", time.Hour), "")
	if s == nil {
		t.Fatalf("HTTP %d %s", st, body)
	}
	m := s.next(false)
	if f := m.frame(t); m.event != "snapshot" || len(f.Events) != 1 || m.id == "" {
		t.Fatalf("first message %+v, want a snapshot of one event with an id", m)
	}
	e.write("trade:AAPL", 2)
	m = s.next(false)
	if f := m.frame(t); m.event != "events" || len(f.Events) != 1 || f.Events[0].Ch != "trade:AAPL" || m.id == "" {
		t.Fatalf("live message %+v", m)
	}
	s.next(true) // a ping comment within the 10 s
}

// feedIDs returns the entries of kind after pos (per shard), as XRANGE
// reads them, keyed "channel id".
func feedIDs(t *testing.T, e *env, pos []event.ID, kind string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for s := range pos {
		entries, err := e.rdb.XRange(context.Background(), e.layout.Feed(s), "("+pos[s].String(), "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range entries {
			if ch, _ := en.Values["ch"].(string); strings.HasPrefix(ch, kind+":") {
				out[ch+" "+en.ID] = true // ids are per shard: two shards may share one
			}
		}
	}
	return out
}

func parsePos(t *testing.T, id string, shards int) []event.ID {
	t.Helper()
	var out []event.ID
	for i, part := range strings.Split(id, ",") {
		v, ok := strings.CutPrefix(part, fmt.Sprintf("s%d:", i))
		if !ok {
			t.Fatalf("position %q", id)
		}
		p, err := event.ParseID(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	if len(out) != shards {
		t.Fatalf("position %q: want %d shards", id, shards)
	}
	return out
}

// TestSSEResumeWildcard: a stream of trade:* over two shards, resumed with
// Last-Event-ID after events were written meanwhile, gets exactly the
// feeds' trade events after the position (XRANGE), no gap and no
// duplicate, then live ones.
func TestSSEResumeWildcard(t *testing.T) {
	e := newEnv(t, 2)
	r := e.startReplica("pub-1", nil)
	tok := token(t, "alice", time.Hour)
	s, st, body := openSSE(t, r, "channels=trade:*&snapshot=false", tok, "")
	if s == nil {
		t.Fatalf("HTTP %d %s", st, body)
	}
	syms := []string{"AAPL", "MSFT", "NVDA", "TSLA", "IBM", "ORCL"}
	for i, sym := range syms {
		e.write("trade:"+sym, float64(i+1), float64(i+2))
		e.write("quote:"+sym, float64(i+1)) // not subscribed (written as trades data, any kind will do)
	}
	seen := map[string]bool{}
	var last string
	for len(seen) < 2*len(syms) {
		m := s.next(false)
		for _, ev := range m.frame(t).Events {
			k := ev.Ch + " " + ev.ID
			if seen[k] {
				t.Fatalf("event %s twice", k)
			}
			seen[k] = true
		}
		last = m.id
	}
	s.resp.Body.Close()
	for i, sym := range syms { // meanwhile
		e.write("trade:"+sym, float64(i+10), float64(i+11), float64(i+12))
	}
	pos := parsePos(t, last, 2)
	want := feedIDs(t, e, pos, "trade")
	if len(want) != 3*len(syms) {
		t.Fatalf("XRANGE after the position %s has %d trades, want %d", last, len(want), 3*len(syms))
	}
	s2, st, body := openSSE(t, r, "channels=trade:*&snapshot=false", tok, last)
	if s2 == nil {
		t.Fatalf("resume: HTTP %d %s", st, body)
	}
	got := map[string]bool{}
	for len(got) < len(want) {
		m := s2.next(false)
		if m.event != "events" {
			t.Fatalf("resume message %+v", m)
		}
		for _, ev := range m.frame(t).Events {
			k := ev.Ch + " " + ev.ID
			if got[k] || seen[k] {
				t.Fatalf("event %s twice", k)
			}
			if !want[k] {
				t.Fatalf("event %s is not among the feeds' trades after the position", k)
			}
			got[k] = true
		}
	}
	e.write("trade:AAPL", 99) // then live
	m := s2.next(false)
	if f := m.frame(t); len(f.Events) != 1 || f.Events[0].Ch != "trade:AAPL" || got[f.Events[0].Ch+" "+f.Events[0].ID] {
		t.Fatalf("live after resume: %+v", m)
	}
}

// TestSSEGapWhenTrimmed: a position whose entry the feed no longer holds
// gets a gap first, then what is retained.
func TestSSEGapWhenTrimmed(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", nil)
	e.write("trade:AAPL", 1, 2, 3)
	entries, err := e.rdb.XRange(context.Background(), e.layout.Feed(0), "-", "+").Result()
	if err != nil || len(entries) != 3 {
		t.Fatalf("feed: %v %v", entries, err)
	}
	pos := "s0:" + entries[0].ID
	if err := e.rdb.XDel(context.Background(), e.layout.Feed(0), entries[0].ID).Err(); err != nil {
		t.Fatal(err)
	}
	s, st, body := openSSE(t, r, "channels=trade:AAPL", token(t, "alice", time.Hour), pos)
	if s == nil {
		t.Fatalf("HTTP %d %s", st, body)
	}
	if m := s.next(false); m.event != "gap" || m.frame(t).Reason != "trimmed" {
		t.Fatalf("first message %+v, want a gap", m)
	}
	m := s.next(false)
	if f := m.frame(t); m.event != "events" || len(f.Events) != 2 || f.Events[0].ID != entries[1].ID {
		t.Fatalf("after the gap: %+v, want the 2 retained events", m)
	}
}

// TestSSERefusals: every refusal is an HTTP status with the JSON error
// body, before any stream starts.
func TestSSERefusals(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", func(c *Config) { c.MaxConnsPerUser = 1 })
	tok := token(t, "alice", time.Hour)
	for _, tc := range []struct {
		name, query, tok, last string
		status                 int
		code                   string
	}{
		{"no token", "channels=trade:AAPL", "", "", 401, "unauthorized"},
		{"bad token", "channels=trade:AAPL", "x.y.z", "", 401, "unauthorized"},
		{"expired", "channels=trade:AAPL", token(t, "alice", -time.Hour), "", 401, "token_expired"},
		{"forbidden", "channels=trade:TSLA", token(t, "bob", time.Hour, "trade:AAPL"), "", 403, "forbidden"},
		{"invalid channel", "channels=trade:a%20b", tok, "", 400, "invalid_channel"},
		{"no channels", "", tok, "", 400, "bad_request"},
		{"throttle", "channels=trade:AAPL&throttle_ms=10", tok, "", 400, "bad_request"},
		{"position", "channels=trade:AAPL", tok, "s0:x", 400, "bad_request"},
	} {
		s, st, body := openSSE(t, r, tc.query, tc.tok, tc.last)
		if s != nil {
			t.Fatalf("%s: stream opened", tc.name)
		}
		var b httpError
		_ = json.Unmarshal([]byte(body), &b)
		if st != tc.status || b.Code != tc.code {
			t.Errorf("%s: HTTP %d %s, want %d %s", tc.name, st, body, tc.status, tc.code)
		}
	}
	if s, st, body := openSSE(t, r, "channels=trade:AAPL&snapshot=false", tok, ""); s == nil {
		t.Fatalf("first stream: HTTP %d %s", st, body)
	}
	_, st, body := openSSE(t, r, "channels=trade:AAPL", tok, "")
	var b httpError
	_ = json.Unmarshal([]byte(body), &b)
	if st != http.StatusTooManyRequests || b.Code != "rate_limited" {
		t.Errorf("over the user's limit: HTTP %d %s, want 429", st, body)
	}
}

// TestSSEPacedWithQueryToken: a stream with access_token and throttle_ms
// gets every trade, in fewer messages than writes; when it ends, the
// user's connection is counted out (a new stream is allowed again).
func TestSSEPacedWithQueryToken(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", func(c *Config) { c.MaxConnsPerUser = 1 })
	tok := token(t, "alice", time.Hour)
	s, st, body := openSSE(t, r, "channels=trade:AAPL&snapshot=false&throttle_ms=200&access_token="+tok, "", "")
	if s == nil {
		t.Fatalf("HTTP %d %s", st, body)
	}
	const writes = 20
	for i := 0; i < writes; i++ {
		e.write("trade:AAPL", float64(i+1))
	}
	tp := tape.New(t)
	msgs := 0
	for tp.Len("trade:AAPL") < writes {
		m := s.next(false)
		wsclient.Record(tp, m.frame(t).Events)
		msgs++
	}
	if msgs >= writes {
		t.Errorf("%d messages for %d writes: not paced", msgs, writes)
	}
	s.resp.Body.Close()
	waitStreamSlot(t, r, tok)
}

// An event stream over HTTP/1.1 is taken from net/http: once it is
// subscribed, neither its handler nor net/http's background read holds a
// goroutine for it, and it still ends when its client goes (the user's
// one connection is free again).
func TestSSEStreamLeavesNetHTTP(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", func(c *Config) {
		c.MaxConnsPerUser = 1
		c.AllowedOrigins = []string{"https://app.example"}
	})
	// The head the stream writes itself carries CORS's headers.
	req, _ := http.NewRequest(http.MethodGet, r.http.URL+"/v1/sse?channels=trade:AAPL&snapshot=false", nil)
	req.Header.Set("Authorization", "Bearer "+token(t, "bob", time.Hour))
	req.Header.Set("Origin", "https://app.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); resp.StatusCode != http.StatusOK || got != "https://app.example" {
		t.Fatalf("HTTP %d, Access-Control-Allow-Origin %q; want 200 and the page's origin", resp.StatusCode, got)
	}
	tok := token(t, "alice", time.Hour)
	s, st, body := openSSE(t, r, "channels=trade:AAPL&snapshot=false", tok, "")
	if s == nil {
		t.Fatalf("HTTP %d %s", st, body)
	}
	if m := s.next(true); !m.comment {
		t.Fatalf("first message %+v, want the subscribed comment", m)
	}
	if !s.resp.Close {
		t.Error("no Connection: close, want it (the body ends with the connection)")
	}
	poll.Until(t, 10*time.Second, func() error {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		for _, f := range []string{"server.(*Server).serveSSE", "net/http.(*connReader).backgroundRead"} {
			if strings.Contains(stacks, f) {
				return fmt.Errorf("a goroutine still runs %s for the stream", f)
			}
		}
		return nil
	})
	e.write("trade:AAPL", 187.5)
	if f := s.next(false).frame(t); f.Type != "events" || len(f.Events) != 1 {
		t.Fatalf("got %+v, want the event", f)
	}
	s.resp.Body.Close()
	waitStreamSlot(t, r, tok)
}

// Over HTTP/2, which cannot give its connection away, a stream is served
// through net/http as before.
func TestSSEOverHTTP2(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", nil)
	h2 := httptest.NewUnstartedServer(r.http.Config.Handler)
	h2.EnableHTTP2 = true
	h2.StartTLS()
	defer h2.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h2.URL+"/v1/sse?channels=trade:AAPL&snapshot=false", nil)
	req.Header.Set("Authorization", "Bearer "+token(t, "alice", time.Hour))
	resp, err := h2.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Fatalf("HTTP %d over %s, want 200 over HTTP/2", resp.StatusCode, resp.Proto)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	want := func(prefix string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("stream ended before %q", prefix)
				}
				if strings.HasPrefix(l, prefix) {
					return
				}
			case <-timeout:
				t.Fatalf("no %q within 10 s", prefix)
			}
		}
	}
	want(": subscribed")
	e.write("trade:AAPL", 187.5)
	want(`data: {"type":"events"`)
	cancel()
	for range lines { // the reader ends with the stream
	}
}

// The drain ends a stream taken from net/http: the replica stops, and the
// client's stream ends.
func TestSSEDrainEndsStream(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", nil)
	s, st, body := openSSE(t, r, "channels=trade:AAPL&snapshot=false", token(t, "alice", time.Hour), "")
	if s == nil {
		t.Fatalf("HTTP %d %s", st, body)
	}
	s.next(true) // subscribed
	stopped := make(chan struct{})
	go func() { r.stop(); close(stopped) }()
	timeout := time.After(10 * time.Second)
	for ended := false; !ended; {
		select {
		case _, ok := <-s.msgs:
			ended = !ok
		case <-timeout:
			t.Fatal("stream not ended 10 s into the drain")
		}
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("replica not stopped 10 s after its stream ended")
	}
}

// waitStreamSlot waits until the user of tok, whose limit is one
// connection, can open a stream again: its last one has ended.
func waitStreamSlot(t *testing.T, r *replica, tok string) {
	t.Helper()
	poll.Until(t, 10*time.Second, func() error {
		s, st, body := openSSE(t, r, "channels=trade:AAPL&snapshot=false", tok, "")
		if s == nil {
			return fmt.Errorf("HTTP %d %s", st, body)
		}
		s.resp.Body.Close()
		return nil
	})
}
