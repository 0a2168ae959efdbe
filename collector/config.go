package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/tickwire/tickwire/collector/internal/derive"
	"github.com/tickwire/tickwire/collector/internal/source"
	"github.com/tickwire/tickwire/shared/config"
	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/streams"
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

	Addr          string        `envconfig:"COLLECTOR_ADDR" default:":9101" desc:"/healthz, /readyz, /metrics"`
	Source        string        `envconfig:"COLLECTOR_SOURCE" default:"synthetic" desc:"synthetic, replay or stdin"`
	Symbols       []string      `envconfig:"COLLECTOR_SYMBOLS" default:"AAPL,MSFT,NVDA,AMZN,GOOGL,META,TSLA,BRK.B,JPM,V" desc:"synthetic symbols"`
	Rate          float64       `envconfig:"COLLECTOR_RATE" default:"200" desc:"synthetic events/s, all symbols"`
	Seed          uint64        `envconfig:"COLLECTOR_SEED" default:"0" desc:"synthetic seed; 0 is random"`
	FlushInterval time.Duration `envconfig:"COLLECTOR_FLUSH_INTERVAL" default:"500ms" desc:"batch interval; 0 writes as soon as the last write returned"`
	MaxBatch      int           `envconfig:"COLLECTOR_MAX_BATCH" default:"1000" desc:"events waiting that start a write early"`
	Buffer        int           `envconfig:"COLLECTOR_BUFFER" default:"100000" desc:"events kept while Redis is unreachable"`
	FeedLen       int64         `envconfig:"COLLECTOR_FEED_LEN" default:"100000" desc:"approximate length of each feed stream"`
	HistoryLen    int64         `envconfig:"COLLECTOR_HISTORY_LEN" default:"1000" desc:"approximate length of each channel's history"`
	Retention     time.Duration `envconfig:"COLLECTOR_RETENTION" default:"10m" desc:"history age limit; 0 keeps all"`
	// Bars feed charts: a trading day of 1-second bars is about 23400.
	HistoryLenBar int64         `envconfig:"COLLECTOR_HISTORY_LEN_BAR" default:"30000" desc:"approximate length of each bar: history (a trading day of 1-second bars)"`
	RetentionBar  time.Duration `envconfig:"COLLECTOR_RETENTION_BAR" default:"24h" desc:"bar: history age limit; 0 keeps all"`
	LeaseTTL      time.Duration `envconfig:"COLLECTOR_LEASE_TTL" default:"10s" desc:"lease of the active collector (<prefix>:collector:leader), renewed every third of it; 0: no lease, always active"`
	MinReplicas   int           `envconfig:"COLLECTOR_MIN_REPLICAS" default:"0" desc:"replicas WAIT must confirm before a batch counts as written; until then it stays buffered and is retried"`
	ID            string        `envconfig:"COLLECTOR_ID" desc:"this collector's id as lease holder (empty: host name-pid)"`
	MaxSymbols    int           `envconfig:"COLLECTOR_MAX_SYMBOLS" default:"50000" desc:"distinct symbols known at once; events of more are refused"`

	ReplayFile   string  `envconfig:"COLLECTOR_REPLAY_FILE" desc:"CSV or JSONL file of the replay source"`
	ReplaySpeed  float64 `envconfig:"COLLECTOR_REPLAY_SPEED" default:"1" desc:"1 real time, N times faster, 0 as fast as Redis takes it"`
	ReplayLoop   bool    `envconfig:"COLLECTOR_REPLAY_LOOP" default:"false" desc:"start again at the end of the file, times shifted forward"`
	ReplaySymbol string  `envconfig:"COLLECTOR_REPLAY_SYMBOL" desc:"symbol of CSV rows without one"`
	ReplayStrict bool    `envconfig:"COLLECTOR_REPLAY_STRICT" default:"false" desc:"stop at the first bad row instead of skipping it"`

	Bars           bool          `envconfig:"COLLECTOR_BARS" default:"true" desc:"derive 1-second bars (bar:SYMBOL) from trades"`
	Signals        bool          `envconfig:"COLLECTOR_SIGNALS" default:"true" desc:"derive new_high, new_low, surge (signal:SYMBOL) from trades"`
	SignalWarmup   int           `envconfig:"COLLECTOR_SIGNAL_WARMUP" default:"50" desc:"trades per symbol and session before it signals"`
	SignalCooldown time.Duration `envconfig:"COLLECTOR_SIGNAL_COOLDOWN" default:"2m" desc:"least event time between two signals of one type and symbol; 0: none"`
	SurgePct       float64       `envconfig:"COLLECTOR_SURGE_PCT" default:"0.5" desc:"price move within the window that is a surge, percent; 0: off"`
	SurgeWindow    time.Duration `envconfig:"COLLECTOR_SURGE_WINDOW" default:"10s" desc:"span of a surge, event time"`
	SurgeVolumeX   float64       `envconfig:"COLLECTOR_SURGE_VOLUME_X" default:"4" desc:"window volume over its average that is a surge; 0: off"`
	SurgeBaseline  time.Duration `envconfig:"COLLECTOR_SURGE_BASELINE" default:"2m" desc:"span before the window whose volume is the average"`
}

// minLeaseTTL is the shortest COLLECTOR_LEASE_TTL: renewals come every
// third of it, and each must reach Redis within that third.
const minLeaseTTL = 100 * time.Millisecond

// holderID is the collector's id as lease holder: COLLECTOR_ID, or the
// host name and process id.
func (c Config) holderID() string {
	if c.ID != "" {
		return c.ID
	}
	host, err := os.Hostname()
	if err != nil {
		host = "collector"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
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
		if err := c.validateReplay(); err != nil {
			return err
		}
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
	if c.HistoryLenBar < 1 {
		return fmt.Errorf("COLLECTOR_HISTORY_LEN_BAR %d: want at least 1", c.HistoryLenBar)
	}
	if c.RetentionBar < 0 {
		return fmt.Errorf("COLLECTOR_RETENTION_BAR %v: want 0 (keep all) or more", c.RetentionBar)
	}
	if c.MaxSymbols < 1 {
		return fmt.Errorf("COLLECTOR_MAX_SYMBOLS %d: want at least 1", c.MaxSymbols)
	}
	if c.Source == sourceSynthetic && len(c.Symbols) > c.MaxSymbols {
		return fmt.Errorf("COLLECTOR_SYMBOLS lists %d symbols: want at most COLLECTOR_MAX_SYMBOLS (%d)", len(c.Symbols), c.MaxSymbols)
	}
	if c.MinReplicas < 0 {
		return fmt.Errorf("COLLECTOR_MIN_REPLICAS %d: want 0 (no wait) or more", c.MinReplicas)
	}
	if c.LeaseTTL != 0 && c.LeaseTTL < minLeaseTTL {
		return fmt.Errorf("COLLECTOR_LEASE_TTL %v: want 0 (no lease) or at least %v", c.LeaseTTL, minLeaseTTL)
	}
	if min := 2 * derive.MaxOut; c.Source != sourceSynthetic && c.Buffer < min {
		return fmt.Errorf("COLLECTOR_BUFFER %d: want at least %d with a source that waits for room (replay, stdin)", c.Buffer, min)
	}
	return c.validateDerive()
}

// validateReplay checks the settings of the replay source.
func (c Config) validateReplay() error {
	if c.ReplayFile == "" {
		return errors.New("COLLECTOR_REPLAY_FILE is empty: want the path of a CSV or JSONL file to replay")
	}
	if !(c.ReplaySpeed >= 0) || math.IsInf(c.ReplaySpeed, 0) {
		return fmt.Errorf("COLLECTOR_REPLAY_SPEED %v: want 1 (real time), N (N times faster) or 0 (as fast as Redis takes it)", c.ReplaySpeed)
	}
	if c.ReplaySymbol != "" {
		if _, err := event.NormalizeSymbol(c.ReplaySymbol); err != nil {
			return fmt.Errorf("COLLECTOR_REPLAY_SYMBOL %q: %w", c.ReplaySymbol, err)
		}
	}
	return nil
}

// validateDerive checks the settings of bars and signals.
func (c Config) validateDerive() error {
	switch {
	case c.SignalWarmup < 0:
		return fmt.Errorf("COLLECTOR_SIGNAL_WARMUP %d: want 0 or more trades", c.SignalWarmup)
	case c.SignalCooldown < 0:
		return fmt.Errorf("COLLECTOR_SIGNAL_COOLDOWN %v: want 0 (no limit) or more", c.SignalCooldown)
	case !(c.SurgePct >= 0) || math.IsInf(c.SurgePct, 0):
		return fmt.Errorf("COLLECTOR_SURGE_PCT %v: want a percentage, or 0 to turn price surges off", c.SurgePct)
	case c.SurgeWindow < time.Millisecond:
		return fmt.Errorf("COLLECTOR_SURGE_WINDOW %v: want at least 1ms", c.SurgeWindow)
	case !(c.SurgeVolumeX == 0 || c.SurgeVolumeX > 1) || math.IsInf(c.SurgeVolumeX, 0):
		return fmt.Errorf("COLLECTOR_SURGE_VOLUME_X %v: want a multiple above 1, or 0 to turn volume surges off", c.SurgeVolumeX)
	case c.SurgeBaseline < c.SurgeWindow:
		return fmt.Errorf("COLLECTOR_SURGE_BASELINE %v: want at least COLLECTOR_SURGE_WINDOW (%v)", c.SurgeBaseline, c.SurgeWindow)
	}
	return nil
}

// deriveConfig is the configuration of the derive stage: a wall-clock
// timer closes quiet bars for the live sources, whose event time follows
// the clock, not for a replay, whose time is the file's.
func (c Config) deriveConfig() derive.Config {
	return derive.Config{
		Bars: c.Bars, Signals: c.Signals, CloseQuiet: c.Source != sourceReplay,
		Warmup: c.SignalWarmup, Cooldown: c.SignalCooldown,
		SurgePct: c.SurgePct, SurgeWindow: c.SurgeWindow,
		SurgeVolumeX: c.SurgeVolumeX, SurgeBaseline: c.SurgeBaseline,
		MaxSymbols: c.MaxSymbols, Idle: derive.DefaultIdle,
	}
}

// Redacted returns the settings as they may be logged.
func (c Config) Redacted() Config {
	c.Common = c.Common.Redacted()
	return c
}

// writerConfig sizes the streams: the feed, and history per kind (bars
// kept long enough to draw a trading day).
func (c Config) writerConfig() streams.WriterConfig {
	return streams.WriterConfig{
		FeedLen: c.FeedLen, HistoryLen: c.HistoryLen, Retention: c.Retention, MinReplicas: c.MinReplicas,
		ByKind: map[event.Kind]streams.HistoryLimits{event.KindBar: {Len: c.HistoryLenBar, Retention: c.RetentionBar}},
	}
}

// shortestRetention is the shortest history retention of any kind (0:
// history is kept forever), which paces the channel-set janitor.
func (c Config) shortestRetention() time.Duration {
	var d time.Duration
	for _, r := range []time.Duration{c.Retention, c.RetentionBar} {
		if r > 0 && (d == 0 || r < d) {
			d = r
		}
	}
	return d
}
