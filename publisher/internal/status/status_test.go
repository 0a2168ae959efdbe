package status_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/tickwire/tickwire/publisher/internal/feed"
	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/publisher/internal/status"
	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/shared/streams"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const stallAfter = 300 * time.Millisecond

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// deployment is a Redis with a feed, a collector lease, and replicas
// made of the publisher's real feed reader and liveness.
type deployment struct {
	t      *testing.T
	srv    *redistest.Server
	rdb    *redis.Client
	layout streams.Layout
	writer *streams.Writer
	fm     *feed.Metrics
}

func newDeployment(t *testing.T, shards int) *deployment {
	srv := redistest.Start(t)
	layout, err := streams.NewLayout("st", shards)
	if err != nil {
		t.Fatal(err)
	}
	rdb := srv.Client()
	d := &deployment{t: t, srv: srv, rdb: rdb, layout: layout, fm: feed.NewMetrics(prometheus.NewRegistry()),
		writer: streams.NewWriter(rdb, layout, streams.WriterConfig{FeedLen: 10000, HistoryLen: 100})}
	d.write(1)
	lease, err := streams.NewLease(rdb, layout.Leader(), "collector-7", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := lease.Acquire(context.Background(), 0); !ok || err != nil {
		t.Fatalf("lease: %v %v", ok, err)
	}
	return d
}

// write adds n trades to every shard.
func (d *deployment) write(n int) {
	d.t.Helper()
	var evs []event.Event
	for i := 0; i < n; i++ {
		for s := 0; len(evs) < (i+1)*d.layout.Shards; s++ {
			sym := fmt.Sprintf("S%d", s)
			if d.layout.Shard(sym) != len(evs)%d.layout.Shards {
				continue
			}
			evs = append(evs, event.Event{Channel: event.Channel{Kind: event.KindTrade, Symbol: sym},
				TS: time.Now().UnixMilli(), Data: []byte(`{"price":1,"size":1}`)})
		}
	}
	if _, err := d.writer.Write(context.Background(), streams.PendingOf(evs)); err != nil {
		d.t.Fatal(err)
	}
}

// replica runs a replica's readers until stop, and beats once.
type replica struct {
	live *feed.Liveness
	stop context.CancelFunc
	wg   sync.WaitGroup
}

func (d *deployment) startReplica(id string, conns int) *replica {
	d.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{stop: cancel, live: feed.NewLiveness(d.rdb, d.layout, id, time.Minute, quiet, d.fm)}
	r.live.CountConns(func() int { return conns })
	h := hub.New()
	for s := 0; s < d.layout.Shards; s++ {
		rc := redis.NewClient(&redis.Options{Addr: d.srv.Addr()})
		rd := feed.NewReader(rc, d.layout, s, id, h, quiet, d.fm)
		r.wg.Add(1)
		go func() { defer r.wg.Done(); _ = rd.Run(ctx) }()
		poll.Until(d.t, 10*time.Second, rd.Ready)
	}
	if err := r.live.Beat(context.Background()); err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(r.halt)
	return r
}

// halt stops the readers and leaves the groups behind, as a reader that
// hangs does.
func (r *replica) halt() { r.stop(); r.wg.Wait() }

func (d *deployment) collect() *status.Report {
	d.t.Helper()
	rep, err := status.Collect(context.Background(), d.rdb, d.layout, stallAfter)
	if err != nil {
		d.t.Fatal(err)
	}
	return rep
}

func find(r *status.Report, id string) status.Replica {
	for _, rep := range r.Replicas {
		if rep.ID == id {
			return rep
		}
	}
	return status.Replica{}
}

// TestHealthy: two replicas that read, a collector that holds the lease.
func TestHealthy(t *testing.T) {
	d := newDeployment(t, 2)
	d.startReplica("pub-a", 3)
	d.startReplica("pub-b", 0)
	d.write(50)
	var r *status.Report
	poll.Until(t, 10*time.Second, func() error {
		r = d.collect()
		for _, id := range []string{"pub-a", "pub-b"} {
			if rep := find(r, id); rep.State != status.StateOK || len(rep.Shards) != 2 || rep.Shards[0].Lag != 0 || rep.Shards[1].Lag != 0 {
				return fmt.Errorf("%s: %+v", id, rep)
			}
		}
		return nil
	})
	if !r.Healthy() || r.Collector.Holder != "collector-7" || r.Collector.TTL <= 0 {
		t.Errorf("report: %+v", r)
	}
	if len(r.Feeds) != 2 || r.Feeds[0].Length != 51 || r.Feeds[1].Length != 51 || r.Feeds[0].LastID == "" {
		t.Errorf("feeds: %+v", r.Feeds)
	}
	if a := find(r, "pub-a"); a.Conns != 3 || a.Version == "" || a.Heartbeat < 0 {
		t.Errorf("pub-a: %+v", a)
	}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"collector-7 holds the lease", "st:{0}:feed", "st:{1}:feed", "pub-a", "all well"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
}

// TestStalled reproduces the seed's failure: a replica whose reader stopped
// reading while events keep arriving. Its group's lag grows; status marks
// it stalled within StallAfter and is not healthy; its neighbour is ok.
func TestStalled(t *testing.T) {
	d := newDeployment(t, 1)
	d.startReplica("pub-a", 1)
	hung := d.startReplica("pub-b", 2)
	d.write(1)
	poll.Until(t, 10*time.Second, func() error { // both have read
		r := d.collect()
		for _, id := range []string{"pub-a", "pub-b"} {
			if g := find(r, id).Shards; len(g) != 1 || g[0].Lag != 0 || g[0].Idle < 0 {
				return fmt.Errorf("%s: %+v", id, g)
			}
		}
		return nil
	})
	hung.halt() // its group stays, as a hung process's does
	start := time.Now()
	var r *status.Report
	poll.Until(t, 10*time.Second, func() error {
		d.write(5) // the collector goes on writing
		r = d.collect()
		if b := find(r, "pub-b"); b.State != status.StateStalled {
			return fmt.Errorf("pub-b: %+v", b)
		}
		return nil
	})
	if waited := time.Since(start); waited < stallAfter {
		t.Errorf("stalled after %v, before PUBLISHER_STALL_AFTER (%v)", waited, stallAfter)
	}
	if a := find(r, "pub-a"); a.State != status.StateOK {
		t.Errorf("pub-a, which reads, is %s: %+v", a.State, a)
	}
	if r.Healthy() || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "replica pub-b is stalled") {
		t.Errorf("problems: %q", r.Problems)
	}
	b := find(r, "pub-b")
	if g := b.Shards[0]; g.Lag <= 0 || g.Waiting < status.Duration(stallAfter) || g.Idle < status.Duration(stallAfter) {
		t.Errorf("pub-b's group: %+v", g)
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back status.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON does not read back: %v\n%s", err, js.String())
	}
	if find(&back, "pub-b").State != status.StateStalled || back.Healthy() || !strings.Contains(js.String(), `"idle": "`) {
		t.Errorf("JSON: %s", js.String())
	}
}

// TestDown: a replica whose heartbeat is old, one whose group is left over
// without a heartbeat, and no collector lease.
func TestDown(t *testing.T) {
	d := newDeployment(t, 1)
	d.startReplica("pub-a", 0)
	d.startReplica("pub-old", 0)
	old := float64(time.Now().Add(-status.DownAfter - time.Second).UnixMilli())
	if err := d.rdb.ZAdd(context.Background(), d.layout.Replicas(), redis.Z{Score: old, Member: "pub-old"}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := streams.CreateGroup(context.Background(), d.rdb, d.layout.Feed(0), streams.GroupName("pub-gone"), "$"); err != nil {
		t.Fatal(err)
	}
	if err := d.rdb.Del(context.Background(), d.layout.Leader()).Err(); err != nil {
		t.Fatal(err)
	}
	r := d.collect()
	if s := find(r, "pub-old").State; s != status.StateDown {
		t.Errorf("pub-old is %s", s)
	}
	if g := find(r, "pub-gone"); g.State != status.StateDown || g.Heartbeat != -1 {
		t.Errorf("pub-gone: %+v", g)
	}
	if len(r.Problems) != 3 || r.Collector.Holder != "" {
		t.Errorf("problems: %q", r.Problems)
	}
	var b bytes.Buffer
	_ = r.WriteText(&b)
	if !strings.Contains(b.String(), "none holds the lease") || !strings.Contains(b.String(), "3 problem(s)") {
		t.Errorf("text:\n%s", b.String())
	}
}

// TestEmpty: nothing written yet, no replica: status reads, reports the
// missing collector, and fails on no Redis command.
func TestEmpty(t *testing.T) {
	srv := redistest.Start(t)
	layout, _ := streams.NewLayout("empty", 2)
	r, err := status.Collect(context.Background(), srv.Client(), layout, stallAfter)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Feeds) != 2 || r.Feeds[0].Length != 0 || len(r.Replicas) != 0 || len(r.Problems) != 1 {
		t.Errorf("report: %+v", r)
	}
}
