package streams

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/redistest"
)

// switchable is a client that dials whatever address target holds: the
// test moves it to the promoted replica, as a failover client would.
func switchable(t *testing.T, target *atomic.Value) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr: "failover", MaxRetries: -1,
		Dialer: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, target.Load().(string))
		},
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// cut stops replica from receiving its master's writes (a password the
// master does not know, and the link dropped).
func cut(t *testing.T, replica *redistest.Server) {
	t.Helper()
	c := replica.Client()
	if err := c.ConfigSet(t.Context(), "masterauth", "wrong").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(t.Context(), "CLIENT", "KILL", "TYPE", "master").Err(); err != nil {
		t.Fatal(err)
	}
}

// promote kills master and makes replica a master, and points target at it.
func promote(t *testing.T, master, replica *redistest.Server, target *atomic.Value) {
	t.Helper()
	master.Stop()
	if err := replica.Client().Do(t.Context(), "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	target.Store(replica.Addr())
}

// A failover to a replica that lags: its feed ends before the last id the
// reader dispatched, and its writer mark is older than the writer's last
// write (same generation). With the group on the replica at an older
// position, or not there at all (created after the replica was cut off),
// the reader hands over exactly the events written after the failover,
// none twice, none skipped; the writer writes them although the mark is
// older.
func TestFailoverToLaggingReplica(t *testing.T) {
	for _, groupOnReplica := range []bool{true, false} {
		name := "group on the replica"
		if !groupOnReplica {
			name = "group only on the old master"
		}
		t.Run(name, func(t *testing.T) {
			rs := redistest.StartReplicated(t, 1, 0)
			master, replica := rs.Servers[0], rs.Servers[1]
			var target atomic.Value
			target.Store(master.Addr())
			l := mustLayout(t, 1)
			w := NewWriter(switchable(t, &target), l, bigStreams)
			s := &sink{}
			startReaderOn := func() {
				r := NewGroupReader(switchable(t, &target), GroupReaderConfig{
					Layout: l, Shard: 0, Group: GroupName("pub-1"), Consumer: "pub-1", Handle: s.handle,
				})
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- r.Run(ctx) }()
				t.Cleanup(func() { cancel(); <-done })
				poll.Until(t, 10*time.Second, r.Ready)
			}
			from := 0
			if groupOnReplica {
				startReaderOn()
			} else {
				from = 3 // the reader starts at the tail, after 0..2
			}
			writeTrades(t, w, 0, 3)
			if groupOnReplica {
				s.waitFor(t, tsRange(0, 3))
			}
			poll.Until(t, 10*time.Second, func() error { // the replica has 0..2 and the mark
				return replica.Client().Get(t.Context(), l.WriterMark(0)).Err()
			})
			cut(t, replica)
			if !groupOnReplica {
				startReaderOn()
			}
			writeTrades(t, w, 3, 6)
			s.waitFor(t, tsRange(from, 6))

			promote(t, master, replica, &target)
			if n := xlenOf(t, replica.Client(), l.Feed(0)); n != 3 {
				t.Fatalf("the promoted replica's feed holds %d entries, want 3 (it lags)", n)
			}
			// Redis may refuse writes for a moment after REPLICAOF NO ONE.
			evs := []Pending{trade(t, "AAPL", 6), trade(t, "AAPL", 7)}
			poll.Until(t, 20*time.Second, func() error {
				res, err := w.Write(t.Context(), evs)
				if err != nil {
					evs = res.Unwritten // the mark keeps the retry exact
				}
				return err
			})
			writeTrades(t, w, 8, 10)
			s.waitFor(t, tsRange(from, 10))
		})
	}
}
