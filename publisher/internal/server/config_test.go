package server

import (
	"strings"
	"testing"
	"time"
)

// Validate refuses what would otherwise be dropped or misread at run time.
func TestConfigValidate(t *testing.T) {
	base := func() Config {
		c := (&env{}).config("pub-1")
		c.Common.RedisURL, c.Common.StreamPrefix, c.Common.StreamShards = "redis://127.0.0.1:6379/0", "md", 1
		c.Common.LogLevel, c.Common.LogFormat = "info", "text"
		return c
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("base config: %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string // part of the error; "" for none
	}{
		{"origins listed", func(c *Config) { c.AllowedOrigins = []string{"https://a.example", "http://localhost:3000/", "*"} }, ""},
		{"origin without scheme", func(c *Config) { c.AllowedOrigins = []string{"a.example"} }, "PUBLISHER_ALLOWED_ORIGINS"},
		{"origin with another scheme", func(c *Config) { c.AllowedOrigins = []string{"ftp://a.example"} }, "PUBLISHER_ALLOWED_ORIGINS"},
		{"origin with a path", func(c *Config) { c.AllowedOrigins = []string{"https://a.example/app"} }, "PUBLISHER_ALLOWED_ORIGINS"},
		{"HTTP limits missing", func(c *Config) { c.HTTP = HTTPLimits{} }, "HTTP limits"},
		{"idle timeout zero", func(c *Config) { c.HTTP.IdleTimeout = 0 }, "HTTP limits"},
		{"negative leeway", func(c *Config) { c.JWTLeeway = -time.Second }, "JWT_LEEWAY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mod(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

// LoadConfig fills the HTTP limits with their defaults: they are not read
// from the environment.
func TestLoadConfigHTTPDefaults(t *testing.T) {
	t.Setenv("JWT_SECRET", "x")
	t.Setenv("PUBLISHER_REPLICA_ID", "pub-1")
	c, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP != DefaultHTTPLimits() {
		t.Fatalf("HTTP limits %+v, want %+v", c.HTTP, DefaultHTTPLimits())
	}
}
