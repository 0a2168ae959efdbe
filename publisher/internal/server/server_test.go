package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/streams"
	"github.com/tickwire/tickwire/testkit/tape"
	"github.com/tickwire/tickwire/testkit/wsclient"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Two replicas, one client on each, same channel: both receive the same
// events. A group shared by the replicas would split the events between
// them and this would fail.
func TestReplicasReceiveSameEvents(t *testing.T) {
	e := newEnv(t, 2)
	r1 := e.startReplica("pub-1", nil)
	r2 := e.startReplica("pub-2", nil)
	c1 := dialAuthed(t, r1, "alice")
	c2 := dialAuthed(t, r2, "bob")
	for _, c := range []*client{c1, c2} {
		c.Subscribe(map[string]any{"channels": []string{"trade:AAPL", "trade:*"}, "snapshot": false})
	}
	const n = 200
	for i := 0; i < n; i += 20 {
		prices := make([]float64, 20)
		for j := range prices {
			prices[j] = float64(100 + i + j)
		}
		e.write("trade:AAPL", prices...)
		e.write("trade:msft", prices...)
	}
	t1, t2 := tape.New(t), tape.New(t)
	c1.collect(t1, "trade:AAPL", n)
	c1.collect(t1, "trade:MSFT", n)
	c2.collect(t2, "trade:AAPL", n)
	c2.collect(t2, "trade:MSFT", n)
	for _, ch := range []string{"trade:AAPL", "trade:MSFT"} {
		if !slices.Equal(t1.IDs(ch), t2.IDs(ch)) {
			t.Fatalf("%s: replicas delivered different events:\n%v\n%v", ch, t1.IDs(ch), t2.IDs(ch))
		}
		if len(t1.IDs(ch)) != n {
			t.Fatalf("%s: %d events, want %d (each once)", ch, len(t1.IDs(ch)), n)
		}
	}
	groups, err := e.rdb.XInfoGroups(context.Background(), e.layout.Feed(0)).Result()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range groups {
		names = append(names, g.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"publisher:pub-1", "publisher:pub-2"}) {
		t.Fatalf("groups = %v, want one per replica", names)
	}
}

func TestSnapshotBeforeLive(t *testing.T) {
	e := newEnv(t, 1)
	e.write("trade:AAPL", 1, 2, 3)
	e.write("trade:MSFT", 4)
	e.write("quote:AAPL", 5)
	r := e.startReplica("pub-1", nil)
	c := dialAuthed(t, r, "alice")
	c.Subscribe(map[string]any{"id": "s1", "channels": []string{"trade:*", "quote:AAPL", "bar:AAPL"}})
	snap := c.Read()
	if snap.Type != "snapshot" {
		t.Fatalf("after subscribed got %+v, want snapshot", snap)
	}
	got := map[string]int{}
	for _, ev := range snap.Events {
		got[ev.Ch]++
	}
	want := map[string]int{"trade:AAPL": 1, "trade:MSFT": 1, "quote:AAPL": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("snapshot channels %v, want %v", got, want)
	}
	tp := tape.New(t)
	wsclient.Record(tp, snap.Events)
	e.write("trade:AAPL", 6)
	c.collect(tp, "trade:AAPL", 2)
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", func(c *Config) { c.AuthTimeout = 300 * time.Millisecond; c.JWTLeeway = 0 })

	t.Run("query parameter", func(t *testing.T) {
		c := dial(t, r, token(t, "alice", time.Hour))
		if f := c.Read(); f.Type != "welcome" || f.User != "alice" || f.Replica != "pub-1" {
			t.Fatalf("got %+v, want welcome for alice from pub-1", f)
		}
	})
	t.Run("header", func(t *testing.T) {
		hdr := http.Header{"Authorization": {"Bearer " + token(t, "bob", time.Hour)}}
		ws, _, err := websocketDial(wsURL(r, ""), hdr)
		if err != nil {
			t.Fatal(err)
		}
		c := newClient(t, ws)
		t.Cleanup(func() { _ = ws.Close() })
		if f := c.Read(); f.Type != "welcome" || f.User != "bob" {
			t.Fatalf("got %+v, want welcome for bob", f)
		}
	})
	t.Run("first frame", func(t *testing.T) {
		c := dial(t, r, "")
		c.Send(map[string]string{"op": "auth", "id": "a", "token": token(t, "carol", time.Hour)})
		if f := c.Read(); f.Type != "welcome" || f.User != "carol" || f.ID != "a" {
			t.Fatalf("got %+v, want welcome for carol", f)
		}
		c.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}})
	})
	t.Run("never authenticates", func(t *testing.T) {
		c := dial(t, r, "")
		f := c.Read()
		if f.Type != "error" || f.Code != "unauthorized" {
			t.Fatalf("got %+v, want unauthorized error", f)
		}
		if code := c.CloseCode(); code != 4001 {
			t.Fatalf("close code %d, want 4001", code)
		}
	})
	t.Run("frame before auth", func(t *testing.T) {
		c := dial(t, r, "")
		c.Send(map[string]any{"op": "subscribe", "channels": []string{"trade:AAPL"}})
		if f := c.Read(); f.Code != "unauthorized" {
			t.Fatalf("got %+v, want unauthorized", f)
		}
		if code := c.CloseCode(); code != 4001 {
			t.Fatalf("close code %d, want 4001", code)
		}
	})
	t.Run("bad first-frame token", func(t *testing.T) {
		c := dial(t, r, "")
		c.Send(map[string]string{"op": "auth", "token": "not.a.jwt"})
		if f := c.Read(); f.Code != "unauthorized" {
			t.Fatalf("got %+v, want unauthorized", f)
		}
		if code := c.CloseCode(); code != 4001 {
			t.Fatalf("close code %d, want 4001", code)
		}
	})
	t.Run("bad upgrade token", func(t *testing.T) {
		status, body := httpStatus(t, r.http.URL+"/v1/stream?access_token=garbage", nil)
		if status != http.StatusUnauthorized || !strings.Contains(body, `"code":"unauthorized"`) {
			t.Fatalf("got %d %s, want 401 with unauthorized body", status, body)
		}
		if strings.Contains(body, "garbage") {
			t.Fatalf("error body quotes the token: %s", body)
		}
	})
	t.Run("foreign origin", func(t *testing.T) {
		hdr := http.Header{"Origin": {"https://evil.example"}}
		_, resp, err := websocketDial(wsURL(r, "access_token="+token(t, "alice", time.Hour)), hdr)
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("foreign origin: err %v resp %v, want 403", err, resp)
		}
	})
	t.Run("expired token", func(t *testing.T) {
		c := dial(t, r, token(t, "dave", 1500*time.Millisecond))
		if f := c.Read(); f.Type != "welcome" {
			t.Fatalf("got %+v, want welcome", f)
		}
		f := c.ReadType("error")
		if f.Code != "token_expired" {
			t.Fatalf("got %+v, want token_expired", f)
		}
		if code := c.CloseCode(); code != 4001 {
			t.Fatalf("close code %d, want 4001", code)
		}
	})
}

// The group is re-created when Redis loses it, and delivery continues.
func TestGroupRecreated(t *testing.T) {
	for _, tc := range []struct {
		name string
		lose func(e *env)
	}{
		{"xgroup destroy", func(e *env) {
			if err := streams.DestroyGroup(context.Background(), e.rdb, e.layout.Feed(0), "publisher:pub-1"); err != nil {
				t.Fatal(err)
			}
		}},
		{"flushall", func(e *env) {
			if err := e.rdb.FlushAll(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 1)
			r := e.startReplica("pub-1", nil)
			c := dialAuthed(t, r, "alice")
			c.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false})
			tp := tape.New(t)
			e.write("trade:AAPL", 1)
			c.collect(tp, "trade:AAPL", 1)
			tc.lose(e)
			// Events written right after the loss must arrive: the group
			// comes back where this replica was, not at "$".
			for i := 0; i < 5; i++ {
				e.write("trade:AAPL", float64(2+i))
			}
			c.collect(tp, "trade:AAPL", 6)
			poll.Until(t, 10*time.Second, r.srv.Ready)
		})
	}
}

func TestShutdownSendsGoingAway(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", nil)
	c := dialAuthed(t, r, "alice")
	go r.cancel()
	if code := c.CloseCode(); code != 1001 {
		t.Fatalf("close code %d, want 1001", code)
	}
	<-r.done
	r.done <- nil
	groups, err := e.rdb.XInfoGroups(context.Background(), e.layout.Feed(0)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 0 {
		t.Fatalf("groups left after shutdown: %+v", groups)
	}
}
