// Package monitor makes a stalled publisher replica loud. It watches the
// failure tickwire was built to end: users connected, events waiting in the
// buffer, nothing delivered, and nothing saying so.
//
// A Monitor polls each feed's consumer group (XINFO GROUPS, on the replica's
// short-command client, every second or so) for its lag, and a Tap between
// each feed reader and the hub counts the batches that get through. A shard
// whose group has unread entries while its tap has seen no batch get through
// for StallAfter is stalled: Ready reports it (so /readyz answers 503 with
// the reason), tickwire_publisher_stalled is 1, and one ERROR line says so
// (one INFO line when it ends).
//
// Concurrency: Tap.Publish runs on the reader goroutines and touches only
// atomics; Run is one goroutine and owns the per-shard verdict state; Ready
// and the gauges may be called from any goroutine.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/streams"
)

// ErrStalled is what Ready wraps while a shard is stalled: its group has
// unread entries and its reader has handed nothing on for StallAfter.
var ErrStalled = errors.New("feed stalled")

// DefaultStallAfter is PUBLISHER_STALL_AFTER's default.
const DefaultStallAfter = 5 * time.Second

const (
	maxInterval = time.Second           // poll period at most
	minInterval = 20 * time.Millisecond // poll period at least
	pollTimeout = 2 * time.Second       // bound of one XINFO GROUPS
)

// Config is what a Monitor watches.
type Config struct {
	Client     redis.UniversalClient // short commands; not the readers' clients
	Layout     streams.Layout
	Group      string        // this replica's consumer group
	StallAfter time.Duration // 0 means DefaultStallAfter
	Log        *slog.Logger
}

// Monitor watches a replica's feed readers. Build it with New, put its Tap
// between each reader and the hub, run Run once, and ask Ready.
type Monitor struct {
	cfg      Config
	interval time.Duration
	log      *slog.Logger
	shards   []*shard
	lag      *prometheus.GaugeVec
	stalled  prometheus.Gauge

	mu      sync.Mutex
	verdict error // nil, or why the replica is stalled; guarded by mu
}

// shard is one feed's state. progress and newestTS are written by the tap
// (reader goroutine); the rest is owned by Run.
type shard struct {
	feed     string
	progress atomic.Uint64 // batches the tap handed on
	newestTS atomic.Int64  // event time (Unix ms) of the newest event read

	seen         uint64    // progress at the previous poll
	waitingSince time.Time // since when lag > 0 with no progress; zero if not
	stalled      bool
	lag          int64
}

// New registers the monitor's series on reg: tickwire_publisher_group_lag
// and tickwire_publisher_feed_age_seconds per shard, and
// tickwire_publisher_stalled, all at zero.
func New(cfg Config, reg prometheus.Registerer) *Monitor {
	if cfg.StallAfter <= 0 {
		cfg.StallAfter = DefaultStallAfter
	}
	m := &Monitor{
		cfg:      cfg,
		interval: min(maxInterval, max(cfg.StallAfter/5, minInterval)),
		log:      cfg.Log.With("component", "monitor"),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tickwire_publisher_group_lag", Help: "Feed entries not yet read by this replica's consumer group (XINFO GROUPS lag).",
		}, []string{"shard"}),
		stalled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tickwire_publisher_stalled", Help: "1 while a feed of this replica has unread entries and its reader has made no progress for PUBLISHER_STALL_AFTER.",
		}),
	}
	reg.MustRegister(m.lag, m.stalled)
	for i, feed := range cfg.Layout.Feeds() {
		s := &shard{feed: feed}
		m.shards = append(m.shards, s)
		m.lag.WithLabelValues(strconv.Itoa(i)).Set(0)
		// A function, so that the age grows while nothing is read.
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "tickwire_publisher_feed_age_seconds",
			Help:        "Now minus the event time of the newest event read from the feed (0 until one is read).",
			ConstLabels: prometheus.Labels{"shard": strconv.Itoa(i)},
		}, s.age))
	}
	return m
}

// Ready returns nil unless a shard is stalled; then an error wrapping
// ErrStalled that says which and why.
func (m *Monitor) Ready() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.verdict
}

// Run polls every shard until ctx ends; it returns nil then. A failed poll
// is logged once per outage and leaves the verdict as it was: the readers
// report a Redis outage themselves.
func (m *Monitor) Run(ctx context.Context) error {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := m.poll(ctx, time.Now())
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			m.log.Warn("group lag poll failed; stall detection paused", "err", err)
			failing = true
		case err == nil && failing:
			m.log.Info("group lag poll works again")
			failing = false
		}
	}
}

// poll reads each shard's lag and updates the verdict.
func (m *Monitor) poll(ctx context.Context, now time.Time) error {
	var errs []error
	for i, s := range m.shards {
		lag, err := m.readLag(ctx, s.feed)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.lag = lag
		m.lag.WithLabelValues(strconv.Itoa(i)).Set(float64(lag))
		m.judge(i, s, now)
	}
	m.publish()
	return errors.Join(errs...)
}

// judge decides whether s is stalled now, and logs a change.
func (m *Monitor) judge(i int, s *shard, now time.Time) {
	p := s.progress.Load()
	progressed := p != s.seen
	s.seen = p
	switch {
	case s.lag <= 0 || progressed:
		s.waitingSince = time.Time{}
	case s.waitingSince.IsZero():
		s.waitingSince = now
	}
	stalled := !s.waitingSince.IsZero() && now.Sub(s.waitingSince) >= m.cfg.StallAfter
	if stalled == s.stalled {
		return
	}
	s.stalled = stalled
	if stalled {
		m.log.Error("feed stalled: unread entries and no reader progress; users of this replica receive nothing",
			"shard", i, "stream", s.feed, "group", m.cfg.Group, "lag", s.lag, "no_progress_for", now.Sub(s.waitingSince))
		return
	}
	m.log.Info("feed stall ended: reader progressing again", "shard", i, "stream", s.feed, "group", m.cfg.Group, "lag", s.lag)
}

// publish sets the verdict and the gauge from the shards' state.
func (m *Monitor) publish() {
	var verdict error
	for _, s := range m.shards {
		if s.stalled {
			verdict = fmt.Errorf("%w: %s has %d entries unread by group %s and its reader has handed nothing on for %v or more",
				ErrStalled, s.feed, s.lag, m.cfg.Group, m.cfg.StallAfter)
			break
		}
	}
	m.mu.Lock()
	m.verdict = verdict
	m.mu.Unlock()
	if verdict != nil {
		m.stalled.Set(1)
	} else {
		m.stalled.Set(0)
	}
}
