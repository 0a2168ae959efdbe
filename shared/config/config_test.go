package config_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/tickwire/tickwire/shared/config"
	"github.com/tickwire/tickwire/shared/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func defaults() config.Common {
	return config.Common{
		RedisURL:     "redis://127.0.0.1:6379/0",
		StreamPrefix: "md",
		StreamShards: 1,
		LogLevel:     "info",
		LogFormat:    "text",
	}
}

var commonVars = []string{"REDIS_URL", "REDIS_CLUSTER_ADDRS", "REDIS_SENTINEL_ADDRS", "REDIS_SENTINEL_MASTER", "REDIS_SENTINEL_PASSWORD", "STREAM_PREFIX", "STREAM_SHARDS", "LOG_LEVEL", "LOG_FORMAT"}

// unsetEnv removes the variables for the test; t.Setenv restores them.
func unsetEnv(t *testing.T, keys ...string) {
	t.Helper()
	for _, k := range keys {
		t.Setenv(k, "")
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLoadDefaults: the defaults are those of docs/design.md and pass Validate.
func TestLoadDefaults(t *testing.T) {
	unsetEnv(t, commonVars...)
	var c config.Common
	if err := config.Load(&c); err != nil {
		t.Fatal(err)
	}
	want := defaults()
	if c.RedisURL != want.RedisURL || len(c.RedisClusterAddrs) != 0 || c.StreamPrefix != want.StreamPrefix ||
		c.StreamShards != want.StreamShards || c.LogLevel != want.LogLevel || c.LogFormat != want.LogFormat {
		t.Errorf("Load = %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate of the defaults: %v", err)
	}
}

func TestLoad(t *testing.T) {
	t.Setenv("REDIS_URL", "redis://example:6380/2")
	t.Setenv("REDIS_CLUSTER_ADDRS", "a:1,b:2")
	t.Setenv("STREAM_PREFIX", "tw")
	t.Setenv("STREAM_SHARDS", "4")
	t.Setenv("LOG_LEVEL", "debug")
	t.Setenv("LOG_FORMAT", "json")
	var c config.Common
	if err := config.Load(&c); err != nil {
		t.Fatal(err)
	}
	want := config.Common{RedisURL: "redis://example:6380/2", RedisClusterAddrs: []string{"a:1", "b:2"}, StreamPrefix: "tw", StreamShards: 4, LogLevel: "debug", LogFormat: "json"}
	if c.RedisURL != want.RedisURL || strings.Join(c.RedisClusterAddrs, ",") != "a:1,b:2" || c.StreamPrefix != want.StreamPrefix ||
		c.StreamShards != want.StreamShards || c.LogLevel != want.LogLevel || c.LogFormat != want.LogFormat {
		t.Errorf("Load = %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestLoadBadNumber(t *testing.T) {
	t.Setenv("STREAM_SHARDS", "three")
	var c config.Common
	if err := config.Load(&c); err == nil {
		t.Error("Load with STREAM_SHARDS=three succeeded")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*config.Common)
		wantErr string // substring; empty means valid
	}{
		{"defaults", func(*config.Common) {}, ""},
		{"json", func(c *config.Common) { c.LogFormat = "json" }, ""},
		{"rediss with password", func(c *config.Common) { c.RedisURL = "rediss://user:pw@redis.example:6380/1" }, ""},
		{"1024 shards", func(c *config.Common) { c.StreamShards = 1024 }, ""},
		{"empty prefix", func(c *config.Common) { c.StreamPrefix = "" }, "STREAM_PREFIX"},
		{"zero shards", func(c *config.Common) { c.StreamShards = 0 }, "STREAM_SHARDS"},
		{"negative shards", func(c *config.Common) { c.StreamShards = -2 }, "STREAM_SHARDS"},
		{"too many shards", func(c *config.Common) { c.StreamShards = 1025 }, "STREAM_SHARDS"},
		{"log format xml", func(c *config.Common) { c.LogFormat = "xml" }, "LOG_FORMAT"},
		{"empty log format", func(c *config.Common) { c.LogFormat = "" }, "LOG_FORMAT"},
		{"http URL", func(c *config.Common) { c.RedisURL = "http://127.0.0.1:6379" }, "REDIS_URL"},
		{"empty URL", func(c *config.Common) { c.RedisURL = "" }, "REDIS_URL"},
		{"bad database", func(c *config.Common) { c.RedisURL = "redis://127.0.0.1:6379/abc" }, "REDIS_URL"},
		{"unparsable URL", func(c *config.Common) { c.RedisURL = "redis://127.0.0.1:port/0" }, "REDIS_URL"},
		{"sentinel", func(c *config.Common) {
			c.RedisSentinelAddrs, c.RedisSentinelMaster = []string{"s1:26379", " s2:26379"}, "mymaster"
		}, ""},
		{"sentinel addrs without master", func(c *config.Common) { c.RedisSentinelAddrs = []string{"s1:26379"} }, "REDIS_SENTINEL_MASTER"},
		{"sentinel master without addrs", func(c *config.Common) { c.RedisSentinelMaster = "mymaster" }, "REDIS_SENTINEL_ADDRS"},
		{"sentinel blank addrs", func(c *config.Common) {
			c.RedisSentinelAddrs, c.RedisSentinelMaster = []string{" ", ""}, "mymaster"
		}, "REDIS_SENTINEL_ADDRS"},
		{"sentinel addr without port", func(c *config.Common) {
			c.RedisSentinelAddrs, c.RedisSentinelMaster = []string{"s1"}, "mymaster"
		}, "REDIS_SENTINEL_ADDRS"},
		{"sentinel and cluster", func(c *config.Common) {
			c.RedisSentinelAddrs, c.RedisSentinelMaster = []string{"s1:26379"}, "mymaster"
			c.RedisClusterAddrs = []string{"a:7000"}
		}, "REDIS_CLUSTER_ADDRS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaults()
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate = %v, want nil", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("Validate = nil, want an error about %s", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("Validate = %v, want it to name %s", err, tt.wantErr)
			}
		})
	}
}

func TestLayout(t *testing.T) {
	c := defaults()
	c.StreamPrefix, c.StreamShards = "tw", 3
	l, err := c.Layout()
	if err != nil || l.Prefix != "tw" || l.Shards != 3 {
		t.Errorf("Layout = %+v, %v", l, err)
	}
}

// TestValidateDoesNotLeakPassword: the error of Validate is logged at start;
// a malformed REDIS_URL must not carry its password there.
func TestValidateDoesNotLeakPassword(t *testing.T) {
	for _, tt := range []struct{ url, password string }{
		{"redis://:s3c ret@127.0.0.1:6379/0", "s3c ret"}, // a space in the password
		{"redis://:s3%cret@127.0.0.1:6379/0", "s3%cret"}, // an unescaped %
		{"redis://:s3cret@127.0.0.1:port/0", "s3cret"},
	} {
		c := defaults()
		c.RedisURL = tt.url
		err := c.Validate()
		if err == nil {
			t.Fatalf("Validate(%q) = nil", tt.url)
		}
		if strings.Contains(err.Error(), tt.password) {
			t.Errorf("Validate error quotes the password: %v", err)
		}
		if _, err := c.NewRedis(config.ClientOptions{}); err == nil || strings.Contains(err.Error(), tt.password) {
			t.Errorf("NewRedis error quotes the password: %v", err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"redis://:s3cret@127.0.0.1:6379/0", "redis://:xxxxx@127.0.0.1:6379/0"},
		{"rediss://user:s3cret@redis.example:6380/1", "rediss://user:xxxxx@redis.example:6380/1"},
		{"redis://user@127.0.0.1:6379/0", "redis://user@127.0.0.1:6379/0"},
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://:s3c ret@127.0.0.1:6379/0", "(unparsable URL)"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := config.RedactURL(tt.in)
			if got != tt.want {
				t.Errorf("RedactURL = %q, want %q", got, tt.want)
			}
			if strings.Contains(got, "s3cret") || strings.Contains(got, "s3c ret") {
				t.Errorf("RedactURL kept the password: %q", got)
			}
		})
	}
}

func TestRedacted(t *testing.T) {
	c := defaults()
	c.RedisURL = "redis://:s3cret@127.0.0.1:6379/0"
	r := c.Redacted()
	if strings.Contains(r.RedisURL, "s3cret") || r.StreamPrefix != c.StreamPrefix {
		t.Errorf("Redacted = %+v", r)
	}
	if c.RedisURL != "redis://:s3cret@127.0.0.1:6379/0" {
		t.Error("Redacted changed its receiver")
	}
}

func TestNewRedisWithPassword(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{RequirePass: "s3cret"})
	c := defaults()
	c.RedisURL = srv.URL()
	if !strings.Contains(c.RedisURL, "s3cret") {
		t.Fatalf("redistest URL %q has no password", c.RedisURL)
	}
	rdb, err := c.NewRedis(config.ClientOptions{Name: "config-test", PoolSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	if _, ok := rdb.(*redis.Client); !ok {
		t.Errorf("NewRedis without cluster addresses = %T, want *redis.Client", rdb)
	}
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("PING with the URL's password: %v", err)
	}
	if name, err := rdb.ClientGetName(t.Context()).Result(); err != nil || name != "config-test" {
		t.Errorf("CLIENT GETNAME = %q, %v", name, err)
	}
	if got := rdb.(*redis.Client).Options().PoolSize; got != 3 {
		t.Errorf("PoolSize = %d, want 3", got)
	}

	// Without the password the server refuses.
	c.RedisURL = "redis://" + srv.Addr() + "/0"
	noPass, err := c.NewRedis(config.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = noPass.Close() })
	if err := noPass.Ping(t.Context()).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("PING without password = %v, want NOAUTH", err)
	}
}

func TestNewRedisCluster(t *testing.T) {
	c := defaults()
	c.RedisURL = "redis://user:pw@127.0.0.1:6379/0"
	c.RedisClusterAddrs = []string{" 10.0.0.1:7000", "", "10.0.0.2:7000 "}
	rdb, err := c.NewRedis(config.ClientOptions{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("NewRedis with cluster addresses = %T, want *redis.ClusterClient", rdb)
	}
	o := cc.Options()
	if o.ClusterStateReloadInterval <= 0 || o.ClusterStateReloadInterval > 5*time.Second {
		t.Errorf("ClusterStateReloadInterval = %v: a failed-over master would be dialled that long", o.ClusterStateReloadInterval)
	}
	if strings.Join(o.Addrs, ",") != "10.0.0.1:7000,10.0.0.2:7000" || o.Username != "user" || o.Password != "pw" || o.ClientName != "x" {
		t.Errorf("cluster options: addrs %q user %q password set %v name %q", o.Addrs, o.Username, o.Password != "", o.ClientName)
	}
}

func TestNewRedisBadURL(t *testing.T) {
	c := defaults()
	c.RedisURL = "http://127.0.0.1"
	if rdb, err := c.NewRedis(config.ClientOptions{}); err == nil {
		_ = rdb.Close()
		t.Error("NewRedis with an http URL succeeded")
	}
}
