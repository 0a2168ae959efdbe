package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/publisher/internal/feed"
	"github.com/tickwire/tickwire/shared/event"
)

type historyBody struct {
	Channel string      `json:"channel"`
	Events  []wireEvent `json:"events"`
	Code    string      `json:"code"`
	Message string      `json:"message"`
}

// getHistory calls GET /v1/history with query q and the token as a Bearer
// header ("" for none).
func getHistory(t *testing.T, r *replica, q, tok string, hdr http.Header) (int, historyBody, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.http.URL+"/v1/history?"+q, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b historyBody
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil && resp.StatusCode != http.StatusNoContent {
		t.Fatalf("decode history answer (HTTP %d): %v", resp.StatusCode, err)
	}
	return resp.StatusCode, b, resp.Header
}

// xrangeIDs is the channel's history as Redis has it, oldest first.
func (e *env) xrangeIDs(ch string) []string {
	e.t.Helper()
	c, _ := event.ParseChannel(ch)
	entries, err := e.rdb.XRange(context.Background(), e.layout.History(c), "-", "+").Result()
	if err != nil {
		e.t.Fatal(err)
	}
	ids := make([]string, len(entries))
	for i, m := range entries {
		ids[i] = m.ID
	}
	return ids
}

func ids(evs []wireEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func equalIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d ids, want %d\n got %v\nwant %v", what, len(got), len(want), got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: id %d is %s, want %s", what, i, got[i], want[i])
		}
	}
}

func TestHistoryPaging(t *testing.T) {
	e := newEnv(t, 2)
	prices := make([]float64, 250)
	for i := range prices {
		prices[i] = 100 + float64(i)
	}
	e.write("trade:AAPL", prices...)
	e.write("trade:MSFT", 1, 2, 3)
	all := e.xrangeIDs("trade:AAPL")
	r := e.startReplica("h1", nil)
	tok := token(t, "alice", time.Hour)

	// Neither: the latest 100, oldest first, of that channel only.
	st, b, h := getHistory(t, r, "channel=trade:aapl", tok, nil)
	if st != http.StatusOK || b.Channel != "trade:AAPL" {
		t.Fatalf("HTTP %d %+v", st, b)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	equalIDs(t, "latest", ids(b.Events), all[150:])
	var d event.Trade
	if err := json.Unmarshal(b.Events[99].Data, &d); err != nil || d.Price != 349 || b.Events[0].Ch != "trade:AAPL" || b.Events[0].TS == 0 {
		t.Fatalf("last event %+v (%v)", b.Events[99], err)
	}

	// before: paging back from the oldest of that page.
	_, b, _ = getHistory(t, r, "channel=trade:AAPL&limit=120&before="+all[150], tok, nil)
	equalIDs(t, "before", ids(b.Events), all[30:150])
	_, b, _ = getHistory(t, r, "channel=trade:AAPL&limit=120&before="+all[30], tok, nil)
	equalIDs(t, "before, first page", ids(b.Events), all[:30])

	// after: paging forward, to the end.
	_, b, _ = getHistory(t, r, "channel=trade:AAPL&limit=1000&after="+all[9], tok, nil)
	equalIDs(t, "after", ids(b.Events), all[10:])
	_, b, _ = getHistory(t, r, "channel=trade:AAPL&limit=1&after="+all[9], tok, nil)
	equalIDs(t, "after, limit 1", ids(b.Events), all[10:11])
	_, b, _ = getHistory(t, r, "channel=trade:AAPL&after="+all[249], tok, nil)
	equalIDs(t, "after the last", ids(b.Events), nil)
	// after=0-0: the oldest retained (the demo page's day reference).
	_, b, _ = getHistory(t, r, "channel=trade:AAPL&limit=2&after=0-0", tok, nil)
	equalIDs(t, "after 0-0", ids(b.Events), all[:2])

	// A channel with no history: an empty list, not null.
	st, b, _ = getHistory(t, r, "channel=bar:NONE", tok, nil)
	if st != http.StatusOK || b.Events == nil || len(b.Events) != 0 {
		t.Fatalf("empty channel: HTTP %d %+v", st, b)
	}

	// access_token in the query works as on the WebSocket.
	st, b, _ = getHistory(t, r, "channel=trade:MSFT&access_token="+url.QueryEscape(tok), "", nil)
	if st != http.StatusOK {
		t.Fatalf("access_token: HTTP %d %+v", st, b)
	}
	equalIDs(t, "MSFT", ids(b.Events), e.xrangeIDs("trade:MSFT"))
}

// Entries that do not decode are skipped, and a history key of another
// type reads as empty, as for snapshots and resumes.
func TestHistoryBadEntries(t *testing.T) {
	e := newEnv(t, 1)
	e.write("trade:AAPL", 1, 2)
	c, _ := event.ParseChannel("trade:AAPL")
	key := e.layout.History(c)
	ctx := context.Background()
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"junk", "x"}}).Err(); err != nil {
		t.Fatal(err)
	}
	wrong, _ := event.ParseChannel("trade:BAD")
	if err := e.rdb.Set(ctx, e.layout.History(wrong), "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	all := e.xrangeIDs("trade:AAPL")
	r := e.startReplica("h1", nil)
	tok := token(t, "alice", time.Hour)
	st, b, _ := getHistory(t, r, "channel=trade:AAPL", tok, nil)
	if st != 200 {
		t.Fatalf("HTTP %d %+v", st, b)
	}
	if len(all) != 3 {
		t.Fatalf("history %v, want 2 events and the bad entry", all)
	}
	equalIDs(t, "without the bad entry", ids(b.Events), all[:2])
	st, b, _ = getHistory(t, r, "channel=trade:BAD", tok, nil)
	if st != 200 || b.Events == nil || len(b.Events) != 0 {
		t.Fatalf("wrong type: HTTP %d %+v", st, b)
	}
}

func TestHistoryRefusals(t *testing.T) {
	e := newEnv(t, 1)
	e.write("trade:AAPL", 1)
	r := e.startReplica("h1", nil)
	tok := token(t, "alice", time.Hour, "trade:AAPL", "bar:*")
	cases := []struct {
		name, q, tok string
		status       int
		code         string
	}{
		{"no token", "channel=trade:AAPL", "", 401, "unauthorized"},
		{"bad token", "channel=trade:AAPL", "not-a-jwt", 401, "unauthorized"},
		{"expired token", "channel=trade:AAPL", token(t, "alice", -time.Minute), 401, "token_expired"},
		{"no channel", "", tok, 400, "bad_request"},
		{"malformed channel", "channel=nope:AAPL", tok, 400, "invalid_channel"},
		{"wildcard", "channel=bar:*", tok, 400, "bad_request"},
		{"limit 0", "channel=trade:AAPL&limit=0", tok, 400, "bad_request"},
		{"limit 1001", "channel=trade:AAPL&limit=1001", tok, 400, "bad_request"},
		{"limit x", "channel=trade:AAPL&limit=x", tok, 400, "bad_request"},
		{"bad after", "channel=trade:AAPL&after=x-1", tok, 400, "bad_request"},
		{"after and before", "channel=trade:AAPL&after=1-0&before=2-0", tok, 400, "bad_request"},
		{"forbidden", "channel=trade:MSFT", tok, 403, "forbidden"},
		{"claim covers", "channel=bar:MSFT&limit=1000", tok, 200, ""},
	}
	for _, c := range cases {
		st, b, _ := getHistory(t, r, c.q, c.tok, nil)
		if st != c.status || b.Code != c.code {
			t.Errorf("%s: HTTP %d %q (%s), want %d %q", c.name, st, b.Code, b.Message, c.status, c.code)
		}
	}
}

func TestHistoryRateAndReadBound(t *testing.T) {
	e := newEnv(t, 1)
	e.write("trade:AAPL", 1)
	r := e.startReplica("h1", nil)
	// A rate so slow that no token comes back during the test.
	r.srv.history.setRate(0.001, 3)
	alice, bob := token(t, "alice", time.Hour), token(t, "bob", time.Hour)
	for i := 0; i < 3; i++ {
		if st, b, _ := getHistory(t, r, "channel=trade:AAPL", alice, nil); st != 200 {
			t.Fatalf("request %d: HTTP %d %+v", i, st, b)
		}
	}
	st, b, h := getHistory(t, r, "channel=trade:AAPL", alice, nil)
	if st != http.StatusTooManyRequests || b.Code != "rate_limited" || h.Get("Retry-After") == "" {
		t.Fatalf("4th request: HTTP %d %+v", st, b)
	}
	// Per user: bob is not limited by alice's requests.
	if st, b, _ := getHistory(t, r, "channel=trade:AAPL", bob, nil); st != 200 {
		t.Fatalf("bob: HTTP %d %+v", st, b)
	}

	// No read slot free: 429 after the wait, not a request held forever.
	// The slots are the replica's, shared with the WebSocket's history
	// reads: with all of them taken, a snapshot cannot be read either.
	r.srv.history.setRate(100, 100)
	for i := 0; i < feed.ConcurrentReads; i++ {
		if err := r.srv.reads.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	st, b, _ = getHistory(t, r, "channel=trade:AAPL", alice, nil)
	if st != http.StatusTooManyRequests || b.Code != "rate_limited" {
		t.Fatalf("no read slot: HTTP %d %+v", st, b)
	}
	c := dialAuthed(t, r, "carol")
	c.Send(map[string]any{"op": "subscribe", "id": "s", "channels": []string{"trade:AAPL"}})
	if f := c.Read(); f.Type != "error" || f.Code != "internal" {
		t.Fatalf("subscribe with every read slot taken: %+v, want internal", f)
	}
	for i := 0; i < feed.ConcurrentReads; i++ {
		r.srv.reads.Release()
	}
	if st, b, _ := getHistory(t, r, "channel=trade:AAPL", alice, nil); st != 200 {
		t.Fatalf("slots free again: HTTP %d %+v", st, b)
	}
	c.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}})
}

func TestHistoryUserRatesBounded(t *testing.T) {
	u := newUserRates(1, 2, 100)
	now := time.Now()
	for i := 0; i < 1000; i++ {
		u.Allow("user"+strconv.Itoa(i), now)
	}
	if n := u.Len(); n > 100 {
		t.Fatalf("%d users tracked, want at most 100", n)
	}
	// Idle users are forgotten first, and a busy one keeps its state.
	u = newUserRates(1, 2, 2)
	u.Allow("busy", now)
	u.Allow("busy", now)
	u.Allow("idle", now.Add(-time.Hour))
	if u.Allow("busy", now) {
		t.Fatal("busy user allowed a third request in its burst of 2")
	}
	u.Allow("new", now)
	if u.Allow("busy", now) {
		t.Fatal("busy user's bucket was reset although an idle user could be dropped")
	}
}

func TestHistoryCORS(t *testing.T) {
	e := newEnv(t, 1)
	e.write("trade:AAPL", 1)
	r := e.startReplica("h1", func(c *Config) { c.AllowedOrigins = []string{"https://app.example"} })
	tok := token(t, "alice", time.Hour)

	st, _, h := getHistory(t, r, "channel=trade:AAPL", tok, http.Header{"Origin": {"https://app.example"}})
	if st != 200 || h.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("allowed origin: HTTP %d, headers %v", st, h)
	}
	st, b, _ := getHistory(t, r, "channel=trade:AAPL", tok, http.Header{"Origin": {"https://evil.example"}})
	if st != http.StatusForbidden || b.Code != "forbidden" {
		t.Fatalf("refused origin: HTTP %d %+v", st, b)
	}

	// The preflight of a fetch with an Authorization header.
	req, _ := http.NewRequest(http.MethodOptions, r.http.URL+"/v1/history?channel=trade:AAPL", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "authorization")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Headers") != "Authorization" ||
		resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("preflight: HTTP %d %v", resp.StatusCode, resp.Header)
	}

	// The JavaScript client, same rule.
	for origin, want := range map[string]string{"https://app.example": "https://app.example", "https://evil.example": ""} {
		st, _ := httpStatusHeader(t, r.http.URL+"/tickwire.js", origin)
		if st.code != 200 || st.acao != want {
			t.Fatalf("/tickwire.js from %s: HTTP %d, ACAO %q, want %q", origin, st.code, st.acao, want)
		}
	}
}

type corsAnswer struct {
	code int
	acao string
}

func httpStatusHeader(t *testing.T, u, origin string) (corsAnswer, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Origin", origin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return corsAnswer{resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin")}, resp.Header
}
