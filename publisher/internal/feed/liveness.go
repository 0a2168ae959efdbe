package feed

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/buildinfo"
	"github.com/tickwire/tickwire/shared/streams"
)

// HeartbeatInterval is how often a replica records that it is alive.
const HeartbeatInterval = 10 * time.Second

// Fields of the replica hash (ReplicaKey), written with every heartbeat so
// that `publisher status` can show them.
const (
	FieldConns   = "conns"   // open WebSocket connections
	FieldBeat    = "beat"    // the heartbeat, Unix ms (as in the replicas set)
	FieldVersion = "version" // the build (buildinfo)
)

// ReplicaKey is the hash <p>:replica:<id> where a replica publishes its
// connection count and build with each heartbeat. It expires after the
// replica TTL, and is deleted on Teardown and when the replica is reaped.
func ReplicaKey(layout streams.Layout, replica string) string {
	return layout.Prefix + ":replica:" + replica
}

// Liveness keeps this replica's heartbeat in the replicas set, reaps the
// groups of replicas silent for longer than a TTL, and on Teardown removes
// this replica's own groups. It is driven by one goroutine (Run); CountConns
// is called before Run starts.
type Liveness struct {
	client  redis.UniversalClient
	layout  streams.Layout
	replica string
	ttl     time.Duration
	log     *slog.Logger
	m       *Metrics
	conns   func() int // nil: no connection count published
}

// CountConns sets the function whose value each heartbeat publishes as the
// replica's connection count. Call it before Run; conns must not block.
func (l *Liveness) CountConns(conns func() int) { l.conns = conns }

// NewLiveness returns the liveness keeper of replica.
func NewLiveness(client redis.UniversalClient, layout streams.Layout, replica string, ttl time.Duration, log *slog.Logger, m *Metrics) *Liveness {
	return &Liveness{client: client, layout: layout, replica: replica, ttl: ttl, log: log.With("component", "liveness"), m: m}
}

// Run beats and reaps every HeartbeatInterval until ctx ends. Failures are
// logged and retried at the next beat.
func (l *Liveness) Run(ctx context.Context) error {
	t := time.NewTicker(HeartbeatInterval)
	defer t.Stop()
	for {
		if err := l.Beat(ctx); err != nil && ctx.Err() == nil {
			l.log.Warn("heartbeat failed", "err", err)
		}
		if err := l.Reap(ctx); err != nil && ctx.Err() == nil {
			l.log.Warn("reaping dead replicas failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Beat records this replica's heartbeat (Unix ms) in the replicas set, and
// its connection count and build in its hash (ReplicaKey).
func (l *Liveness) Beat(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	now := time.Now().UnixMilli()
	z := redis.Z{Score: float64(now), Member: l.replica}
	if err := l.client.ZAdd(ctx, l.layout.Replicas(), z).Err(); err != nil {
		return fmt.Errorf("zadd %s: %w", l.layout.Replicas(), err)
	}
	conns := -1 // unknown
	if l.conns != nil {
		conns = l.conns()
	}
	key := ReplicaKey(l.layout, l.replica)
	// Two keys in two slots: a plain pipeline, which a cluster client splits.
	_, err := l.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, FieldConns, conns, FieldBeat, now, FieldVersion, buildinfo.Get().Version)
		p.PExpire(ctx, key, l.ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("hset %s: %w", key, err)
	}
	return nil
}

// Reap destroys the groups of every replica whose last heartbeat is older
// than the TTL, and removes it from the set. Any replica may do it; doing it
// twice is harmless.
func (l *Liveness) Reap(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*callTimeout)
	defer cancel()
	cutoff := time.Now().Add(-l.ttl).UnixMilli()
	dead, err := l.client.ZRangeByScore(ctx, l.layout.Replicas(), &redis.ZRangeBy{
		Min: "-inf", Max: "(" + strconv.FormatInt(cutoff, 10),
	}).Result()
	if err != nil {
		return fmt.Errorf("zrangebyscore %s: %w", l.layout.Replicas(), err)
	}
	for _, id := range dead {
		if id == l.replica {
			continue
		}
		if err := l.destroyGroups(ctx, id); err != nil {
			return err
		}
		// Should the replica come back meanwhile, it finds its groups gone
		// (NOGROUP), re-creates them where it was, and beats again.
		if err := l.forget(ctx, id); err != nil {
			return err
		}
		l.m.ReplicasReap.Inc()
		l.log.Info("reaped dead replica", "replica", id, "silent_for_more_than", l.ttl)
	}
	return nil
}

// Teardown removes this replica: its groups and its heartbeat. Called on
// shutdown, with a context that bounds it.
func (l *Liveness) Teardown(ctx context.Context) error {
	if err := l.destroyGroups(ctx, l.replica); err != nil {
		return err
	}
	return l.forget(ctx, l.replica)
}

// forget removes replica from the replicas set and deletes its hash.
func (l *Liveness) forget(ctx context.Context, replica string) error {
	if err := l.client.ZRem(ctx, l.layout.Replicas(), replica).Err(); err != nil {
		return fmt.Errorf("zrem %s: %w", l.layout.Replicas(), err)
	}
	if err := l.client.Del(ctx, ReplicaKey(l.layout, replica)).Err(); err != nil {
		return fmt.Errorf("del %s: %w", ReplicaKey(l.layout, replica), err)
	}
	return nil
}

func (l *Liveness) destroyGroups(ctx context.Context, replica string) error {
	for _, feed := range l.layout.Feeds() {
		if err := streams.DestroyGroup(ctx, l.client, feed, streams.GroupName(replica)); err != nil {
			return err
		}
	}
	return nil
}
