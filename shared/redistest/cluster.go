package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster, for tests that must not assume one Redis
// node. Without replicas every node is a master.
type Cluster struct {
	Nodes []*Server
}

// ClusterOptions shape a Cluster.
type ClusterOptions struct {
	// Replicas per master: the cluster has n/(1+Replicas) masters.
	Replicas int
	// NodeTimeout is cluster-node-timeout, after which a replica of an
	// unreachable master takes over; 0 is 5 s.
	NodeTimeout time.Duration
}

// StartCluster starts n redis-servers in cluster mode, joins them with
// redis-cli --cluster create (all slots spread over them), waits until the
// cluster is ok, and stops them at t's cleanup.
func StartCluster(t testing.TB, n int, opts ...ClusterOptions) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("redis-cli not found on PATH: run 'make test', which installs it")
	}
	var o ClusterOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.NodeTimeout <= 0 {
		o.NodeTimeout = 5 * time.Second
	}
	cl := &Cluster{}
	for i := 0; i < n; i++ {
		s := &Server{t: t, port: clusterPort(t), dir: t.TempDir(), cluster: true,
			extra: []string{"--cluster-node-timeout", strconv.FormatInt(o.NodeTimeout.Milliseconds(), 10),
				// A replica may take over however long its link was down.
				"--cluster-replica-validity-factor", "0"}}
		s.Restart()
		t.Cleanup(s.Stop)
		cl.Nodes = append(cl.Nodes, s)
	}
	args := append([]string{"--cluster", "create"}, cl.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(o.Replicas), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	cl.WaitOK(t, 30*time.Second, o.Replicas*n/(1+o.Replicas))
	return cl
}

// WaitOK waits until every running node reports cluster_state:ok and the
// cluster has the given number of replicas (online and known to every
// node), or fails t after limit.
func (cl *Cluster) WaitOK(t testing.TB, limit time.Duration, replicas int) {
	t.Helper()
	c := cl.Client()
	deadline := time.Now().Add(limit)
	for {
		err := cl.ready(c, replicas)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: cluster not ready after %v: %v", limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ready checks that every running node reports cluster_state:ok and sees
// the given number of replicas.
func (cl *Cluster) ready(c *redis.ClusterClient, replicas int) error {
	for _, s := range cl.Nodes {
		if !s.Running() {
			continue
		}
		nc := redis.NewClient(&redis.Options{Addr: s.Addr()})
		nodes, err := nc.ClusterNodes(context.Background()).Result()
		if err == nil {
			if n := countReplicas(nodes); n != replicas {
				err = fmt.Errorf("node %s sees %d connected replicas, want %d", s.Addr(), n, replicas)
			}
		}
		if err != nil {
			_ = nc.Close()
			return err
		}
		repl, err := nc.Info(context.Background(), "replication").Result()
		switch {
		case err != nil:
		case infoField(repl, "role") == "slave" && infoField(repl, "master_link_status") != "up":
			err = fmt.Errorf("replica %s: link to its master not up", s.Addr())
		case infoField(repl, "role") == "master" &&
			strconv.Itoa(strings.Count(repl, "state=online")) != infoField(repl, "connected_slaves"):
			// Until the master has its replica online, WAIT does not
			// count it.
			err = fmt.Errorf("master %s: a replica is not online yet", s.Addr())
		}
		if err != nil {
			_ = nc.Close()
			return err
		}
		info, err := nc.ClusterInfo(context.Background()).Result()
		_ = nc.Close()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("node %s: cluster state not ok", s.Addr())
		}
	}
	return c.ForEachShard(context.Background(), func(ctx context.Context, sc *redis.Client) error {
		return sc.Ping(ctx).Err()
	})
}

// Addrs are host:port of every node.
func (cl *Cluster) Addrs() []string {
	out := make([]string, len(cl.Nodes))
	for i, s := range cl.Nodes {
		out[i] = s.Addr()
	}
	return out
}

// Client returns a cluster client, closed at the test's cleanup.
func (cl *Cluster) Client() *redis.ClusterClient {
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
	cl.Nodes[0].t.Cleanup(func() { _ = c.Close() })
	return c
}

// clusterPort finds a port p such that p and its cluster bus port p+10000
// are both free.
func clusterPort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 100; i++ {
		p := freePort(t)
		if p+10000 > 65535 {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+10000)))
		if err != nil {
			continue
		}
		_ = l.Close()
		return p
	}
	t.Fatalf("redistest: no free port pair for a cluster node")
	return 0
}

// countReplicas counts the replicas of CLUSTER NODES that are connected and
// not failing.
func countReplicas(nodes string) int {
	n := 0
	for _, line := range strings.Split(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.Contains(f[2], "slave") || strings.Contains(f[2], "fail") {
			continue
		}
		if f[7] == "connected" {
			n++
		}
	}
	return n
}

// MasterOf returns the running node that serves key as a master.
func (cl *Cluster) MasterOf(t testing.TB, key string) *Server {
	t.Helper()
	c := cl.Client()
	nc, err := c.MasterForKey(context.Background(), key)
	if err != nil {
		t.Fatalf("redistest: master of %s: %v", key, err)
	}
	addr := nc.Options().Addr
	for _, s := range cl.Nodes {
		if s.Addr() == addr {
			return s
		}
	}
	t.Fatalf("redistest: master of %s is %s, not a node of the cluster", key, addr)
	return nil
}
