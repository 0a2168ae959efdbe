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

// Cluster is a Redis Cluster of masters without replicas, for tests that
// must not assume one Redis node.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts n redis-servers in cluster mode, joins them with
// redis-cli --cluster create (all slots spread over them), waits until the
// cluster is ok, and stops them at t's cleanup.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("redis-cli not found on PATH: run 'make test', which installs it")
	}
	cl := &Cluster{}
	for i := 0; i < n; i++ {
		s := &Server{t: t, port: clusterPort(t), dir: t.TempDir(), cluster: true}
		s.Restart()
		t.Cleanup(s.Stop)
		cl.Nodes = append(cl.Nodes, s)
	}
	args := append([]string{"--cluster", "create"}, cl.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c := cl.Client()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := cl.ready(c)
		if err == nil {
			return cl
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: cluster not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ready checks that every node reports cluster_state:ok.
func (cl *Cluster) ready(c *redis.ClusterClient) error {
	for _, s := range cl.Nodes {
		nc := redis.NewClient(&redis.Options{Addr: s.Addr()})
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
