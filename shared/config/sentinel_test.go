package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/config"
	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/redistest"
)

func TestLoadSentinel(t *testing.T) {
	unsetEnv(t, commonVars...)
	t.Setenv("REDIS_SENTINEL_ADDRS", "s1:26379,s2:26379")
	t.Setenv("REDIS_SENTINEL_MASTER", "mymaster")
	t.Setenv("REDIS_SENTINEL_PASSWORD", "sen-pw")
	var c config.Common
	if err := config.Load(&c); err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.RedisSentinelAddrs, ",") != "s1:26379,s2:26379" || c.RedisSentinelMaster != "mymaster" || c.RedisSentinelPassword != "sen-pw" {
		t.Errorf("Load = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if r := c.Redacted(); strings.Contains(r.RedisSentinelPassword, "sen-pw") {
		t.Errorf("Redacted keeps the sentinel password: %+v", r)
	}
}

// TestValidateSentinelHalf: one variable without the other is a clear
// error that names both.
func TestValidateSentinelHalf(t *testing.T) {
	for _, c := range []config.Common{
		func() config.Common { c := defaults(); c.RedisSentinelMaster = "m"; return c }(),
		func() config.Common { c := defaults(); c.RedisSentinelAddrs = []string{"s:1"}; return c }(),
	} {
		err := c.Validate()
		if !errors.Is(err, config.ErrSentinelHalf) {
			t.Fatalf("Validate = %v, want ErrSentinelHalf", err)
		}
		if !strings.Contains(err.Error(), "REDIS_SENTINEL_ADDRS") || !strings.Contains(err.Error(), "REDIS_SENTINEL_MASTER") {
			t.Errorf("Validate = %v, want both variables named", err)
		}
		if rdb, err := c.NewRedis(config.ClientOptions{}); !errors.Is(err, config.ErrSentinelHalf) {
			if err == nil {
				_ = rdb.Close()
			}
			t.Errorf("NewRedis = %v, want ErrSentinelHalf", err)
		}
	}
}

// TestNewRedisSentinel: with the Sentinel variables the client finds the
// master through the sentinels (REDIS_URL's host is a dead address; its
// password and db are used), and after the master is killed and a replica
// promoted, the same client writes to the new master.
func TestNewRedisSentinel(t *testing.T) {
	rs := redistest.StartReplicated(t, 1, 1, redistest.Options{RequirePass: "s3cret"})
	c := defaults()
	c.RedisURL = "redis://:s3cret@127.0.0.1:1/3" // port 1: never dialled
	c.RedisSentinelAddrs = rs.SentinelAddrs()
	c.RedisSentinelMaster = redistest.MasterName
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	rdb, err := c.NewRedis(config.ClientOptions{Name: "sentinel-test", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.Set(t.Context(), "k", "before", 0).Err(); err != nil {
		t.Fatalf("SET through the sentinel: %v", err)
	}
	old := rs.Servers[0]
	direct := old.Client()
	if v, err := direct.Do(t.Context(), "SELECT", 3).Result(); err != nil {
		t.Fatalf("SELECT 3: %v %v", v, err)
	}
	if v, err := direct.Get(t.Context(), "k").Result(); err != nil || v != "before" {
		t.Fatalf("GET k on the master's db 3 = %q, %v", v, err)
	}
	if name, err := rdb.ClientGetName(t.Context()).Result(); err != nil || name != "sentinel-test" {
		t.Errorf("CLIENT GETNAME = %q, %v", name, err)
	}

	old.Stop()
	start := time.Now()
	next := rs.WaitFailover(t, old, 0, 30*time.Second)
	poll.Until(t, 30*time.Second, func() error {
		return rdb.Set(t.Context(), "k", "after", 0).Err()
	})
	t.Logf("the client wrote to the new master %v after the kill", time.Since(start).Round(time.Millisecond))
	nc := redis.NewClient(&redis.Options{Addr: next.Addr(), Password: "s3cret", DB: 3})
	t.Cleanup(func() { _ = nc.Close() })
	if v, err := nc.Get(t.Context(), "k").Result(); err != nil || v != "after" {
		t.Errorf("GET k on the new master = %q, %v", v, err)
	}
}
