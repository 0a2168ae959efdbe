package main

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/config"
	"github.com/tickwire/tickwire/shared/streams"
)

// redisUse is what a tool needs of Redis: a client and the key layout.
type redisUse struct {
	client redis.UniversalClient
	layout streams.Layout
}

// quietRedis drops go-redis's own log lines (dial retries): a tool reports
// the error it ends with, once.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// withRedis loads cfg (whose Common part is common) from the environment,
// connects as the replicas do, runs f, and closes the client.
func withRedis[T any](ctx context.Context, cfg any, common *config.Common, f func(context.Context, redisUse) (T, error)) (T, error) {
	var zero T
	if err := config.Load(cfg); err != nil {
		return zero, err
	}
	if err := common.Validate(); err != nil {
		return zero, fmt.Errorf("config: %w", err)
	}
	layout, err := common.Layout()
	if err != nil {
		return zero, err
	}
	redis.SetLogger(quietRedis{}) // process-wide; this process is the tool
	client, err := common.NewRedis(config.ClientOptions{Name: "tickwire-publisher-tool"})
	if err != nil {
		return zero, err
	}
	defer client.Close()
	return f(ctx, redisUse{client: client, layout: layout})
}
