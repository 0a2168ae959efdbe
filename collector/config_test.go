package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/config"
	"github.com/tickwire/tickwire/shared/event"
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
		cfg.Retention.String() != "10m0s" || cfg.StreamPrefix != "md" || cfg.LeaseTTL.String() != "10s" || cfg.ID != "" || cfg.MaxSymbols != 50000 {
		t.Errorf("unexpected defaults: %+v", cfg)
	}
	if cfg.ReplayFile != "" || cfg.ReplaySpeed != 1 || cfg.ReplayLoop || cfg.ReplaySymbol != "" || cfg.ReplayStrict {
		t.Errorf("unexpected replay defaults: %+v", cfg)
	}
	if !cfg.Bars || !cfg.Signals || cfg.SignalWarmup != 50 || cfg.SignalCooldown.String() != "2m0s" ||
		cfg.SurgePct != 0.5 || cfg.SurgeWindow.String() != "10s" || cfg.SurgeVolumeX != 4 || cfg.SurgeBaseline.String() != "2m0s" {
		t.Errorf("unexpected derive defaults: %+v", cfg)
	}
}

// TestConfigHistoryPerKind: bars keep a trading day by default, the other
// kinds the common limits; the janitor runs at the shortest retention.
func TestConfigHistoryPerKind(t *testing.T) {
	cfg := loadConfig(t, nil)
	if cfg.HistoryLenBar != 30000 || cfg.RetentionBar != 24*time.Hour {
		t.Errorf("bar defaults %d, %v; want 30000, 24h", cfg.HistoryLenBar, cfg.RetentionBar)
	}
	w := cfg.writerConfig()
	if l := w.ByKind[event.KindBar]; l.Len != 30000 || l.Retention != 24*time.Hour {
		t.Errorf("bar limits %+v", l)
	}
	if _, ok := w.ByKind[event.KindTrade]; ok || w.HistoryLen != 1000 || w.Retention != 10*time.Minute {
		t.Errorf("trade limits changed: %+v", w)
	}
	if d := cfg.shortestRetention(); d != 10*time.Minute {
		t.Errorf("shortest retention %v, want 10m", d)
	}
	cfg.Retention = 0
	if d := cfg.shortestRetention(); d != 24*time.Hour {
		t.Errorf("shortest retention with trades kept forever %v, want 24h", d)
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
		{"replay", replay(nil), ""},
		{"replay fast", replay(map[string]string{"COLLECTOR_REPLAY_SPEED": "0", "COLLECTOR_REPLAY_LOOP": "true", "COLLECTOR_REPLAY_STRICT": "true"}), ""},
		{"replay symbol", replay(map[string]string{"COLLECTOR_REPLAY_SYMBOL": "spy"}), ""},
		{"replay without file", map[string]string{"COLLECTOR_SOURCE": "replay"}, "COLLECTOR_REPLAY_FILE"},
		{"replay negative speed", replay(map[string]string{"COLLECTOR_REPLAY_SPEED": "-1"}), "COLLECTOR_REPLAY_SPEED"},
		{"replay NaN speed", replay(map[string]string{"COLLECTOR_REPLAY_SPEED": "NaN"}), "COLLECTOR_REPLAY_SPEED"},
		{"replay bad symbol", replay(map[string]string{"COLLECTOR_REPLAY_SYMBOL": "A B"}), "COLLECTOR_REPLAY_SYMBOL"},
		{"replay tiny buffer", replay(map[string]string{"COLLECTOR_BUFFER": "4", "COLLECTOR_MAX_BATCH": "1"}), "COLLECTOR_BUFFER"},
		{"stdin tiny buffer", map[string]string{"COLLECTOR_SOURCE": "stdin", "COLLECTOR_BUFFER": "4", "COLLECTOR_MAX_BATCH": "1"}, "COLLECTOR_BUFFER"},
		{"synthetic tiny buffer", map[string]string{"COLLECTOR_BUFFER": "4", "COLLECTOR_MAX_BATCH": "1"}, ""},
		{"derive off", map[string]string{"COLLECTOR_BARS": "false", "COLLECTOR_SIGNALS": "false"}, ""},
		{"surges off", map[string]string{"COLLECTOR_SURGE_PCT": "0", "COLLECTOR_SURGE_VOLUME_X": "0", "COLLECTOR_SIGNAL_COOLDOWN": "0"}, ""},
		{"negative warm-up", map[string]string{"COLLECTOR_SIGNAL_WARMUP": "-1"}, "COLLECTOR_SIGNAL_WARMUP"},
		{"negative cooldown", map[string]string{"COLLECTOR_SIGNAL_COOLDOWN": "-1s"}, "COLLECTOR_SIGNAL_COOLDOWN"},
		{"negative surge", map[string]string{"COLLECTOR_SURGE_PCT": "-0.5"}, "COLLECTOR_SURGE_PCT"},
		{"infinite surge", map[string]string{"COLLECTOR_SURGE_PCT": "+Inf"}, "COLLECTOR_SURGE_PCT"},
		{"zero window", map[string]string{"COLLECTOR_SURGE_WINDOW": "0"}, "COLLECTOR_SURGE_WINDOW"},
		{"volume multiple 1", map[string]string{"COLLECTOR_SURGE_VOLUME_X": "1"}, "COLLECTOR_SURGE_VOLUME_X"},
		{"short baseline", map[string]string{"COLLECTOR_SURGE_BASELINE": "5s"}, "COLLECTOR_SURGE_BASELINE"},
		{"unknown source", map[string]string{"COLLECTOR_SOURCE": "kafka"}, "COLLECTOR_SOURCE"},
		{"bad symbol", map[string]string{"COLLECTOR_SYMBOLS": "AAPL,$$"}, "COLLECTOR_SYMBOLS"},
		{"duplicate symbol", map[string]string{"COLLECTOR_SYMBOLS": "AAPL,aapl"}, "COLLECTOR_SYMBOLS"},
		{"stdin ignores symbols", map[string]string{"COLLECTOR_SOURCE": "stdin", "COLLECTOR_SYMBOLS": "$$"}, ""},
		{"zero rate", map[string]string{"COLLECTOR_RATE": "0"}, "COLLECTOR_RATE"},
		{"negative interval", map[string]string{"COLLECTOR_FLUSH_INTERVAL": "-1s"}, "COLLECTOR_FLUSH_INTERVAL"},
		{"zero batch", map[string]string{"COLLECTOR_MAX_BATCH": "0"}, "COLLECTOR_MAX_BATCH"},
		{"small buffer", map[string]string{"COLLECTOR_BUFFER": "10"}, "COLLECTOR_BUFFER"},
		{"zero feed", map[string]string{"COLLECTOR_FEED_LEN": "0"}, "COLLECTOR_FEED_LEN"},
		{"zero bar history", map[string]string{"COLLECTOR_HISTORY_LEN_BAR": "0"}, "COLLECTOR_HISTORY_LEN_BAR"},
		{"negative bar retention", map[string]string{"COLLECTOR_RETENTION_BAR": "-1h"}, "COLLECTOR_RETENTION_BAR"},
		{"bars kept forever", map[string]string{"COLLECTOR_RETENTION_BAR": "0"}, ""},
		{"zero history", map[string]string{"COLLECTOR_HISTORY_LEN": "0"}, "COLLECTOR_HISTORY_LEN"},
		{"negative retention", map[string]string{"COLLECTOR_RETENTION": "-1m"}, "COLLECTOR_RETENTION"},
		{"empty addr", map[string]string{"COLLECTOR_ADDR": ""}, "COLLECTOR_ADDR"},
		{"lease off", map[string]string{"COLLECTOR_LEASE_TTL": "0"}, ""},
		{"no symbols allowed", map[string]string{"COLLECTOR_MAX_SYMBOLS": "0"}, "COLLECTOR_MAX_SYMBOLS"},
		{"more synthetic symbols than allowed", map[string]string{"COLLECTOR_MAX_SYMBOLS": "3"}, "COLLECTOR_MAX_SYMBOLS (3)"},
		{"short lease", map[string]string{"COLLECTOR_LEASE_TTL": "50ms"}, "COLLECTOR_LEASE_TTL"},
		{"negative lease", map[string]string{"COLLECTOR_LEASE_TTL": "-1s"}, "COLLECTOR_LEASE_TTL"},
		{"min replicas", map[string]string{"COLLECTOR_MIN_REPLICAS": "2"}, ""},
		{"negative min replicas", map[string]string{"COLLECTOR_MIN_REPLICAS": "-1"}, "COLLECTOR_MIN_REPLICAS"},
		{"half a sentinel", map[string]string{"REDIS_SENTINEL_MASTER": "m"}, "REDIS_SENTINEL_ADDRS"},
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

// replay is the environment of a replay of the test CSV, with extra.
func replay(extra map[string]string) map[string]string {
	env := map[string]string{"COLLECTOR_SOURCE": "replay", "COLLECTOR_REPLAY_FILE": "internal/source/testdata/replay.csv"}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

func TestConfigRedacted(t *testing.T) {
	cfg := loadConfig(t, map[string]string{"REDIS_URL": "redis://user:s3cret@localhost:6379/0"})
	if s := fmt.Sprintf("%+v", cfg.Redacted()); strings.Contains(s, "s3cret") {
		t.Errorf("redacted config shows the password: %s", s)
	}
}

func TestConfigHolderID(t *testing.T) {
	t.Run("set", func(t *testing.T) {
		if id := loadConfig(t, map[string]string{"COLLECTOR_ID": "east-1"}).holderID(); id != "east-1" {
			t.Errorf("holderID = %q, want COLLECTOR_ID", id)
		}
	})
	t.Run("default", func(t *testing.T) {
		want := "-" + strconv.Itoa(os.Getpid())
		if id := loadConfig(t, nil).holderID(); !strings.HasSuffix(id, want) || len(id) <= len(want) {
			t.Errorf("default holderID = %q, want host name and %s", id, want)
		}
	})
}
