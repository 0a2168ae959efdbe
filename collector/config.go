package main

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/tickwire/tickwire/collector/internal/source"
	"github.com/tickwire/tickwire/shared/config"
)

// Sources the collector knows, as COLLECTOR_SOURCE names them.
const (
	sourceSynthetic = "synthetic"
	sourceReplay    = "replay"
	sourceStdin     = "stdin"
)

// Config is the collector's configuration, read once from the environment.
type Config struct {
	config.Common

	Addr          string        `envconfig:"COLLECTOR_ADDR" default:":9101"`       // /healthz, /readyz, /metrics
	Source        string        `envconfig:"COLLECTOR_SOURCE" default:"synthetic"` // synthetic or stdin
	Symbols       []string      `envconfig:"COLLECTOR_SYMBOLS" default:"AAPL,MSFT,NVDA,AMZN,GOOGL,META,TSLA,BRK.B,JPM,V"`
	Rate          float64       `envconfig:"COLLECTOR_RATE" default:"200"`             // synthetic events per second, all symbols
	Seed          uint64        `envconfig:"COLLECTOR_SEED" default:"0"`               // synthetic seed; 0 is random
	FlushInterval time.Duration `envconfig:"COLLECTOR_FLUSH_INTERVAL" default:"500ms"` // 0: write as soon as the last write returned
	MaxBatch      int           `envconfig:"COLLECTOR_MAX_BATCH" default:"1000"`       // events waiting that start a write early
	Buffer        int           `envconfig:"COLLECTOR_BUFFER" default:"100000"`        // events kept while Redis is down
	FeedLen       int64         `envconfig:"COLLECTOR_FEED_LEN" default:"100000"`      // approximate MAXLEN of each feed
	HistoryLen    int64         `envconfig:"COLLECTOR_HISTORY_LEN" default:"1000"`     // approximate MAXLEN of each history
	Retention     time.Duration `envconfig:"COLLECTOR_RETENTION" default:"10m"`        // history age limit; 0 keeps all
}

// Validate checks the settings, each error naming its variable.
func (c Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if c.Addr == "" {
		return errors.New("COLLECTOR_ADDR is empty: want host:port, e.g. :9101")
	}
	switch c.Source {
	case sourceSynthetic:
		if _, err := source.ParseSymbols(c.Symbols); err != nil {
			return fmt.Errorf("COLLECTOR_SYMBOLS: %w", err)
		}
		if !(c.Rate > 0) || math.IsInf(c.Rate, 0) {
			return fmt.Errorf("COLLECTOR_RATE %v: want a positive number of events per second", c.Rate)
		}
	case sourceStdin:
	case sourceReplay:
		return errors.New("COLLECTOR_SOURCE=replay is not implemented yet: use synthetic or stdin")
	default:
		return fmt.Errorf("COLLECTOR_SOURCE %q: want synthetic, replay or stdin", c.Source)
	}
	if c.FlushInterval < 0 {
		return fmt.Errorf("COLLECTOR_FLUSH_INTERVAL %v: want 0 or more", c.FlushInterval)
	}
	if c.MaxBatch < 1 {
		return fmt.Errorf("COLLECTOR_MAX_BATCH %d: want at least 1", c.MaxBatch)
	}
	if c.Buffer < c.MaxBatch {
		return fmt.Errorf("COLLECTOR_BUFFER %d: want at least COLLECTOR_MAX_BATCH (%d)", c.Buffer, c.MaxBatch)
	}
	if c.FeedLen < 1 {
		return fmt.Errorf("COLLECTOR_FEED_LEN %d: want at least 1", c.FeedLen)
	}
	if c.HistoryLen < 1 {
		return fmt.Errorf("COLLECTOR_HISTORY_LEN %d: want at least 1", c.HistoryLen)
	}
	if c.Retention < 0 {
		return fmt.Errorf("COLLECTOR_RETENTION %v: want 0 (keep all) or more", c.Retention)
	}
	return nil
}

// Redacted returns the settings as they may be logged.
func (c Config) Redacted() Config {
	c.Common = c.Common.Redacted()
	return c
}
