// Package derive is the collector's stage between its source and the
// batcher. It passes every event on unchanged and, from trades, makes
// events of its own: 1-second bars (bar:SYMBOL) and signals
// (signal:SYMBOL). Event time (ts) drives both, so that a replay derives
// the same bars and signals at any speed.
//
// Bars. A trade opens its symbol's bar for the second it falls in
// ([start, start+1000) ms); a trade of that symbol in a later second
// closes it: the bar is emitted, stamped with its end, and the trade opens
// the next. A quiet symbol's bar is closed at Flush (end of input, or
// shutdown) and, for live sources (Config.CloseQuiet), by a wall-clock
// timer once its second has ended by the wall clock plus barGrace, the
// second being measured from when the bar's first trade arrived. A bar once
// emitted is final: a trade of an earlier second than its symbol's current
// or last bar is late, counted and left out of the bars (signals still see
// it), unless it is more than timeReset earlier, which means the source's
// time started again: then the symbol's bars and signals start afresh.
// Bars from the input pass through as well; both go to bar:SYMBOL.
//
// Signals. Per symbol and session (a UTC day of event time), after
// Config.Warmup trades:
//   - new_high, new_low: a trade above the session's highest (below its
//     lowest) price so far; data: price, prev_high or prev_low, move_pct
//     (the step beyond it, in percent).
//   - surge: the price moved at least Config.SurgePct percent within
//     Config.SurgeWindow (from the window's lowest up, or highest down), or
//     the volume of the window reached Config.SurgeVolumeX times its
//     average per window over the Config.SurgeBaseline before it (once the
//     session has lasted the window and the baseline); data: price,
//     move_pct (signed), window_ms, window_volume, and volume_ratio once
//     the baseline is known. A surge fires when the condition starts to
//     hold, not on every trade while it holds.
//
// Each type of signal fires at most once per Config.Cooldown of event time
// per symbol; suppressed signals are counted. A signal is stamped with the
// time of the trade that set it off.
//
// State. A Stage keeps state for at most Config.MaxSymbols symbols (of any
// kind of event): an event of a new symbol beyond it is refused, counted
// and logged at most every refusedLogEvery. A symbol without events for
// Config.Idle (wall clock) is forgotten, its open bar emitted first. The
// symbols sit in a min-heap by the time they are next due (bar close,
// idleness), so that a tick costs only the symbols due, not all of them.
//
// Data. Trades' data arrives typed (source.Event); derived events leave
// typed too, and are encoded to JSON once, after the stage.
//
// A Stage's methods are safe for concurrent use: the source calls Emit
// from its goroutine while Run closes quiet bars from another. Both call
// out under the Stage's lock, so that each channel's events keep their
// order; out must therefore not block (batch.Batcher.Add does not). Log
// lines about refused symbols are written after the lock is released.
package derive

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/collector/internal/source"
	"github.com/tickwire/tickwire/shared/event"
)

// MaxOut is the most events Emit passes on for one event: the event, a
// bar it closes, new_high or new_low, and a surge. A source that waits for
// room in the buffer between events needs room for this many.
const MaxOut = 4

// Timing of bars.
const (
	barMs      = 1000                   // the length of a bar, ms
	barGrace   = 250 * time.Millisecond // how long after its second a quiet bar waits for late trades
	quietEvery = 100 * time.Millisecond // how often Run looks for quiet bars and idle symbols
	timeReset  = 60_000                 // ms: a trade this much earlier than its symbol's time restarts it
	dayMs      = 24 * 60 * 60 * 1000
)

// Config says what a Stage derives.
type Config struct {
	// Bars builds 1-second bars from trades.
	Bars bool
	// Signals detects new highs, new lows and surges.
	Signals bool
	// CloseQuiet closes a bar by the wall clock when its symbol stops
	// trading; for live sources, whose event time follows the clock.
	CloseQuiet bool
	// Warmup is the number of trades of a symbol, in each session, before
	// it can signal.
	Warmup int
	// Cooldown is the least event time between two signals of one type for
	// one symbol; 0: no limit.
	Cooldown time.Duration
	// SurgePct is the price move, in percent, within SurgeWindow that is a
	// surge; 0 turns price surges off.
	SurgePct float64
	// SurgeWindow is the span of a surge, in event time. More than 0 when
	// either kind of surge is on.
	SurgeWindow time.Duration
	// SurgeVolumeX is the volume in SurgeWindow, as a multiple of its
	// average over SurgeBaseline, that is a surge; 0 turns volume surges
	// off.
	SurgeVolumeX float64
	// SurgeBaseline is the span before the window whose volume is the
	// average; at least SurgeWindow when volume surges are on.
	SurgeBaseline time.Duration
	// MaxSymbols caps the symbols known at once: an event of a new symbol
	// beyond it is refused. 0: no cap.
	MaxSymbols int
	// Idle is how long, by the wall clock, a symbol without events is
	// kept: then its open bar is emitted and its state forgotten, and it
	// no longer counts toward MaxSymbols. 0 means DefaultIdle.
	Idle time.Duration
}

// DefaultIdle is Config.Idle when left 0: long enough that a symbol
// trading a few times an hour keeps its session's highs and lows.
const DefaultIdle = 15 * time.Minute

// Stage passes events on and adds the bars and signals derived from them.
type Stage struct {
	cfg Config
	out func(source.Event)
	log *slog.Logger
	m   *metrics
	now func() time.Time // the wall clock of CloseQuiet and of idle symbols

	mu      sync.Mutex
	syms    map[string]*symbol
	due     dueHeap   // every symbol, soonest due first
	clock   time.Time // the wall clock at the last tick: when symbols were last seen
	refused refusals
}

// symbol is the state of one symbol's bars and signals.
type symbol struct {
	name string
	bar  barState
	sig  sigState
	seen time.Time // the Stage's clock when the symbol's last event came
	due  time.Time // when tick must look at the symbol again
	idx  int       // its place in Stage.due
}

// New returns a Stage passing events to out, and registers its metrics on
// reg. cfg is taken as given: the collector's Config.Validate checks it,
// once, beside its defaults.
func New(cfg Config, out func(source.Event), log *slog.Logger, reg prometheus.Registerer) (*Stage, error) {
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	return &Stage{
		cfg: cfg, out: out, log: log.With("component", "derive"), m: m,
		now: time.Now, syms: map[string]*symbol{}, clock: time.Now(),
	}, nil
}

// Emit passes e on, then the events derived from it. An event of a new
// symbol while Config.MaxSymbols are known is refused: counted, logged at
// most every refusedLogEvery, and not passed on.
func (s *Stage) Emit(e source.Event) {
	s.mu.Lock()
	sym := s.symbol(e.Channel.Symbol)
	if sym == nil {
		report := s.refuse(e.Channel.Symbol)
		s.mu.Unlock()
		report.log(s.log, s.cfg.MaxSymbols)
		return
	}
	defer s.mu.Unlock()
	s.out(e)
	if e.Channel.Kind != event.KindTrade || !(s.cfg.Bars || s.cfg.Signals) {
		return
	}
	tr, ok := source.TradeOf(e.Data)
	if !ok {
		s.m.skipped.Inc()
		return
	}
	if s.cfg.Bars {
		s.addToBar(sym, e.TS, tr)
	}
	if s.cfg.Signals {
		s.detect(sym, e.TS, tr)
	}
}

// Flush closes every open bar, in symbol order: at the end of the input,
// or at shutdown.
func (s *Stage) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	var open []*symbol
	for _, sym := range s.syms {
		if sym.bar.cur.open {
			open = append(open, sym)
		}
	}
	slices.SortFunc(open, func(a, b *symbol) int { return cmp.Compare(a.name, b.name) })
	for _, sym := range open {
		s.closeBar(sym)
	}
}

// Run ticks every quietEvery until ctx ends, then returns nil: each tick
// closes quiet bars by the wall clock (with Config.CloseQuiet) and forgets
// the symbols idle for Config.Idle.
func (s *Stage) Run(ctx context.Context) error {
	t := time.NewTicker(quietEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.tick(s.now())
		}
	}
}

// emit passes on an event of kind on sym with data v, a typed value that
// is encoded once, when it leaves the process.
func (s *Stage) emit(kind event.Kind, sym *symbol, ts int64, v any) {
	s.out(source.Event{Channel: event.Channel{Kind: kind, Symbol: sym.name}, TS: ts, Data: v})
}
