package status

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/publisher/internal/feed"
	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/streams"
)

// Collect reads the state of the deployment under layout. stallAfter is
// PUBLISHER_STALL_AFTER. It fails only when Redis cannot be read; what it
// finds wrong is in Report.Problems.
func Collect(ctx context.Context, c redis.UniversalClient, layout streams.Layout, stallAfter time.Duration) (*Report, error) {
	now, err := c.Time(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("time: %w", err)
	}
	r := &Report{Time: now, Prefix: layout.Prefix, Feeds: []Feed{}, Replicas: []Replica{}, Problems: []string{}}
	if r.Collector, err = collector(ctx, c, layout); err != nil {
		return nil, err
	}
	if r.Collector.Holder == "" {
		r.Problems = append(r.Problems, fmt.Sprintf("no collector holds the lease %s", layout.Leader()))
	}
	replicas := map[string]*Replica{}
	if err := heartbeats(ctx, c, layout, now, replicas); err != nil {
		return nil, err
	}
	for shard := 0; shard < layout.Shards; shard++ {
		f, err := readFeed(ctx, c, layout, shard, now)
		if err != nil {
			return nil, err
		}
		r.Feeds = append(r.Feeds, f)
		if err := groups(ctx, c, f, now, stallAfter, replicas); err != nil {
			return nil, err
		}
	}
	for _, rep := range replicas {
		judge(rep, layout.Shards)
		if rep.State == StateStalled || rep.State == StateDown {
			r.Problems = append(r.Problems, fmt.Sprintf("replica %s is %s: %s", rep.ID, rep.State, rep.Reason))
		}
		r.Replicas = append(r.Replicas, *rep)
	}
	sort.Slice(r.Replicas, func(i, j int) bool { return r.Replicas[i].ID < r.Replicas[j].ID })
	sort.Strings(r.Problems)
	return r, nil
}

// collector reads the lease: its holder and what is left of it.
func collector(ctx context.Context, c redis.UniversalClient, layout streams.Layout) (Collector, error) {
	holder, err := c.Get(ctx, layout.Leader()).Result()
	if errors.Is(err, redis.Nil) {
		return Collector{}, nil
	}
	if err != nil {
		return Collector{}, fmt.Errorf("get %s: %w", layout.Leader(), err)
	}
	ttl, err := c.PTTL(ctx, layout.Leader()).Result()
	if err != nil {
		return Collector{}, fmt.Errorf("pttl %s: %w", layout.Leader(), err)
	}
	return Collector{Holder: holder, TTL: Duration(max(ttl, 0))}, nil
}

// heartbeats adds every replica of the replicas set, with its hash.
func heartbeats(ctx context.Context, c redis.UniversalClient, layout streams.Layout, now time.Time, out map[string]*Replica) error {
	zs, err := c.ZRangeWithScores(ctx, layout.Replicas(), 0, -1).Result()
	if err != nil {
		return fmt.Errorf("zrange %s: %w", layout.Replicas(), err)
	}
	for _, z := range zs {
		id, _ := z.Member.(string)
		rep := &Replica{ID: id, Conns: -1, Heartbeat: Duration(now.Sub(time.UnixMilli(int64(z.Score))))}
		h, err := c.HGetAll(ctx, feed.ReplicaKey(layout, id)).Result()
		if err != nil {
			return fmt.Errorf("hgetall %s: %w", feed.ReplicaKey(layout, id), err)
		}
		if n, err := strconv.ParseInt(h[feed.FieldConns], 10, 64); err == nil {
			rep.Conns = n
		}
		rep.Version = h[feed.FieldVersion]
		out[id] = rep
	}
	return nil
}

// readFeed reads a feed's length and newest entry.
func readFeed(ctx context.Context, c redis.UniversalClient, layout streams.Layout, shard int, now time.Time) (Feed, error) {
	f := Feed{Shard: shard, Key: layout.Feed(shard)}
	var err error
	if f.Length, err = c.XLen(ctx, f.Key).Result(); err != nil {
		return Feed{}, fmt.Errorf("xlen %s: %w", f.Key, err)
	}
	last, err := c.XRevRangeN(ctx, f.Key, "+", "-", 1).Result()
	if err != nil {
		return Feed{}, fmt.Errorf("xrevrange %s: %w", f.Key, err)
	}
	if len(last) > 0 {
		f.LastID = last[0].ID
		f.LastAge = age(now, last[0].ID)
	}
	return f, nil
}

// age is how long ago Redis made entry id (its millisecond part).
func age(now time.Time, id string) Duration {
	parsed, err := event.ParseID(id)
	if err != nil {
		return 0
	}
	return Duration(max(0, now.Sub(time.UnixMilli(int64(parsed.Ms)))))
}

// groups adds each publisher group of feed f to its replica.
func groups(ctx context.Context, c redis.UniversalClient, f Feed, now time.Time, stallAfter time.Duration, out map[string]*Replica) error {
	if f.Length == 0 && f.LastID == "" {
		if n, err := c.Exists(ctx, f.Key).Result(); err != nil || n == 0 {
			return err // no stream, no groups
		}
	}
	gs, err := c.XInfoGroups(ctx, f.Key).Result()
	if err != nil {
		return fmt.Errorf("xinfo groups %s: %w", f.Key, err)
	}
	for _, g := range gs {
		id, ok := strings.CutPrefix(g.Name, streams.GroupPrefix)
		if !ok {
			continue // not a publisher's
		}
		grp, err := group(ctx, c, f, g, now, stallAfter)
		if err != nil {
			return err
		}
		rep := out[id]
		if rep == nil { // a group without a heartbeat: its replica is gone
			rep = &Replica{ID: id, Conns: -1, Heartbeat: -1}
			out[id] = rep
		}
		rep.Shards = append(rep.Shards, grp)
	}
	return nil
}

// group reads one group's readers and judges it: stalled when an entry has
// waited StallAfter and the reader has not read for as long.
func group(ctx context.Context, c redis.UniversalClient, f Feed, g redis.XInfoGroup, now time.Time, stallAfter time.Duration) (Group, error) {
	grp := Group{Shard: f.Shard, Exists: true, Lag: g.Lag, Pending: g.Pending, Idle: -1, State: StateOK}
	cs, err := c.XInfoConsumers(ctx, f.Key, g.Name).Result()
	if err != nil {
		return Group{}, fmt.Errorf("xinfo consumers %s %s: %w", f.Key, g.Name, err)
	}
	for _, cons := range cs {
		if grp.Idle < 0 || Duration(cons.Idle) < grp.Idle {
			grp.Idle = Duration(cons.Idle)
		}
	}
	if f.LastID != "" && f.LastID != g.LastDeliveredID {
		next, err := c.XRangeN(ctx, f.Key, "("+g.LastDeliveredID, "+", 1).Result()
		if err != nil {
			return Group{}, fmt.Errorf("xrange %s: %w", f.Key, err)
		}
		if len(next) > 0 {
			grp.Waiting = age(now, next[0].ID)
		}
	}
	if grp.Waiting >= Duration(stallAfter) {
		grp.State = StateBehind
		if grp.Idle < 0 || grp.Idle >= Duration(stallAfter) {
			grp.State = StateStalled
		}
	}
	return grp, nil
}

// judge sets a replica's state from its heartbeat and its groups.
func judge(rep *Replica, shards int) {
	sort.Slice(rep.Shards, func(i, j int) bool { return rep.Shards[i].Shard < rep.Shards[j].Shard })
	have := map[int]bool{}
	for _, g := range rep.Shards {
		have[g.Shard] = true
	}
	for s := 0; s < shards; s++ {
		if !have[s] {
			rep.Shards = append(rep.Shards, Group{Shard: s, Lag: -1, Idle: -1, State: StateDown})
		}
	}
	sort.Slice(rep.Shards, func(i, j int) bool { return rep.Shards[i].Shard < rep.Shards[j].Shard })
	rep.State = StateOK
	switch {
	case rep.Heartbeat < 0:
		rep.State, rep.Reason = StateDown, "no heartbeat in the replicas set (its group is left over)"
		return
	case rep.Heartbeat > Duration(DownAfter):
		rep.State, rep.Reason = StateDown, fmt.Sprintf("last heartbeat %v ago", time.Duration(rep.Heartbeat).Round(time.Second))
		return
	}
	for _, g := range rep.Shards {
		switch {
		case g.State == StateDown:
			rep.State, rep.Reason = StateDown, fmt.Sprintf("no consumer group on shard %d", g.Shard)
			return
		case g.State == StateStalled:
			rep.State = StateStalled
			rep.Reason = fmt.Sprintf("shard %d: an entry has waited %v and its reader has not read for %v", g.Shard, round(g.Waiting), round(g.Idle))
		case g.State == StateBehind && rep.State == StateOK:
			rep.State = StateBehind
			rep.Reason = fmt.Sprintf("shard %d: an entry has waited %v", g.Shard, round(g.Waiting))
		}
	}
}

func round(d Duration) time.Duration {
	if d < 0 {
		return -1
	}
	return time.Duration(d).Round(100 * time.Millisecond)
}
