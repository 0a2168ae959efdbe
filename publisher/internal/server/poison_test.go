package server

import (
	"context"
	"fmt"
	stdlog "log"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/obs"
	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/testkit/logbuf"
	"github.com/tickwire/tickwire/testkit/tape"
)

// What Redis hands the publisher can be hostile too: entries written by
// hand that do not follow the layout, junk in the channel sets, keys of the
// wrong type, and a Redis that wants a password.

const badEntriesMetric = "tickwire_publisher_bad_entries_total"

// xadd appends an entry with the given fields as they are, and returns its id.
func (e *env) xadd(key string, fields ...any) string {
	e.t.Helper()
	id, err := e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: key, Values: fields}).Result()
	if err != nil {
		e.t.Fatalf("xadd %s: %v", key, err)
	}
	return id
}

// goodFields are the fields of a well-formed trade entry of ch.
func goodFields(ch string, price float64) []any {
	return []any{"ch", ch, "ts", strconv.FormatInt(time.Now().UnixMilli(), 10), "data", fmt.Sprintf(`{"price":%g,"size":1}`, price)}
}

// metricValue sums the series of a metric of r's registry.
func metricValue(t *testing.T, r *replica, name string) float64 {
	t.Helper()
	mfs, err := r.srv.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// eventsUntil reads events frames until the event with id last, and
// returns every event read.
func (c *client) eventsUntil(last string) []wireEvent {
	c.t.Helper()
	var out []wireEvent
	for {
		f := c.Read()
		switch f.Type {
		case "events", "snapshot":
			out = append(out, f.Events...)
			for _, ev := range f.Events {
				if ev.ID == last {
					return out
				}
			}
		case "error":
			c.t.Fatalf("error frame: %+v", f)
		}
	}
}

func idsOf(evs []wireEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Ch + "@" + ev.ID
	}
	return out
}

// Poison entries in the feed, each between two good ones: the client gets
// exactly the good ones, in order; each bad one is counted, acknowledged,
// and does not stop the reader.
func TestPoisonFeedEntries(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", nil)
	c := dialAuthed(t, r, "alice")
	c.Subscribe(map[string]any{"channels": []string{"trade:*", "quote:*", "bar:*", "signal:*"}, "snapshot": false})
	feed := e.layout.Feed(0)
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	data := `{"price":1,"size":1}`
	big := `{"price":1,"pad":"` + strings.Repeat("x", event.MaxDataSize) + `"}`

	tests := []struct {
		name   string
		fields []any
		bug    string // a bug this case once showed, fixed since
	}{
		{"missing ch", []any{"ts", ts, "data", data}, ""},
		{"missing ts", []any{"ch", "trade:AAPL", "data", data}, ""},
		{"missing data", []any{"ch", "trade:AAPL", "ts", ts}, ""},
		{"only unknown fields", []any{"foo", "bar"}, ""},
		{"empty ch", []any{"ch", "", "ts", ts, "data", data}, ""},
		{"unknown kind", []any{"ch", "swap:AAPL", "ts", ts, "data", data}, ""},
		{"wildcard channel", []any{"ch", "trade:*", "ts", ts, "data", data}, ""},
		{"everything pattern", []any{"ch", "*", "ts", ts, "data", data}, ""},
		{"bad symbol", []any{"ch", "trade:AA PL", "ts", ts, "data", data}, ""},
		{"symbol too long", []any{"ch", "trade:" + strings.Repeat("A", 17), "ts", ts, "data", data}, ""},
		{"binary channel", []any{"ch", "trade:\x00\xff", "ts", ts, "data", data}, ""},
		{"ts not a number", []any{"ch", "trade:AAPL", "ts", "soon", "data", data}, ""},
		{"ts a fraction", []any{"ch", "trade:AAPL", "ts", "1.5", "data", data}, ""},
		{"ts negative", []any{"ch", "trade:AAPL", "ts", "-1", "data", data}, ""},
		{"ts with a plus sign", []any{"ch", "trade:AAPL", "ts", "+1", "data", data}, ""},
		{"ts empty", []any{"ch", "trade:AAPL", "ts", "", "data", data}, ""},
		{"ts overflowing", []any{"ch", "trade:AAPL", "ts", "99999999999999999999", "data", data}, ""},
		{"data bad JSON", []any{"ch", "trade:AAPL", "ts", ts, "data", `{"price":`}, ""},
		{"data an array", []any{"ch", "trade:AAPL", "ts", ts, "data", `[1,2]`}, ""},
		{"data a string", []any{"ch", "trade:AAPL", "ts", ts, "data", `"x"`}, ""},
		{"data a number", []any{"ch", "trade:AAPL", "ts", ts, "data", `42`}, ""},
		{"data null", []any{"ch", "trade:AAPL", "ts", ts, "data", `null`}, ""},
		{"data empty", []any{"ch", "trade:AAPL", "ts", ts, "data", ``}, ""},
		{"data two objects", []any{"ch", "trade:AAPL", "ts", ts, "data", `{}{}`}, ""},
		{"data with a raw control character", []any{"ch", "trade:AAPL", "ts", ts, "data", "{\"a\":\"\x01\"}"}, ""},
		{"data over 16 KiB", []any{"ch", "trade:AAPL", "ts", ts, "data", big}, ""},
		{"data not UTF-8", []any{"ch", "trade:AAPL", "ts", ts, "data", "{\"price\":1,\"size\":1,\"note\":\"\xff\xfe\"}"},
			"event.CheckData accepts data that is not UTF-8 (json.Valid does not check it); the publisher forwards it in a text frame, which docs/protocol.md forbids and browsers fail the whole connection on"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := newClient(t, c.ws)
			before := metricValue(t, r, badEntriesMetric)
			g1 := e.xadd(feed, goodFields("trade:AAPL", float64(2*i))...)
			e.xadd(feed, tt.fields...)
			g2 := e.xadd(feed, goodFields("quote:MSFT", float64(2*i+1))...)
			got := idsOf(cc.eventsUntil(g2))
			if want := []string{"trade:AAPL@" + g1, "quote:MSFT@" + g2}; !slices.Equal(got, want) {
				t.Fatalf("received %v, want only the good entries %v", got, want)
			}
			poll.Until(t, 10*time.Second, func() error {
				if n := metricValue(t, r, badEntriesMetric); n != before+1 {
					return fmt.Errorf("%s = %v, want %v", badEntriesMetric, n, before+1)
				}
				return nil
			})
		})
	}

	t.Run("lower-case channel is normalised", func(t *testing.T) {
		cc := newClient(t, c.ws)
		id := e.xadd(feed, "ch", "TRADE:brk.b", "ts", ts, "data", data)
		if got := idsOf(cc.eventsUntil(id)); !slices.Equal(got, []string{"trade:BRK.B@" + id}) {
			t.Fatalf("received %v", got)
		}
	})

	t.Run("a flood of poison", func(t *testing.T) {
		cc := newClient(t, c.ws)
		before := metricValue(t, r, badEntriesMetric)
		const n = 2500 // more than one XREADGROUP's count
		pipe := e.rdb.Pipeline()
		for j := 0; j < n; j++ {
			pipe.XAdd(context.Background(), &redis.XAddArgs{Stream: feed, Values: []any{"ch", "swap:X", "ts", ts, "data", data}})
		}
		if _, err := pipe.Exec(context.Background()); err != nil {
			t.Fatal(err)
		}
		g := e.xadd(feed, goodFields("trade:AAPL", 1)...)
		if got := idsOf(cc.eventsUntil(g)); len(got) != 1 {
			t.Fatalf("received %v, want only %s", got, g)
		}
		poll.Until(t, 10*time.Second, func() error {
			if got := metricValue(t, r, badEntriesMetric); got != before+n {
				return fmt.Errorf("%s = %v, want %v", badEntriesMetric, got, before+n)
			}
			return nil
		})
	})

	// The reader goes on with the real writer's entries, and every entry,
	// bad ones included, was acknowledged.
	tp := tape.New(t)
	e.write("trade:AAPL", 1, 2, 3)
	c.collect(tp, "trade:AAPL", 3)
	last, err := e.rdb.XRevRangeN(context.Background(), feed, "+", "-", 1).Result()
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() error {
		groups, err := e.rdb.XInfoGroups(context.Background(), feed).Result()
		if err != nil {
			return err
		}
		if len(groups) != 1 || groups[0].Pending != 0 || groups[0].LastDeliveredID != last[0].ID {
			return fmt.Errorf("groups %+v, want one with nothing pending, delivered up to %s", groups, last[0].ID)
		}
		return nil
	})
	if err := r.srv.Ready(); err != nil {
		t.Fatalf("not ready: %v", err)
	}
	_, body := httpStatus(t, r.http.URL+"/metrics", nil)
	if want := fmt.Sprintf("\n%s %v\n", badEntriesMetric, metricValue(t, r, badEntriesMetric)); !strings.Contains(body, want) {
		t.Fatalf("/metrics lacks %q", want)
	}
}

// Poison entries in a channel's history are skipped by the snapshot and by
// a resume, and so is junk in the channel sets.
func TestPoisonHistoryEntries(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", nil)
	ctx := context.Background()
	hist := func(ch string) string {
		c, err := event.ParseChannel(ch)
		if err != nil {
			t.Fatal(err)
		}
		return e.layout.History(c)
	}
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	aapl := hist("trade:AAPL")
	g1 := e.xadd(aapl, goodFields("trade:AAPL", 1)...)
	e.xadd(aapl, "ch", "trade:AAPL", "ts", ts)
	e.xadd(aapl, "ch", "trade:AAPL", "ts", ts, "data", `{"price":`)
	g2 := e.xadd(aapl, goodFields("trade:AAPL", 2)...)
	e.xadd(aapl, "ch", "trade:*", "ts", ts, "data", `{}`)
	e.xadd(aapl, "ch", "trade:AAPL", "ts", "x", "data", `{}`)
	g3 := e.xadd(aapl, goodFields("trade:AAPL", 3)...)
	msft := hist("trade:MSFT")
	m1 := e.xadd(msft, goodFields("trade:MSFT", 4)...)
	e.xadd(msft, "ch", "trade:MSFT", "ts", ts, "data", `[]`) // the latest is poison
	if err := e.rdb.SAdd(ctx, e.layout.Channels(0), "trade:AAPL", "trade:MSFT").Err(); err != nil {
		t.Fatal(err)
	}

	t.Run("resume", func(t *testing.T) {
		c := dialAuthed(t, r, "alice")
		sub := c.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "since": map[string]string{"trade:AAPL": g1}})
		if !sub.Recovered["trade:AAPL"] {
			t.Fatalf("subscribed %+v, want recovered", sub)
		}
		if got, want := idsOf(c.eventsUntil(g3)), []string{"trade:AAPL@" + g2, "trade:AAPL@" + g3}; !slices.Equal(got, want) {
			t.Fatalf("replayed %v, want %v", got, want)
		}
	})
	t.Run("snapshot", func(t *testing.T) {
		c := dialAuthed(t, r, "bob")
		c.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}})
		if f := c.Read(); f.Type != "snapshot" || !slices.Equal(idsOf(f.Events), []string{"trade:AAPL@" + g3}) {
			t.Fatalf("got %+v, want a snapshot of %s", f, g3)
		}
	})
	t.Run("snapshot when the latest entry is poison", func(t *testing.T) {
		c := dialAuthed(t, r, "carol")
		c.Subscribe(map[string]any{"channels": []string{"trade:MSFT"}})
		c.Send(map[string]string{"op": "ping"}) // a pong first: no snapshot
		if f := c.Read(); f.Type != "snapshot" || !slices.Equal(idsOf(f.Events), []string{"trade:MSFT@" + m1}) {
			t.Fatalf("got %+v, want a snapshot of %s", f, m1)
		}
	})
	t.Run("junk in the channel sets", func(t *testing.T) {
		if err := e.rdb.SAdd(ctx, e.layout.Channels(0), "garbage", "trade:*", "*", "swap:X", "", "TRADE:aapl", "trade:NOHISTORY").Err(); err != nil {
			t.Fatal(err)
		}
		c := dialAuthed(t, r, "dave")
		c.Subscribe(map[string]any{"channels": []string{"trade:*"}})
		f := c.Read()
		if f.Type != "snapshot" || !slices.Contains(idsOf(f.Events), "trade:AAPL@"+g3) {
			t.Fatalf("got %+v, want a snapshot with %s", f, g3)
		}
		for _, ev := range f.Events {
			if ev.Ch != "trade:AAPL" && ev.Ch != "trade:MSFT" {
				t.Fatalf("snapshot has %s", ev.Ch)
			}
		}
	})
	t.Run("history key of the wrong type", func(t *testing.T) {
		if err := e.rdb.Set(ctx, hist("trade:BAD"), "not a stream", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := e.rdb.SAdd(ctx, e.layout.Channels(e.layout.Shard("BAD")), "trade:BAD").Err(); err != nil {
			t.Fatal(err)
		}
		c := dialAuthed(t, r, "erin")
		c.Subscribe(map[string]any{"channels": []string{"trade:*"}})
		if f := c.Read(); f.Type != "snapshot" || !slices.Contains(idsOf(f.Events), "trade:AAPL@"+g3) {
			t.Fatalf("got %+v, want a snapshot with %s", f, g3)
		}
	})
	if n := metricValue(t, r, badEntriesMetric); n < 4 {
		t.Fatalf("%s = %v, want the poison read counted", badEntriesMetric, n)
	}
}

// redisLogTo routes go-redis's process-wide log into log for the rest of
// the test, as main does, and back to stderr after it.
func redisLogTo(t *testing.T, logs *logbuf.Buffer) {
	redis.SetLogger(obs.RedisLogger{Log: slogTo(logs)})
	t.Cleanup(func() { redis.SetLogger(stderrRedisLog{}) })
}

type stderrRedisLog struct{}

func (stderrRedisLog) Printf(_ context.Context, format string, v ...any) {
	stdlog.Printf("redis: "+format, v...)
}

// A Redis with a password: the password in REDIS_URL works; a wrong or
// missing one leaves the replica not ready, and no password shows in its
// log, its readiness, its metrics or its error frames.
func TestRedisPassword(t *testing.T) {
	const pass, wrong = "pw-3f9c1e7a-redis", "wrong-81d2c4-pw"
	e := newEnvWith(t, 1, redistest.Options{RequirePass: pass})
	redisLogs := &logbuf.Buffer{}
	redisLogTo(t, redisLogs) // before the replicas: restored after they stop
	noSecrets := func(t *testing.T, where, text string) {
		t.Helper()
		for _, s := range []string{pass, wrong} {
			if strings.Contains(text, s) {
				t.Fatalf("%s contains a password:\n%s", where, text)
			}
		}
	}

	t.Run("right password", func(t *testing.T) {
		logs := &logbuf.Buffer{}
		r := e.launch(t, "pub-ok", nil, logs)
		waitReady(t, r)
		c := dialAuthed(t, r, "alice")
		c.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}})
		e.write("trade:AAPL", 1, 2)
		c.collect(tape.New(t), "trade:AAPL", 2)
		noSecrets(t, "log", logs.String())
	})
	for i, tt := range []struct{ name, url string }{
		{"wrong password", "redis://:" + wrong + "@" + e.redis.Addr() + "/0"},
		{"wrong user and password", "redis://bob:" + wrong + "@" + e.redis.Addr() + "/0"},
		{"no password", "redis://" + e.redis.Addr() + "/0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var cfg Config
			logs := &logbuf.Buffer{}
			r := e.launch(t, fmt.Sprint("pub-bad-", i), func(c *Config) { c.RedisURL = tt.url; cfg = *c }, logs)
			// Wait until Redis has refused it, and the refusal was logged.
			poll.Until(t, 10*time.Second, func() error {
				if s := logs.String(); !strings.Contains(s, "WRONGPASS") && !strings.Contains(s, "NOAUTH") {
					return errNotYet("no refusal logged yet")
				}
				return nil
			})
			err := r.srv.Ready()
			if err == nil {
				t.Fatal("ready with a bad Redis password")
			}
			noSecrets(t, "Ready error", err.Error())
			status, body := httpStatus(t, r.http.URL+"/readyz", nil)
			if status != 503 {
				t.Fatalf("/readyz = %d %s, want 503", status, body)
			}
			noSecrets(t, "/readyz", body)
			_, metrics := httpStatus(t, r.http.URL+"/metrics", nil)
			noSecrets(t, "/metrics", metrics)
			noSecrets(t, "redacted config", fmt.Sprintf("%+v", cfg.Redacted()))

			// Clients can connect, but a subscribe that needs history fails
			// without saying more than it should.
			c := dialAuthed(t, r, "bob")
			c.Send(map[string]any{"op": "subscribe", "id": "s", "channels": []string{"trade:AAPL"}})
			f, raw := c.readRaw()
			if f.Type != "error" || f.Code != "internal" {
				t.Fatalf("got %s, want an internal error", raw)
			}
			noSecrets(t, "error frame", string(raw))
			noSecrets(t, "log", logs.String())
		})
	}
	noSecrets(t, "go-redis log", redisLogs.String())
}
