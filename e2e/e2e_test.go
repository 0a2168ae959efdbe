package e2e

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/testkit/tape"
)

// startCollector runs the synthetic collector and waits for its first
// history entry of trade:AAPL.
func startCollector(t *testing.T, srv *redistest.Server, prefix string, extra ...string) *proc {
	t.Helper()
	addr := freeAddr(t)
	env := append([]string{
		"REDIS_URL=" + srv.URL(), "STREAM_PREFIX=" + prefix, "COLLECTOR_ADDR=" + addr,
		"COLLECTOR_SYMBOLS=AAPL,MSFT", "COLLECTOR_RATE=400", "COLLECTOR_FLUSH_INTERVAL=100ms", "COLLECTOR_SEED=7",
	}, extra...)
	p := start(t, "collector", "collector", env, nil)
	rdb := srv.Client()
	hist := prefix + ":{0}:hist:trade:AAPL"
	poll.Until(t, 15*time.Second, func() error {
		if n, _ := rdb.XLen(ctxT(t, time.Second), hist).Result(); n == 0 {
			return fmt.Errorf("no events in %s yet", hist)
		}
		return nil
	})
	return p
}

// The whole path with real processes: a collector, two publisher replicas,
// a client on each; both receive the same events, snapshot first.
func TestPipelineTwoReplicas(t *testing.T) {
	srv := redistest.Start(t)
	startCollector(t, srv, "e1")
	_, a1 := startPublisher(t, srv.URL(), "e1", "pub-1")
	_, a2 := startPublisher(t, srv.URL(), "e1", "pub-2")

	for i, addr := range []string{a1, a2} {
		c := connect(t, addr, fmt.Sprintf("user-%d", i))
		c.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}})
		f := c.Read()
		if f.Type != "snapshot" || len(f.Events) != 1 || f.Events[0].Ch != "trade:AAPL" {
			t.Fatalf("replica %d: first frame %+v, want a snapshot of trade:AAPL", i+1, f)
		}
		tp := tape.New(t)
		tp.Add(aapl, f.Events[0].ID)
		if err := c.Collect(tp, aapl, 5); err != nil { // live events follow, newer than the snapshot
			t.Fatal(err)
		}
	}
	compareLive(t, a1, a2)
}

// compareLive connects one client to each replica and checks that over
// their common span they received exactly the same events.
func compareLive(t *testing.T, a1, a2 string) {
	t.Helper()
	c1 := connect(t, a1, "cmp-1")
	c2 := connect(t, a2, "cmp-2")
	c1.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false})
	c2.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false})
	t1, t2 := tape.New(t), tape.New(t)
	const n = 60
	if err := c1.Collect(t1, aapl, n); err != nil {
		t.Fatal(err)
	}
	if err := c2.Collect(t2, aapl, n); err != nil {
		t.Fatal(err)
	}
	o1, o2 := tape.Overlap(t1.IDs(aapl), t2.IDs(aapl))
	if len(o1) < n/2 || !slices.Equal(o1, o2) {
		t.Fatalf("replicas disagree over their common span (%d vs %d events):\n%v\n%v", len(o1), len(o2), o1, o2)
	}
}

// kill -9 of a replica: its client reconnects to the other replica with
// since and, compared with a client that stayed there, misses nothing and
// sees nothing twice.
func TestReplicaKillResume(t *testing.T) {
	srv := redistest.Start(t)
	startCollector(t, srv, "e2")
	p1, a1 := startPublisher(t, srv.URL(), "e2", "pub-1")
	_, a2 := startPublisher(t, srv.URL(), "e2", "pub-2")

	control := connect(t, a2, "control")
	control.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false})
	victim := connect(t, a1, "victim")
	victim.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false})
	vt, ct := tape.New(t), tape.New(t)
	if err := victim.Collect(vt, aapl, 20); err != nil {
		t.Fatal(err)
	}

	killed := time.Now()
	p1.signal(syscall.SIGKILL)
	if err := victim.Collect(vt, aapl, 1<<30); err == nil {
		t.Fatal("victim connection survived kill -9")
	}
	since := vt.Last(aapl)
	resumed := connect(t, a2, "victim")
	sub := resumed.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "since": map[string]string{"trade:AAPL": since}})
	if !sub.Recovered["trade:AAPL"] {
		t.Fatalf("subscribed %+v, want recovered", sub)
	}
	before := vt.Len(aapl)
	if err := resumed.Collect(vt, aapl, before+1); err != nil {
		t.Fatal(err)
	}
	t.Logf("replica kill -> first event on the other replica: %v", time.Since(killed))
	if err := resumed.Collect(vt, aapl, before+80); err != nil {
		t.Fatal(err)
	}
	if err := control.Collect(ct, aapl, 1); err != nil {
		t.Fatal(err)
	}
	// Read the control up to the victim's last id.
	for tape.Less(ct.Last(aapl), vt.Last(aapl)) {
		if err := control.Collect(ct, aapl, ct.Len(aapl)+1); err != nil {
			t.Fatal(err)
		}
	}
	o1, o2 := tape.Overlap(vt.IDs(aapl), ct.IDs(aapl))
	if len(o1) < 50 || !slices.Equal(o1, o2) {
		t.Fatalf("after resume the victim's tape differs from the control's (%d vs %d):\n%v\n%v", len(o1), len(o2), o1, o2)
	}
}

// SIGTERM on a publisher: clients get 1001, it exits in time, and its
// groups are gone.
func TestPublisherSIGTERM(t *testing.T) {
	srv := redistest.Start(t)
	startCollector(t, srv, "e3")
	p1, a1 := startPublisher(t, srv.URL(), "e3", "pub-1")
	c := connect(t, a1, "alice")
	c.Subscribe(map[string]any{"channels": []string{"trade:*"}})
	p1.signal(syscall.SIGTERM)
	if code := c.CloseCode(); code != 1001 {
		t.Fatalf("close code %d, want 1001", code)
	}
	took, err := p1.wait(10 * time.Second)
	if err != nil {
		t.Fatalf("publisher exit: %v", err)
	}
	t.Logf("publisher exited %v after the client's close", took)
	groups, err := srv.Client().XInfoGroups(ctxT(t, time.Second), "e3:{0}:feed").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 0 {
		t.Fatalf("groups left: %+v", groups)
	}
}

// The stdin collector across a Redis outage with AOF: events sent while
// Redis is down are buffered and written when it returns; on end of input
// the collector writes everything and exits; every event is in the feed
// exactly once.
func TestCollectorOutageStdin(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	pr, pw := osPipe(t)
	addr := freeAddr(t)
	col := start(t, "collector", "collector", []string{
		"REDIS_URL=" + srv.URL(), "STREAM_PREFIX=e4", "COLLECTOR_ADDR=" + addr,
		"COLLECTOR_SOURCE=stdin", "COLLECTOR_FLUSH_INTERVAL=50ms",
		"COLLECTOR_BARS=false", "COLLECTOR_SIGNALS=false", // the feed holds exactly what was sent
	}, pr)
	rdb := srv.Client()
	send := func(from, to int) {
		var b strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, `{"ch":"trade:AAPL","ts":%d,"data":{"price":%d,"size":1}}`+"\n", 1764288000000+i, i)
		}
		if _, err := io.WriteString(pw, b.String()); err != nil {
			t.Fatal(err)
		}
	}
	feedLen := func(want int64) func() error {
		return func() error {
			n, err := rdb.XLen(ctxT(t, time.Second), "e4:{0}:feed").Result()
			if err != nil || n != want {
				return fmt.Errorf("feed length %d (%v), want %d", n, err, want)
			}
			return nil
		}
	}
	send(0, 100)
	poll.Until(t, 15*time.Second, feedLen(100))
	srv.Stop()
	send(100, 200)
	waitHTTP(t, "http://"+addr+"/readyz", 503, 15*time.Second)
	srv.Restart()
	send(200, 300)
	_ = pw.Close()
	if _, err := col.wait(30 * time.Second); err != nil {
		t.Fatalf("collector exit: %v", err)
	}
	poll.Until(t, time.Second, feedLen(300))
	msgs, err := rdb.XRange(ctxT(t, time.Second), "e4:{0}:feed", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		if want := fmt.Sprint(1764288000000 + i); m.Values["ts"] != want {
			t.Fatalf("entry %d has ts %v, want %s (lost, repeated or reordered)", i, m.Values["ts"], want)
		}
	}
}

// SIGTERM on the collector: what it buffered (a flush interval of an hour
// keeps everything buffered) is written before it exits.
func TestCollectorSIGTERMFlushes(t *testing.T) {
	srv := redistest.Start(t)
	pr, pw := osPipe(t)
	addr := freeAddr(t)
	col := start(t, "collector", "collector", []string{
		"REDIS_URL=" + srv.URL(), "STREAM_PREFIX=e5", "COLLECTOR_ADDR=" + addr,
		"COLLECTOR_SOURCE=stdin", "COLLECTOR_FLUSH_INTERVAL=1h", "COLLECTOR_MAX_BATCH=100000",
		"COLLECTOR_BARS=false", "COLLECTOR_SIGNALS=false",
	}, pr)
	const n = 500
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{"ch":"quote:MSFT","ts":%d,"data":{"bid":1,"bid_size":1,"ask":2,"ask_size":1}}`+"\n", 1764288000000+i)
	}
	if _, err := io.WriteString(pw, b.String()); err != nil {
		t.Fatal(err)
	}
	waitHTTP(t, "http://"+addr+"/healthz", 200, 15*time.Second)
	poll.Until(t, 15*time.Second, func() error {
		if got := scrape(t, addr, "tickwire_collector_events_received_total"); got != n {
			return fmt.Errorf("collector received %v events, want %d", got, n)
		}
		return nil
	})
	rdb := srv.Client()
	if got := rdb.XLen(ctxT(t, time.Second), "e5:{0}:feed").Val(); got != 0 {
		t.Fatalf("feed has %d entries before SIGTERM; the flush interval should hold them", got)
	}
	col.signal(syscall.SIGTERM)
	if _, err := col.wait(15 * time.Second); err != nil {
		t.Fatalf("collector exit: %v", err)
	}
	if got := rdb.XLen(ctxT(t, time.Second), "e5:{0}:feed").Val(); got != n {
		t.Fatalf("feed has %d entries after SIGTERM, want %d", got, n)
	}
}
