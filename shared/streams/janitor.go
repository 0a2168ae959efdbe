package streams

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/event"
)

// Pacing of a Janitor: one page of a channel set per call, and a pause
// between pages, so that a sweep of 200 000 channels never holds Redis for
// long.
const (
	janitorPage  = 200
	janitorPause = 20 * time.Millisecond
)

// pruneScript removes from a shard's channel set the channels whose history
// key no longer exists (it expired: the channel was quiet for longer than
// the retention). It runs as one script so that a write adding the history
// again (write.lua: SADD, then XADD) cannot fall between the check and the
// removal. KEYS: the channel set, then history keys. ARGV: the channel of
// each history key. Returns the number removed.
var pruneScript = redis.NewScript(`
local n = 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    n = n + redis.call('SREM', KEYS[1], ARGV[i-1])
  end
end
return n
`)

// Janitor reclaims the channel sets: a channel whose history expired
// leaves its shard's set. Run owns the sweeps; Sweep may also be called on
// its own (tests), but not concurrently with Run.
type Janitor struct {
	c     redis.UniversalClient
	l     Layout
	every time.Duration
	log   *slog.Logger
}

// NewJanitor returns a janitor sweeping every shard of l every period.
func NewJanitor(c redis.UniversalClient, l Layout, every time.Duration, log *slog.Logger) *Janitor {
	return &Janitor{c: c, l: l, every: every, log: log.With("component", "janitor")}
}

// Run sweeps every period until ctx ends; it returns nil then. A failed
// sweep is logged and tried again at the next period.
func (j *Janitor) Run(ctx context.Context) error {
	t := time.NewTicker(j.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n, err := j.Sweep(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			j.log.Warn("channel set sweep failed; trying again later", "err", err, "removed", n)
		case n > 0:
			j.log.Info("quiet channels left the channel sets", "removed", n)
		}
	}
}

// Sweep walks each shard's channel set once (SSCAN) and removes the
// channels without history. It returns how many it removed.
func (j *Janitor) Sweep(ctx context.Context) (int, error) {
	total := 0
	for s := 0; s < j.l.Shards; s++ {
		n, err := j.sweepShard(ctx, s)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (j *Janitor) sweepShard(ctx context.Context, shard int) (int, error) {
	set := j.l.Channels(shard)
	var cursor uint64
	total := 0
	for {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		names, next, err := j.c.SScan(cctx, set, cursor, "", janitorPage).Result()
		if err == nil && len(names) > 0 {
			var n int
			n, err = j.prune(cctx, shard, names)
			total += n
		}
		cancel()
		if err != nil {
			return total, fmt.Errorf("sweep %s: %w", set, err)
		}
		if cursor = next; cursor == 0 {
			return total, nil
		}
		t := time.NewTimer(janitorPause)
		select {
		case <-ctx.Done():
			t.Stop()
			return total, ctx.Err()
		case <-t.C:
		}
	}
}

// prune removes the names of shard's set whose history key is gone. Names
// that are not channels of the shard (written by hand) are left alone.
func (j *Janitor) prune(ctx context.Context, shard int, names []string) (int, error) {
	keys := []string{j.l.Channels(shard)}
	args := make([]any, 0, len(names))
	for _, name := range names {
		ch, err := event.ParseChannel(name)
		if err != nil || ch.IsWildcard() || j.l.Shard(ch.Symbol) != shard {
			continue
		}
		keys = append(keys, j.l.History(ch))
		args = append(args, name)
	}
	if len(args) == 0 {
		return 0, nil
	}
	n, err := pruneScript.Run(ctx, j.c, keys, args...).Int()
	if err != nil {
		return 0, err
	}
	return n, nil
}
