// Package config reads the settings both processes share and builds their
// Redis clients. Each process embeds Common in its own config struct, read
// once at start with envconfig; nothing here keeps state.
package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/streams"
)

// Common holds the variables of DESIGN.md that both processes read.
type Common struct {
	RedisURL          string   `envconfig:"REDIS_URL" default:"redis://127.0.0.1:6379/0" desc:"Redis to use (rediss:// for TLS; password in the URL)"`
	RedisClusterAddrs []string `envconfig:"REDIS_CLUSTER_ADDRS" desc:"comma list of cluster nodes (host:port): Redis Cluster mode"`
	StreamPrefix      string   `envconfig:"STREAM_PREFIX" default:"md" desc:"key prefix"`
	StreamShards      int      `envconfig:"STREAM_SHARDS" default:"1" desc:"feed shards; a symbol's shard is fnv32a(symbol) % shards"`
	LogLevel          string   `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat         string   `envconfig:"LOG_FORMAT" default:"text" desc:"text or json"`
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

// Redacted returns the settings as they may be logged: no passwords.
func (c Common) Redacted() Common {
	c.RedisURL = RedactURL(c.RedisURL)
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

// NewRedis builds a Redis client from the settings: a cluster client when
// REDIS_CLUSTER_ADDRS is set, a single-node client otherwise. Credentials
// and TLS (rediss://) come from REDIS_URL in both cases. It does not dial.
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
	if len(c.RedisClusterAddrs) == 0 {
		return redis.NewClient(opt), nil
	}
	addrs := make([]string, 0, len(c.RedisClusterAddrs))
	for _, a := range c.RedisClusterAddrs {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	var tlsCfg *tls.Config
	if opt.TLSConfig != nil {
		tlsCfg = opt.TLSConfig.Clone()
		tlsCfg.ServerName = "" // one name cannot fit every node
	}
	return redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:        addrs,
		ClientName:   o.Name,
		Username:     opt.Username,
		Password:     opt.Password,
		TLSConfig:    tlsCfg,
		DialTimeout:  opt.DialTimeout,
		ReadTimeout:  opt.ReadTimeout,
		WriteTimeout: opt.WriteTimeout,
		PoolSize:     opt.PoolSize,
		MaxRetries:   opt.MaxRetries,
	}), nil
}
