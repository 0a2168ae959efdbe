package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultReplicaWait bounds a WAIT when WriterConfig.ReplicaWait is 0. It
// stays below the clients' read timeout (3 s), so that a WAIT that runs
// out is an answer, not a broken connection.
const DefaultReplicaWait = time.Second

// ErrNotReplicated is returned (wrapped) by Write when a chunk reached the
// master but WAIT did not confirm WriterConfig.MinReplicas replicas within
// ReplicaWait: the chunk is unwritten, and its retry (which the writer mark
// makes exact) waits for the replicas again.
var ErrNotReplicated = errors.New("not confirmed by enough replicas")

// Why WAIT works here: WAIT n t blocks until n replicas have acknowledged
// every write that its own connection made before it. So each pipeline
// that runs the write script ends with WAIT, on the same connection (a
// go-redis pipeline on a node client uses one connection). On a Cluster
// the pipelines go to each shard's master by its node client (byConn). A
// retried chunk the mark says is written still writes (write.lua sets the
// mark again), so that the retry's WAIT covers the earlier write.

// conn is a client whose pipelines run on one connection to one master,
// and the shards (indexes into a round's idx) whose chunks it sends.
type conn struct {
	c   redis.Cmdable
	idx []int
	err error // finding the master failed: the chunks fail with it
}

// byConn groups the shards idx by the connection their chunks go to: all
// on the writer's client unless replicas must confirm on a Cluster, where
// each shard's master is reached by its node client.
func (w *Writer) byConn(ctx context.Context, shards [][]chunk, idx []int, r int) []conn {
	cc, cluster := w.c.(*redis.ClusterClient)
	if w.cfg.MinReplicas == 0 || !cluster {
		return []conn{{c: w.c, idx: idx}}
	}
	var out []conn
	at := make(map[*redis.Client]int)
	for _, i := range idx {
		node, err := cc.MasterForKey(ctx, w.layout.Feed(shards[i][r].shard))
		if err != nil {
			cc.ReloadState(ctx)
			out = append(out, conn{idx: []int{i}, err: fmt.Errorf("find the shard's master: %w", err)})
			continue
		}
		k, ok := at[node]
		if !ok {
			k = len(out)
			at[node] = k
			out = append(out, conn{c: node})
		}
		out[k].idx = append(out[k].idx, i)
	}
	return out
}

// replicated reads a WAIT's answer: nil when enough replicas confirmed.
func (w *Writer) replicated(wait *redis.IntCmd) error {
	n, err := wait.Result()
	switch {
	case err != nil:
		if cc, ok := w.c.(*redis.ClusterClient); ok {
			cc.ReloadState(context.Background())
		}
		return fmt.Errorf("wait for %d replicas: %w", w.cfg.MinReplicas, err)
	case n < int64(w.cfg.MinReplicas):
		return fmt.Errorf("%w: %d of %d within %v", ErrNotReplicated, n, w.cfg.MinReplicas, w.replicaWait())
	}
	return nil
}

func (w *Writer) replicaWait() time.Duration {
	if w.cfg.ReplicaWait > 0 {
		return w.cfg.ReplicaWait
	}
	return DefaultReplicaWait
}

// refused reports whether a reply of the write script is the fence's
// refusal ({-1}): nothing was written, so WAIT has nothing to confirm, and
// the refusal (ErrNotLeader) must not read as a missing replica.
func refused(reply any) bool {
	vals, ok := reply.([]any)
	if !ok || len(vals) == 0 {
		return false
	}
	n, ok := vals[0].(int64)
	return ok && n < 0
}
