package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/testkit/tape"
	"github.com/tickwire/tickwire/testkit/wsclient"
)

// recorder is a WebSocket client that records, in its own goroutine, every
// event and gap frame of one channel with the time it arrived. The test's
// cleanup closes it and waits for the goroutine.
type recorder struct {
	name string
	mu   sync.Mutex
	recs []rec
	err  error // what ended the connection
}

type rec struct {
	id  string // "" for a gap frame
	at  time.Time
	gap string // reason of a gap frame
}

func record(t *testing.T, addr, sub, channel string) *recorder {
	t.Helper()
	c := connect(t, addr, sub)
	c.Subscribe(map[string]any{"channels": []string{channel}, "snapshot": false})
	r := &recorder{name: sub}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_ = c.WS.SetReadDeadline(time.Now().Add(time.Minute))
			var f wsclient.Frame
			err := c.WS.ReadJSON(&f)
			now := time.Now()
			r.mu.Lock()
			if err != nil {
				r.err = err
				r.mu.Unlock()
				return
			}
			switch f.Type {
			case "events", "snapshot":
				for _, e := range f.Events {
					if e.Ch == channel {
						r.recs = append(r.recs, rec{id: e.ID, at: now})
					}
				}
			case "gap":
				r.recs = append(r.recs, rec{at: now, gap: f.Code + strings.Join(f.Channels, ",")})
			}
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = c.WS.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
		_ = c.WS.Close()
		<-done
	})
	return r
}

func (r *recorder) snapshot() ([]rec, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]rec(nil), r.recs...), r.err
}

// lastID is the last event id received, "" if none.
func (r *recorder) lastID() string {
	recs, _ := r.snapshot()
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].id != "" {
			return recs[i].id
		}
	}
	return ""
}

// eventsAfter counts the events received whose id's time is after t0: Redis
// made them after t0 (one clock: the test's machine).
func (r *recorder) eventsAfter(t0 time.Time) (n int, first time.Time) {
	recs, _ := r.snapshot()
	for _, x := range recs {
		if x.id == "" {
			continue
		}
		id, err := event.ParseID(x.id)
		if err == nil && int64(id.Ms) > t0.UnixMilli() {
			if n == 0 {
				first = x.at
			}
			n++
		}
	}
	return n, first
}

// checkTape checks one client's tape against the channel's history on the
// new master: ids grow, and between two events received one after the
// other without a gap frame the history holds nothing else (no silent
// hole). It returns how many received events the history does not hold:
// delivered, then lost with the old master.
func checkTape(t *testing.T, r *recorder, hist []redis.XMessage) (lost int) {
	t.Helper()
	recs, err := r.snapshot()
	if err != nil {
		t.Errorf("%s: connection ended: %v", r.name, err)
	}
	have := make(map[string]bool, len(hist))
	for _, m := range hist {
		have[m.ID] = true
	}
	var prev string
	holes := 0
	for _, x := range recs {
		if x.id == "" {
			prev = "" // announced: whatever lies before the next event
			continue
		}
		if !have[x.id] {
			lost++
		}
		if prev != "" {
			if !tape.Less(prev, x.id) {
				t.Errorf("%s: id %s after %s: not growing, or twice", r.name, x.id, prev)
			}
			for _, m := range hist {
				if tape.Less(prev, m.ID) && tape.Less(m.ID, x.id) {
					holes++
					if holes <= 5 {
						t.Errorf("%s: silent hole: history holds %s between %s and %s, received one after the other", r.name, m.ID, prev, x.id)
					}
				}
			}
		}
		prev = x.id
	}
	if holes > 5 {
		t.Errorf("%s: %d silent holes in all", r.name, holes)
	}
	return lost
}

// cutReplication stops replica from receiving its master's writes: it is
// told a password the master does not have, and its link is dropped, so
// it cannot sync again. What the master writes from now on is lost with
// it; healReplication undoes the cut.
func cutReplication(t *testing.T, replica *redistest.Server) {
	t.Helper()
	c := replica.Client()
	ctx := ctxT(t, 5*time.Second)
	if err := c.ConfigSet(ctx, "masterauth", "not-the-password").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "CLIENT", "KILL", "TYPE", "master").Err(); err != nil {
		t.Fatal(err)
	}
}

func healReplication(t *testing.T, replica *redistest.Server) {
	t.Helper()
	if err := replica.Client().ConfigSet(ctxT(t, 5*time.Second), "masterauth", "").Err(); err != nil {
		t.Fatal(err)
	}
}

// lagBehind waits until replica's copy of key is at least n entries behind
// master's, and returns the replica's last id.
func lagBehind(t *testing.T, master, replica *redistest.Server, key string, n int64, limit time.Duration) string {
	t.Helper()
	mc, rc := master.Client(), replica.Client()
	_ = rc.Do(ctxT(t, time.Second), "READONLY").Err() // a Cluster replica serves reads only so
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ml, err1 := mc.XLen(ctx, key).Result()
		rl, err2 := rc.XLen(ctx, key).Result()
		last, _ := rc.XRevRangeN(ctx, key, "+", "-", 1).Result()
		cancel()
		if err1 == nil && err2 == nil && ml-rl >= n {
			if len(last) == 0 {
				return "0-0"
			}
			return last[0].ID
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica of %s not %d entries behind after %v: master %d, replica %d (%v %v)", key, n, limit, ml, rl, err1, err2)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running fails t if p has exited.
func running(t *testing.T, p *proc) {
	t.Helper()
	select {
	case <-p.done:
		t.Errorf("%s exited (%v): it should have carried on through the failover", p.name, p.err)
	default:
	}
}

// groupsOf returns the consumer groups of stream.
func groupsOf(t *testing.T, c *redis.Client, stream string) []string {
	t.Helper()
	gs, err := c.XInfoGroups(ctxT(t, 2*time.Second), stream).Result()
	if err != nil {
		t.Fatalf("xinfo groups %s: %v", stream, err)
	}
	var out []string
	for _, g := range gs {
		out = append(out, g.Name)
	}
	return out
}

// scrapeInt is scrape for counters that must be whole.
func scrapeInt(t *testing.T, addr, name string) int {
	t.Helper()
	return int(scrape(t, addr, name))
}

// feedSeqs returns, per sequence number n carried as data.size by the
// stdin test events, how often the feed holds it.
func feedSeqs(t *testing.T, c *redis.Client, feed string) map[int]int {
	t.Helper()
	msgs, err := c.XRange(ctxT(t, 5*time.Second), feed, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[int]int, len(msgs))
	for _, m := range msgs {
		e, err := event.FromEntry(m.ID, m.Values)
		if err != nil {
			t.Fatalf("entry %s: %v", m.ID, err)
		}
		s := string(e.Data)
		i := strings.Index(s, `"size":`)
		if i < 0 {
			t.Fatalf("entry %s has no size: %s", m.ID, s)
		}
		n, err := strconv.Atoi(strings.TrimRight(s[i+len(`"size":`):], "}"))
		if err != nil {
			t.Fatalf("entry %s: size in %s: %v", m.ID, s, err)
		}
		out[n]++
	}
	return out
}

func describe(d time.Duration) string { return fmt.Sprint(d.Round(10 * time.Millisecond)) }
