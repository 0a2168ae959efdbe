package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/testkit/tape"
)

// Redis stops and comes back, empty or with its AOF: clients stay
// connected, the replica reports not ready meanwhile, and events written
// after the restart reach them.
func TestRedisRestart(t *testing.T) {
	for _, aof := range []bool{false, true} {
		name := map[bool]string{false: "empty", true: "aof"}[aof]
		t.Run(name, func(t *testing.T) {
			e := newEnvWith(t, 1, redistest.Options{AppendOnly: aof})
			r := e.startReplica("pub-1", nil)
			c := dialAuthed(t, r, "alice")
			c.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false})
			tp := tape.New(t)
			e.write("trade:AAPL", 1, 2)
			c.collect(tp, "trade:AAPL", 2)
			before := tp.IDs("trade:AAPL")[1]

			e.redis.Stop()
			poll.Until(t, 10*time.Second, func() error {
				if r.srv.Ready() == nil {
					return errors.New("still ready with Redis down")
				}
				return nil
			})
			e.redis.Restart()
			back := time.Now()
			e.write("trade:AAPL", 3)
			c.collect(tp, "trade:AAPL", 3)
			t.Logf("Redis back -> first event delivered: %v", time.Since(back))
			poll.Until(t, 10*time.Second, r.srv.Ready)

			// A client resuming from before the restart: with AOF nothing
			// is lost; without, its history is gone and it is told so.
			c2 := dialAuthed(t, r, "bob")
			sub := c2.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "since": map[string]string{"trade:AAPL": before}})
			if got := sub.Recovered["trade:AAPL"]; got != aof {
				t.Fatalf("recovered = %v, want %v", got, aof)
			}
			if !aof {
				if f := c2.Read(); f.Type != "gap" {
					t.Fatalf("got %+v, want gap", f)
				}
			}
			tp2 := tape.New(t)
			c2.collect(tp2, "trade:AAPL", 1)
			if got := tp2.IDs("trade:AAPL")[0]; got != tp.IDs("trade:AAPL")[2] {
				t.Fatalf("resumed with %s, want %s", got, tp.IDs("trade:AAPL")[2])
			}
		})
	}
}

// A replica silent for longer than the TTL loses its groups to a living one.
func TestDeadReplicaReaped(t *testing.T) {
	e := newEnv(t, 2)
	r := e.startReplica("pub-1", func(c *Config) { c.ReplicaTTL = time.Second })
	ctx := context.Background()
	// A replica that died without cleaning up: groups and an old heartbeat.
	for _, feed := range e.layout.Feeds() {
		if err := e.rdb.XGroupCreateMkStream(ctx, feed, "publisher:ghost", "$").Err(); err != nil {
			t.Fatal(err)
		}
	}
	e.rdb.ZAdd(ctx, e.layout.Replicas(), redisZ("ghost", time.Now().Add(-time.Hour)))
	if err := r.srv.live.Reap(ctx); err != nil {
		t.Fatal(err)
	}
	for _, feed := range e.layout.Feeds() {
		groups, err := e.rdb.XInfoGroups(ctx, feed).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(groups) != 1 || groups[0].Name != "publisher:pub-1" {
			t.Fatalf("%s groups %+v, want only publisher:pub-1", feed, groups)
		}
	}
	members, _ := e.rdb.ZRange(ctx, e.layout.Replicas(), 0, -1).Result()
	if len(members) != 1 || members[0] != "pub-1" {
		t.Fatalf("replicas %v, want [pub-1]", members)
	}
}
