package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tickwire/tickwire/shared/config"
)

// loadConfig reads the configuration as run does, with env set.
func loadConfig(t *testing.T, env map[string]string) Config {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

func TestConfigDefaults(t *testing.T) {
	cfg := loadConfig(t, nil)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if cfg.Addr != ":9101" || cfg.Source != "synthetic" || len(cfg.Symbols) != 10 || cfg.Rate != 200 ||
		cfg.MaxBatch != 1000 || cfg.Buffer != 100000 || cfg.FlushInterval.String() != "500ms" ||
		cfg.Retention.String() != "10m0s" || cfg.StreamPrefix != "md" {
		t.Errorf("unexpected defaults: %+v", cfg)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string // in the error; "" means valid
	}{
		{"stdin", map[string]string{"COLLECTOR_SOURCE": "stdin"}, ""},
		{"flush asap", map[string]string{"COLLECTOR_FLUSH_INTERVAL": "0"}, ""},
		{"replay", map[string]string{"COLLECTOR_SOURCE": "replay"}, "COLLECTOR_SOURCE=replay is not implemented yet"},
		{"unknown source", map[string]string{"COLLECTOR_SOURCE": "kafka"}, "COLLECTOR_SOURCE"},
		{"bad symbol", map[string]string{"COLLECTOR_SYMBOLS": "AAPL,$$"}, "COLLECTOR_SYMBOLS"},
		{"duplicate symbol", map[string]string{"COLLECTOR_SYMBOLS": "AAPL,aapl"}, "COLLECTOR_SYMBOLS"},
		{"stdin ignores symbols", map[string]string{"COLLECTOR_SOURCE": "stdin", "COLLECTOR_SYMBOLS": "$$"}, ""},
		{"zero rate", map[string]string{"COLLECTOR_RATE": "0"}, "COLLECTOR_RATE"},
		{"negative interval", map[string]string{"COLLECTOR_FLUSH_INTERVAL": "-1s"}, "COLLECTOR_FLUSH_INTERVAL"},
		{"zero batch", map[string]string{"COLLECTOR_MAX_BATCH": "0"}, "COLLECTOR_MAX_BATCH"},
		{"small buffer", map[string]string{"COLLECTOR_BUFFER": "10"}, "COLLECTOR_BUFFER"},
		{"zero feed", map[string]string{"COLLECTOR_FEED_LEN": "0"}, "COLLECTOR_FEED_LEN"},
		{"zero history", map[string]string{"COLLECTOR_HISTORY_LEN": "0"}, "COLLECTOR_HISTORY_LEN"},
		{"negative retention", map[string]string{"COLLECTOR_RETENTION": "-1m"}, "COLLECTOR_RETENTION"},
		{"empty addr", map[string]string{"COLLECTOR_ADDR": ""}, "COLLECTOR_ADDR"},
		{"common checked", map[string]string{"STREAM_SHARDS": "0"}, "STREAM_SHARDS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := loadConfig(t, tt.env).Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func TestConfigRedacted(t *testing.T) {
	cfg := loadConfig(t, map[string]string{"REDIS_URL": "redis://user:s3cret@localhost:6379/0"})
	if s := fmt.Sprintf("%+v", cfg.Redacted()); strings.Contains(s, "s3cret") {
		t.Errorf("redacted config shows the password: %s", s)
	}
}
