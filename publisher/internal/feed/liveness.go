package feed

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/streams"
)

// HeartbeatInterval is how often a replica records that it is alive.
const HeartbeatInterval = 10 * time.Second

// Liveness keeps this replica's heartbeat in the replicas set, reaps the
// groups of replicas silent for longer than a TTL, and on Teardown removes
// this replica's own groups. It is driven by one goroutine (Run).
type Liveness struct {
	client  redis.UniversalClient
	layout  streams.Layout
	replica string
	ttl     time.Duration
	log     *slog.Logger
	m       *Metrics
}

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

// Beat records this replica's heartbeat (Unix ms).
func (l *Liveness) Beat(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	z := redis.Z{Score: float64(time.Now().UnixMilli()), Member: l.replica}
	if err := l.client.ZAdd(ctx, l.layout.Replicas(), z).Err(); err != nil {
		return fmt.Errorf("zadd %s: %w", l.layout.Replicas(), err)
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
		if err := l.client.ZRem(ctx, l.layout.Replicas(), id).Err(); err != nil {
			return fmt.Errorf("zrem %s: %w", l.layout.Replicas(), err)
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
	if err := l.client.ZRem(ctx, l.layout.Replicas(), l.replica).Err(); err != nil {
		return fmt.Errorf("zrem %s: %w", l.layout.Replicas(), err)
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
