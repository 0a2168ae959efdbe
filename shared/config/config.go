// Package config reads the settings both processes share and builds their
// Redis clients. Each process embeds Common in its own config struct, read
// once at start with envconfig; nothing here keeps state.
package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/streams"
)

// Common holds the variables of docs/design.md that both processes read.
type Common struct {
	RedisURL          string   `envconfig:"REDIS_URL" default:"redis://127.0.0.1:6379/0" desc:"Redis to use (rediss:// for TLS; password in the URL)"`
	RedisClusterAddrs []string `envconfig:"REDIS_CLUSTER_ADDRS" desc:"comma list of cluster nodes (host:port): Redis Cluster mode"`
	// Sentinel: both set = the sentinels at these host:port decide the
	// master's address; REDIS_URL still gives password, db and TLS.
	RedisSentinelAddrs    []string `envconfig:"REDIS_SENTINEL_ADDRS" desc:"comma list of sentinels (host:port), with REDIS_SENTINEL_MASTER: Sentinel mode"`
	RedisSentinelMaster   string   `envconfig:"REDIS_SENTINEL_MASTER" desc:"the name the sentinels monitor the master under"`
	RedisSentinelPassword string   `envconfig:"REDIS_SENTINEL_PASSWORD" desc:"the sentinels' own password, if they require one"`
	StreamPrefix          string   `envconfig:"STREAM_PREFIX" default:"md" desc:"key prefix"`
	StreamShards          int      `envconfig:"STREAM_SHARDS" default:"1" desc:"feed shards; a symbol's shard is fnv32a(symbol) % shards"`
	LogLevel              string   `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat             string   `envconfig:"LOG_FORMAT" default:"text" desc:"text or json"`
}

// Load fills cfg (a pointer to a struct with envconfig tags) from the
// environment.
func Load(cfg any) error {
	if err := envconfig.Process("", cfg); err != nil {
		return fmt.Errorf("read environment: %w", err)
	}
	return nil
}

// Validate checks the common settings.
func (c Common) Validate() error {
	if _, err := c.Layout(); err != nil {
		return err
	}
	if _, err := redis.ParseURL(c.RedisURL); err != nil {
		return urlError(c.RedisURL, err)
	}
	if err := c.validateSentinel(); err != nil {
		return err
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("LOG_FORMAT %q: want text or json", c.LogFormat)
	}
	return nil
}

// Layout returns the stream key layout the settings describe.
func (c Common) Layout() (streams.Layout, error) {
	l, err := streams.NewLayout(c.StreamPrefix, c.StreamShards)
	if err != nil {
		return streams.Layout{}, fmt.Errorf("STREAM_PREFIX/STREAM_SHARDS: %w", err)
	}
	return l, nil
}

// ErrSentinelHalf is returned (wrapped) by Validate when only one of
// REDIS_SENTINEL_ADDRS and REDIS_SENTINEL_MASTER is set.
var ErrSentinelHalf = errors.New("REDIS_SENTINEL_ADDRS and REDIS_SENTINEL_MASTER must be set together")

// validateSentinel checks that Sentinel is configured whole, and not
// together with a Cluster (a Cluster fails over by itself).
func (c Common) validateSentinel() error {
	addrs := trimAddrs(c.RedisSentinelAddrs)
	master := strings.TrimSpace(c.RedisSentinelMaster)
	switch {
	case len(addrs) == 0 && master == "":
		return nil
	case len(addrs) == 0:
		return fmt.Errorf("%w: REDIS_SENTINEL_MASTER is %q but REDIS_SENTINEL_ADDRS is empty", ErrSentinelHalf, master)
	case master == "":
		return fmt.Errorf("%w: REDIS_SENTINEL_ADDRS is set but REDIS_SENTINEL_MASTER is empty", ErrSentinelHalf)
	case len(trimAddrs(c.RedisClusterAddrs)) > 0:
		return errors.New("REDIS_SENTINEL_ADDRS and REDIS_CLUSTER_ADDRS are both set: want one or the other")
	}
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("REDIS_SENTINEL_ADDRS %q: want host:port: %w", a, err)
		}
	}
	return nil
}

// Sentinel reports whether the sentinels decide the master's address.
func (c Common) Sentinel() bool {
	return len(trimAddrs(c.RedisSentinelAddrs)) > 0 && strings.TrimSpace(c.RedisSentinelMaster) != ""
}

// Redacted returns the settings as they may be logged: no passwords.
func (c Common) Redacted() Common {
	c.RedisURL = RedactURL(c.RedisURL)
	if c.RedisSentinelPassword != "" {
		c.RedisSentinelPassword = "xxxxx"
	}
	return c
}

// RedactURL replaces the password of a URL, if any, with "xxxxx".
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// urlError reports a bad REDIS_URL without quoting it: url.Error carries
// the whole URL, password included.
func urlError(raw string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("REDIS_URL %s: %w", RedactURL(raw), err)
}

// ClientOptions tunes a Redis client for its use.
type ClientOptions struct {
	// PoolSize is the connection pool size; 0 keeps go-redis's default.
	PoolSize int
	// Name is sent with CLIENT SETNAME so operators see who is connected.
	Name string
	// MaxRetries is how often go-redis resends a failed command; 0 keeps its
	// default (3), -1 disables retries. Writers whose commands must run at
	// most once (the collector's batch script) disable them and retry
	// themselves, knowing what was written.
	MaxRetries int
}

// NewRedis builds a Redis client from the settings: a failover client
// (the master's address asked of the sentinels, asked again after a
// failover) when REDIS_SENTINEL_ADDRS and REDIS_SENTINEL_MASTER are set, a
// cluster client when REDIS_CLUSTER_ADDRS is set, a single-node client
// otherwise. Credentials, db and TLS (rediss://) come from REDIS_URL in
// every case. It does not dial.
func (c Common) NewRedis(o ClientOptions) (redis.UniversalClient, error) {
	opt, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		return nil, urlError(c.RedisURL, err)
	}
	opt.ClientName = o.Name
	opt.DialTimeout = 2 * time.Second
	opt.ReadTimeout = 3 * time.Second
	opt.WriteTimeout = 3 * time.Second
	if o.PoolSize > 0 {
		opt.PoolSize = o.PoolSize
	}
	if o.MaxRetries != 0 {
		opt.MaxRetries = o.MaxRetries
	}
	if err := c.validateSentinel(); err != nil {
		return nil, err
	}
	switch {
	case c.Sentinel():
		return c.newFailover(opt), nil
	case len(trimAddrs(c.RedisClusterAddrs)) > 0:
		return newCluster(trimAddrs(c.RedisClusterAddrs), opt), nil
	default:
		return redis.NewClient(opt), nil
	}
}

// newFailover builds the Sentinel client. Its TLS settings serve the
// sentinels and every master they name, so no one server name fits.
func (c Common) newFailover(opt *redis.Options) *redis.Client {
	return redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:       strings.TrimSpace(c.RedisSentinelMaster),
		SentinelAddrs:    trimAddrs(c.RedisSentinelAddrs),
		SentinelPassword: c.RedisSentinelPassword,
		ClientName:       opt.ClientName,
		Username:         opt.Username,
		Password:         opt.Password,
		DB:               opt.DB,
		TLSConfig:        anyServerTLS(opt.TLSConfig),
		DialTimeout:      opt.DialTimeout,
		ReadTimeout:      opt.ReadTimeout,
		WriteTimeout:     opt.WriteTimeout,
		PoolSize:         opt.PoolSize,
		MaxRetries:       opt.MaxRetries,
	})
}

// clusterReload bounds how long a cluster client keeps a stale map of
// slots. go-redis reloads it at once on MOVED, but not when a master dies
// (its commands fail to dial): without this, clients would dial the dead
// master for go-redis's default of 60 s after its replica took over. A
// reload is one CLUSTER SLOTS, made only while the client is in use.
const clusterReload = time.Second

func newCluster(addrs []string, opt *redis.Options) *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{
		ClusterStateReloadInterval: clusterReload,
		Addrs:                      addrs,
		ClientName:                 opt.ClientName,
		Username:                   opt.Username,
		Password:                   opt.Password,
		TLSConfig:                  anyServerTLS(opt.TLSConfig),
		DialTimeout:                opt.DialTimeout,
		ReadTimeout:                opt.ReadTimeout,
		WriteTimeout:               opt.WriteTimeout,
		PoolSize:                   opt.PoolSize,
		MaxRetries:                 opt.MaxRetries,
	})
}

// anyServerTLS clears the server name of REDIS_URL's host: one name cannot
// fit every node.
func anyServerTLS(c *tls.Config) *tls.Config {
	if c == nil {
		return nil
	}
	c = c.Clone()
	c.ServerName = ""
	return c
}

// trimAddrs drops blanks from a host:port list.
func trimAddrs(in []string) []string {
	out := make([]string, 0, len(in))
	for _, a := range in {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
