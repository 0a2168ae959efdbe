package streams

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/redistest"
)

// replicaConfig waits for one replica. The wait is generous: on a loaded
// machine a live replica's acknowledgement can take longer than a few
// hundred milliseconds, and a write it confirms late must not fail the
// test; a missing replica costs each such write this long.
var replicaConfig = WriterConfig{FeedLen: 1_000_000, HistoryLen: 1_000_000, MinReplicas: 1, ReplicaWait: 3 * time.Second}

// TestWriteWaitsForReplicas: with MinReplicas 1, a Write that returns
// success left its events on the replica already (no polling: WAIT
// confirmed them). With the replica gone the same write reaches the master
// but counts as unwritten (ErrNotReplicated); retried once the replica is
// back, it is confirmed, and nothing is written twice.
func TestWriteWaitsForReplicas(t *testing.T) {
	rs := redistest.StartReplicated(t, 1, 0)
	master, replica := rs.Servers[0], rs.Servers[1]
	mc, rc := master.Client(), replica.Client()
	l := mustLayout(t, 1)
	w := NewWriter(mc, l, replicaConfig)

	batch := []Pending{trade(t, "AAPL", 1), trade(t, "AAPL", 2), trade(t, "MSFT", 3)}
	res, err := w.Write(t.Context(), batch)
	if err != nil || res.Written != 3 || len(res.Unwritten) != 0 {
		t.Fatalf("Write = %+v, %v; want 3 written", res, err)
	}
	if n := xlenOf(t, rc, l.Feed(0)); n != 3 {
		t.Fatalf("the replica's feed holds %d entries right after Write, want 3", n)
	}

	replica.Stop()
	batch = []Pending{trade(t, "AAPL", 4), trade(t, "MSFT", 5)}
	res, err = w.Write(t.Context(), batch)
	if !errors.Is(err, ErrNotReplicated) || res.Written != 0 || len(res.Unwritten) != 2 {
		t.Fatalf("Write without a replica = %+v, %v; want 2 unwritten, ErrNotReplicated", res, err)
	}
	if n := xlenOf(t, mc, l.Feed(0)); n != 5 {
		t.Fatalf("the master's feed holds %d entries, want 5 (the unconfirmed write ran)", n)
	}

	// A retry that finds everything written still writes (the mark), so
	// that its WAIT covers the earlier write.
	before := replOffset(t, mc)
	if _, err := w.Write(t.Context(), res.Unwritten); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("retry without a replica: %v, want ErrNotReplicated", err)
	}
	if after := replOffset(t, mc); after <= before {
		t.Errorf("master_repl_offset %d -> %d: a retry of written events wrote nothing for WAIT to cover", before, after)
	}

	replica.Restart() // --replicaof the master: it syncs again
	var last Result
	deadline := time.Now().Add(30 * time.Second)
	for {
		last, err = w.Write(t.Context(), res.Unwritten)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrNotReplicated) && !strings.Contains(err.Error(), "LOADING") {
			t.Fatalf("retry: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("retry not confirmed after 30 s: %v", err)
		}
	}
	if last.Written != 2 || len(last.Unwritten) != 0 {
		t.Errorf("confirmed retry = %+v, want 2 written", last)
	}
	for _, c := range []*redis.Client{mc, rc} {
		if n := xlenOf(t, c, l.Feed(0)); n != 5 {
			t.Errorf("feed holds %d entries after the retry, want 5 (none twice)", n)
		}
	}
}

// TestWriteFencedWithoutReplicas: a standby's write, refused by the
// fence, is ErrNotLeader (discarded by the collector), not
// ErrNotReplicated (retried), even when no replica would confirm.
func TestWriteFencedWithoutReplicas(t *testing.T) {
	rs := redistest.StartReplicated(t, 1, 0)
	mc := rs.Servers[0].Client()
	rs.Servers[1].Stop()
	l := mustLayout(t, 1)
	if err := mc.Set(t.Context(), l.Leader(), "other", 0).Err(); err != nil {
		t.Fatal(err)
	}
	cfg := replicaConfig
	cfg.Lease, cfg.Holder = l.Leader(), "me"
	w := NewWriter(mc, l, cfg)
	_, err := w.Write(t.Context(), []Pending{trade(t, "AAPL", 1)})
	if !errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNotReplicated) {
		t.Errorf("fenced Write without replicas = %v, want ErrNotLeader only", err)
	}
}

// TestWriteWaitsForReplicasCluster: on a Cluster with replicas, each
// shard's WAIT runs on its own master's connection: every shard's events
// are on that master's replica when Write returns.
func TestWriteWaitsForReplicasCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 6, redistest.ClusterOptions{Replicas: 1, NodeTimeout: time.Second})
	c := cl.Client()
	l := mustLayout(t, 6)
	w := NewWriter(c, l, replicaConfig)
	syms := symbolsCoveringShards(t, l, 1)
	var batch []Pending
	for i, s := range syms {
		batch = append(batch, trade(t, s, i+1))
	}
	res, err := w.Write(t.Context(), batch)
	if err != nil || res.Written != len(batch) {
		t.Fatalf("Write = %+v, %v; want %d written", res, err, len(batch))
	}
	for s := range l.Shards {
		feed := l.Feed(s)
		master := cl.MasterOf(t, feed)
		rep := replicaOf(t, cl, master)
		rc := rep.Client()
		if err := rc.Do(t.Context(), "READONLY").Err(); err != nil {
			t.Fatal(err)
		}
		if n, err := rc.XLen(t.Context(), feed).Result(); err != nil || n != 1 {
			t.Errorf("replica %s of shard %d: XLEN %s = %d, %v; want 1 right after Write", rep.Addr(), s, feed, n, err)
		}
	}
}

// replicaOf returns the node that replicates master.
func replicaOf(t *testing.T, cl *redistest.Cluster, master *redistest.Server) *redistest.Server {
	t.Helper()
	for _, s := range cl.Nodes {
		info, err := s.Client().Info(t.Context(), "replication").Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(info, "role:slave") && strings.Contains(info, "master_port:"+strconv.Itoa(portOf(t, master.Addr()))+"\r") {
			return s
		}
	}
	t.Fatalf("no replica of %s", master.Addr())
	return nil
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	p, err := strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func xlenOf(t *testing.T, c *redis.Client, key string) int64 {
	t.Helper()
	n, err := c.XLen(t.Context(), key).Result()
	if err != nil {
		t.Fatalf("xlen %s: %v", key, err)
	}
	return n
}

func replOffset(t *testing.T, c *redis.Client) int64 {
	t.Helper()
	info, err := c.Info(t.Context(), "replication").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "master_repl_offset:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no master_repl_offset in INFO")
	return 0
}

// BenchmarkWriteMinReplicas: the cost of WAIT, one write of 100 events to
// a master with one replica on this machine, without and with
// MinReplicas 1.
func BenchmarkWriteMinReplicas(b *testing.B) {
	rs := redistest.StartReplicated(b, 1, 0)
	mc := rs.Servers[0].Client()
	l, err := NewLayout("md", 1)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{0, 1} {
		b.Run("min="+strconv.Itoa(n), func(b *testing.B) {
			cfg := WriterConfig{FeedLen: 10_000, HistoryLen: 1000, MinReplicas: n}
			w := NewWriter(mc, l, cfg)
			batch := make([]Pending, 100)
			for b.Loop() {
				for i := range batch {
					batch[i] = Pending{Event: benchTrade(i)}
				}
				if _, err := w.Write(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchTrade(i int) event.Event {
	ch, _ := event.ParseChannel("trade:AAPL")
	return event.Event{Channel: ch, TS: 1764288000000 + int64(i), Data: []byte(`{"price":1.5,"size":1}`)}
}
