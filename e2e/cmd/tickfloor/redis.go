package main

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/e2e/internal/benchkit"
)

// redisFloor runs -mode redis: every tick, one round trip adding o.events
// entries to a stream of its own (trimmed, deleted at the end).
func redisFloor(ctx context.Context, o options) error {
	opt, err := redis.ParseURL(o.redis)
	if err != nil {
		return fmt.Errorf("-redis %q: %w", o.redis, err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	key := fmt.Sprintf("tickfloor:%d", time.Now().UnixNano())
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = rdb.Del(dctx, key).Err()
	}()
	values := []any{"ch", "quote:AAPL", "ts", "1796095753154", "data", `{"bid":465.1,"bid_size":1700,"ask":465.11,"ask_size":800}`}
	tick := func() error {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := rdb.Pipelined(tctx, func(p redis.Pipeliner) error {
			for range o.events {
				p.XAdd(tctx, &redis.XAddArgs{Stream: key, MaxLen: 1000, Approx: true, Values: values})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("xadd: %w", err)
		}
		return nil
	}
	// Redis's CPU is read over the same span as ours: from the first
	// measured tick (ticks calls measured once when it starts measuring).
	var meter *benchkit.RedisMeter
	defer func() {
		if meter != nil {
			meter.Close()
		}
	}()
	measured := func() error {
		var err error
		meter, err = benchkit.NewRedisMeter(ctx, o.redis)
		return err
	}
	cpu, n, err := ticks(ctx, o, tick, measured)
	if err != nil {
		return err
	}
	rcpu, err := meter.Used(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("redis floor: one round trip of %d XADDs every %v\n", o.events, o.tick)
	fmt.Printf("  %d ticks: client %.2f s of CPU (%.1f %% of a core): %.0f µs per tick, %.1f µs per event\n",
		n, cpu, 100*cpu/o.duration.Seconds(), 1e6*cpu/float64(n), 1e6*cpu/float64(n*o.events))
	fmt.Printf("  redis-server %.2f s of CPU: %.0f µs per tick, %.1f µs per event\n",
		rcpu, 1e6*rcpu/float64(n), 1e6*rcpu/float64(n*o.events))
	return nil
}
