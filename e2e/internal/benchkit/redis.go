package benchkit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisMeter measures the CPU a Redis server spends over a span, from INFO
// CPU (used_cpu_user + used_cpu_sys: its main and background threads).
// The meter of an empty URL measures nothing and reports 0.
type RedisMeter struct {
	rdb   *redis.Client
	start float64
}

// NewRedisMeter starts measuring the Redis at url (redis://host:port/db).
func NewRedisMeter(ctx context.Context, url string) (*RedisMeter, error) {
	if url == "" {
		return &RedisMeter{}, nil
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis url %q: %w", url, err)
	}
	m := &RedisMeter{rdb: redis.NewClient(opt)}
	if m.start, err = m.cpu(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Used returns the Redis CPU seconds spent since the meter was made.
func (m *RedisMeter) Used(ctx context.Context) (float64, error) {
	if m.rdb == nil {
		return 0, nil
	}
	end, err := m.cpu(ctx)
	return end - m.start, err
}

// Close releases the meter's connection.
func (m *RedisMeter) Close() {
	if m.rdb != nil {
		_ = m.rdb.Close()
	}
}

func (m *RedisMeter) cpu(ctx context.Context) (float64, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	info, err := m.rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, fmt.Errorf("redis INFO CPU: %w", err)
	}
	return ParseRedisCPU(info)
}

// ParseRedisCPU sums used_cpu_user and used_cpu_sys of an INFO CPU reply.
func ParseRedisCPU(info string) (float64, error) {
	var total float64
	found := 0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (k != "used_cpu_user" && k != "used_cpu_sys") {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("redis INFO CPU: %s: %w", k, err)
		}
		total += f
		found++
	}
	if found != 2 {
		return 0, fmt.Errorf("redis INFO CPU: used_cpu_user or used_cpu_sys missing")
	}
	return total, nil
}
