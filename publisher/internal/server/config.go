// Package server assembles a publisher replica: its configuration, the feed
// readers, the hub, the WebSocket endpoint with its limits, and the ordered
// drain on shutdown.
package server

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tickwire/tickwire/shared/auth"
	"github.com/tickwire/tickwire/shared/config"
)

// Config is the publisher's configuration, read from the environment.
type Config struct {
	config.Common

	JWTSecret        string        `envconfig:"JWT_SECRET" desc:"HS256 secret of the tokens (also for publisher token)"`
	JWTPublicKeyFile string        `envconfig:"JWT_PUBLIC_KEY_FILE" desc:"PEM public key or certificate for RS256 / ES256 tokens"`
	JWTIssuer        string        `envconfig:"JWT_ISSUER" desc:"required iss of tokens, when set"`
	JWTAudience      string        `envconfig:"JWT_AUDIENCE" desc:"required aud of tokens, when set"`
	JWTLeeway        time.Duration `envconfig:"JWT_LEEWAY" default:"5s" desc:"clock skew allowed on exp, nbf, iat"`

	Addr           string   `envconfig:"PUBLISHER_ADDR" default:":8080" desc:"WebSocket, health, metrics and demo page"`
	ReplicaID      string   `envconfig:"PUBLISHER_REPLICA_ID" desc:"names the replica's consumer group (empty: the host name)"`
	AllowedOrigins []string `envconfig:"PUBLISHER_ALLOWED_ORIGINS" desc:"comma list of browser origins scheme://host[:port], or *; empty: same host only"`

	AuthTimeout     time.Duration `envconfig:"PUBLISHER_AUTH_TIMEOUT" default:"5s" desc:"deadline of the first-frame auth"`
	Heartbeat       time.Duration `envconfig:"PUBLISHER_HEARTBEAT" default:"20s" desc:"ping interval"`
	MaxChannels     int           `envconfig:"PUBLISHER_MAX_CHANNELS" default:"1000" desc:"subscriptions per connection"`
	MaxConnsPerUser int           `envconfig:"PUBLISHER_MAX_CONNS_PER_USER" default:"10" desc:"connections per user per replica (close 4009)"`
	MaxConns        int           `envconfig:"PUBLISHER_MAX_CONNS" default:"10000" desc:"connections per replica (HTTP 503)"`
	RateLimit       float64       `envconfig:"PUBLISHER_RATE_LIMIT" default:"50" desc:"client frames/s per connection"`
	RateBurst       int           `envconfig:"PUBLISHER_RATE_BURST" default:"100" desc:"burst of client frames per connection"`
	ReplicaTTL      time.Duration `envconfig:"PUBLISHER_REPLICA_TTL" default:"5m" desc:"silence after which a replica's groups are reaped"`
	QueueEvents     int           `envconfig:"PUBLISHER_QUEUE_EVENTS" default:"8192" desc:"per-connection queue limit, events"`
	QueueBytes      int           `envconfig:"PUBLISHER_QUEUE_BYTES" default:"4194304" desc:"per-connection queue limit, bytes"`
	DrainTimeout    time.Duration `envconfig:"PUBLISHER_DRAIN_TIMEOUT" default:"10s" desc:"how long shutdown waits for connections"`
	StallAfter      time.Duration `envconfig:"PUBLISHER_STALL_AFTER" default:"5s" desc:"unread feed entries with no reader progress for this long: stalled (/readyz 503)"`
	// DebugAddr serves net/http/pprof when set (e.g. 127.0.0.1:6060); keep
	// it off public interfaces.
	DebugAddr string `envconfig:"PUBLISHER_DEBUG_ADDR" desc:"serve net/http/pprof there (e.g. 127.0.0.1:6060); keep it private"`
	// Compression negotiates permessage-deflate with clients that offer
	// it. On by default: an eighth of the bytes for about a quarter more
	// CPU per delivered event (BENCHMARKS.md).
	Compression bool `envconfig:"PUBLISHER_COMPRESSION" default:"true" desc:"negotiate permessage-deflate with clients that offer it"`

	// HTTP are the HTTP server's connection limits, DefaultHTTPLimits
	// unless a test shortens them.
	HTTP HTTPLimits `ignored:"true"`
}

// LoadConfig reads the environment and validates it.
func LoadConfig() (Config, error) {
	c := Config{HTTP: DefaultHTTPLimits()}
	if err := config.Load(&c); err != nil {
		return Config{}, err
	}
	if c.ReplicaID == "" {
		host, err := os.Hostname()
		if err != nil {
			return Config{}, fmt.Errorf("PUBLISHER_REPLICA_ID is empty and the host name is unknown: %w", err)
		}
		c.ReplicaID = host
	}
	return c, c.Validate()
}

// Validate checks the rules that span fields.
func (c Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if c.JWTSecret == "" && c.JWTPublicKeyFile == "" {
		return fmt.Errorf("publisher: %w", auth.ErrNoKey)
	}
	if c.ReplicaID == "" || strings.ContainsAny(c.ReplicaID, " \t\r\n") {
		return fmt.Errorf("PUBLISHER_REPLICA_ID %q: want a non-empty name without spaces", c.ReplicaID)
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		if _, _, ok := parseOrigin(o); !ok {
			return fmt.Errorf("PUBLISHER_ALLOWED_ORIGINS %q: want http(s)://host[:port] or *", o)
		}
	}
	var errs []error
	positive := func(name string, ok bool) {
		if !ok {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	positive("PUBLISHER_AUTH_TIMEOUT", c.AuthTimeout > 0)
	positive("PUBLISHER_HEARTBEAT", c.Heartbeat > 0)
	positive("PUBLISHER_MAX_CHANNELS", c.MaxChannels > 0)
	positive("PUBLISHER_MAX_CONNS_PER_USER", c.MaxConnsPerUser > 0)
	positive("PUBLISHER_MAX_CONNS", c.MaxConns > 0)
	positive("PUBLISHER_RATE_LIMIT", c.RateLimit > 0)
	positive("PUBLISHER_RATE_BURST", c.RateBurst > 0)
	positive("PUBLISHER_REPLICA_TTL", c.ReplicaTTL > 0)
	positive("PUBLISHER_QUEUE_EVENTS", c.QueueEvents > 1)
	positive("PUBLISHER_QUEUE_BYTES", c.QueueBytes > 0)
	positive("PUBLISHER_DRAIN_TIMEOUT", c.DrainTimeout > 0)
	positive("PUBLISHER_STALL_AFTER", c.StallAfter > 0)
	if c.JWTLeeway < 0 {
		errs = append(errs, errors.New("JWT_LEEWAY must not be negative"))
	}
	if err := c.HTTP.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Redacted returns the configuration as it may be logged.
func (c Config) Redacted() Config {
	c.Common = c.Common.Redacted()
	if c.JWTSecret != "" {
		c.JWTSecret = "xxxxx"
	}
	return c
}

// AuthConfig is the token verification part.
func (c Config) AuthConfig() auth.Config {
	return auth.Config{
		Secret: c.JWTSecret, PublicKeyFile: c.JWTPublicKeyFile,
		Issuer: c.JWTIssuer, Audience: c.JWTAudience, Leeway: c.JWTLeeway,
	}
}
