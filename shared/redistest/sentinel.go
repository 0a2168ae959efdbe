package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// MasterName is the name under which a Replicated's sentinels monitor its
// master.
const MasterName = "tickwire"

// Sentinel timing: a master unreachable for sentinelDownAfter is down, and
// a failover that stalls is tried again after sentinelFailoverTimeout.
const (
	sentinelDownAfter       = 500 * time.Millisecond
	sentinelFailoverTimeout = 3 * time.Second
)

// Replicated is a master with replicas, watched by sentinels (redis-server
// --sentinel, the same binary) that fail it over to a replica when it
// dies. Servers[0] is the first master.
type Replicated struct {
	Servers   []*Server
	Sentinels []*Server
	opts      Options
}

// StartReplicated starts a master, replicas replicas of it, and sentinels
// sentinels (quorum: a majority of them) that monitor it under MasterName,
// waits until the replicas are in sync and every sentinel knows every
// replica and sentinel, and stops all at t's cleanup. Only
// Options.RequirePass is honoured (the same password on every server).
func StartReplicated(t testing.TB, replicas, sentinels int, opts ...Options) *Replicated {
	t.Helper()
	r := &Replicated{}
	if len(opts) > 0 {
		r.opts = Options{RequirePass: opts[0].RequirePass}
	}
	master := r.start(t, nil)
	for i := 0; i < replicas; i++ {
		args := []string{"--replicaof", "127.0.0.1", strconv.Itoa(master.port)}
		if r.opts.RequirePass != "" {
			args = append(args, "--masterauth", r.opts.RequirePass)
		}
		r.start(t, args)
	}
	r.waitInSync(t, master, replicas, 20*time.Second)
	quorum := sentinels/2 + 1
	for i := 0; i < sentinels; i++ {
		s := &Server{t: t, port: freePort(t), dir: t.TempDir()}
		s.sentinelConf = filepath.Join(s.dir, "sentinel.conf")
		conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\ndaemonize no\nlogfile \"\"\n"+
			"sentinel monitor %s 127.0.0.1 %d %d\n"+
			"sentinel down-after-milliseconds %s %d\n"+
			"sentinel failover-timeout %s %d\n"+
			"sentinel parallel-syncs %s %d\n",
			s.port, s.dir, MasterName, master.port, quorum,
			MasterName, sentinelDownAfter.Milliseconds(),
			MasterName, sentinelFailoverTimeout.Milliseconds(),
			MasterName, replicas)
		if r.opts.RequirePass != "" {
			conf += fmt.Sprintf("sentinel auth-pass %s %s\n", MasterName, r.opts.RequirePass)
		}
		if err := os.WriteFile(s.sentinelConf, []byte(conf), 0o600); err != nil {
			t.Fatalf("redistest: write sentinel.conf: %v", err)
		}
		s.Restart()
		t.Cleanup(s.Stop)
		r.Sentinels = append(r.Sentinels, s)
	}
	r.waitSentinelsKnow(t, replicas, sentinels-1, 30*time.Second)
	return r
}

func (r *Replicated) start(t testing.TB, extra []string) *Server {
	t.Helper()
	s := &Server{t: t, port: freePort(t), dir: t.TempDir(), opts: r.opts, extra: extra}
	s.Restart()
	t.Cleanup(s.Stop)
	r.Servers = append(r.Servers, s)
	return s
}

// SentinelAddrs are host:port of the sentinels.
func (r *Replicated) SentinelAddrs() []string {
	out := make([]string, len(r.Sentinels))
	for i, s := range r.Sentinels {
		out[i] = s.Addr()
	}
	return out
}

// Master returns the server the first sentinel that answers names as
// master, if it runs and says it is one.
func (r *Replicated) Master(t testing.TB) (*Server, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var lastErr error
	for _, sen := range r.Sentinels {
		if !sen.Running() {
			continue
		}
		sc := redis.NewSentinelClient(&redis.Options{Addr: sen.Addr(), MaxRetries: -1})
		addr, err := sc.GetMasterAddrByName(ctx, MasterName).Result()
		_ = sc.Close()
		if err != nil {
			lastErr = err
			continue
		}
		hp := net.JoinHostPort(addr[0], addr[1])
		for _, s := range r.Servers {
			if s.Addr() == hp && s.Running() {
				if role, err := s.role(ctx); err != nil || role != "master" {
					return nil, fmt.Errorf("sentinel names %s, whose role is %q (%v)", hp, role, err)
				}
				return s, nil
			}
		}
		return nil, fmt.Errorf("sentinel names %s, which does not run", hp)
	}
	return nil, fmt.Errorf("no sentinel answered: %v", lastErr)
}

// WaitFailover waits until the sentinels name a running master other than
// old and that master has the given number of replicas in sync; it returns
// the new master, or fails t after limit.
func (r *Replicated) WaitFailover(t testing.TB, old *Server, replicas int, limit time.Duration) *Server {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		m, err := r.Master(t)
		if err == nil && m != old {
			r.waitInSync(t, m, replicas, time.Until(deadline))
			return m
		}
		if err == nil {
			err = fmt.Errorf("sentinels still name %s", old.Addr())
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: no failover after %v: %v", limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) role(ctx context.Context) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: s.opts.RequirePass, MaxRetries: -1})
	defer c.Close()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return "", err
	}
	return infoField(info, "role"), nil
}

// waitInSync waits until master reports n replicas online.
func (r *Replicated) waitInSync(t testing.TB, master *Server, n int, limit time.Duration) {
	t.Helper()
	c := master.Client()
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := c.Info(ctx, "replication").Result()
		cancel()
		online := strings.Count(info, "state=online")
		if err == nil && online >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: master %s: %d of %d replicas online after %v (%v)", master.Addr(), online, n, limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitSentinelsKnow waits until every sentinel knows the replicas and the
// other sentinels: before then it could not fail the master over.
func (r *Replicated) waitSentinelsKnow(t testing.TB, replicas, others int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for _, sen := range r.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: sen.Addr(), MaxRetries: -1})
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			reps, err := sc.Replicas(ctx, MasterName).Result()
			var sens []map[string]string
			if err == nil {
				sens, err = sc.Sentinels(ctx, MasterName).Result()
			}
			cancel()
			if err == nil && len(reps) >= replicas && len(sens) >= others {
				break
			}
			if time.Now().After(deadline) {
				_ = sc.Close()
				t.Fatalf("redistest: sentinel %s knows %d replicas and %d sentinels, want %d and %d (%v)",
					sen.Addr(), len(reps), len(sens), replicas, others, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = sc.Close()
	}
}

// infoField returns the value of field in an INFO reply.
func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}
