package source

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tickwire/tickwire/shared/event"
)

// Tuning of the synthetic market. Prices are kept in cents. Everything is
// counted in events, not seconds, so that a seed gives the same sequence at
// any rate; the comments give times at the default 200 events/s.
const (
	tickEvery   = 10 * time.Millisecond // pacing granularity; high rates emit many events per tick
	zipfExp     = 1.1                   // activity of the i-th symbol ∝ 1/i^zipfExp
	quoteShare  = 0.6                   // share of events that are quotes; the rest are trades
	volatility  = 5e-5                  // standard deviation of one step, relative to the price
	reversion   = 1e-5                  // pull towards the start price per step, so long runs stay plausible
	minMidCents = 100                   // prices never fall below a dollar
	pcgStream   = 0x7469636b77697265    // second PCG word ("tickwire"); the seed is the first

	// Trade sizes: mostly round lots of a few hundred shares, some odd
	// lots, and now and then a block print.
	oddLotShare = 0.15  // 1 to 99 shares
	blockShare  = 0.004 // 5,000 to 50,000 shares in round thousands
	meanLots    = 1.5   // round lots: 100 × (1 + exponential with this mean), at most maxLots
	maxLots     = 50

	// Bursts: news on one symbol. While one runs, burstShare of all events
	// are that symbol's, mostly trades of bigger size, and its price
	// drifts one way: a surge of price and volume over a few seconds.
	burstChance = 1.0 / 4000 // per event while none runs: about three a minute
	burstMinLen = 200        // events of the whole feed a burst lasts: 1 to 3 s
	burstMaxLen = 600
	burstShare  = 0.4
	burstTrades = 0.75 // share of trades among the burst symbol's events
	burstDrift  = 8e-5 // drift of each step of the burst symbol, relative, up or down
	burstLots   = 3    // its round lots are this many times larger
)

// SyntheticConfig configures a Synthetic source.
type SyntheticConfig struct {
	Symbols []string // normalised by NewSynthetic; earlier symbols are more active
	Rate    float64  // events per second over all symbols; must be > 0
	Seed    uint64   // 0 picks a random seed, which Seed reports
}

// Synthetic is a random walk over a set of symbols emitting trades and
// quotes at a fixed total rate, with activity skewed towards the first
// symbols, trades mostly in round lots with occasional block prints, and
// occasional bursts in which one symbol trades heavily and moves. With the same seed it emits the same sequence of channels and
// data; only the timestamps (wall clock) and the grouping into ticks differ.
//
// Run must not be called by more than one goroutine at a time.
type Synthetic struct {
	rate  float64
	seed  uint64
	rng   *rand.Rand
	cum   []float64 // cumulative activity weights, for picking a symbol
	syms  []walk
	burst burst
}

// burst is the news of the moment, if left > 0.
type burst struct {
	sym   int     // index into syms
	left  int     // events of the feed until it ends
	drift float64 // relative move per step of the symbol
}

// walk is one symbol's state.
type walk struct {
	symbol string
	mid    float64 // cents
	anchor float64 // start price in cents, which the walk reverts to
}

// NewSynthetic returns a Synthetic source for cfg.
func NewSynthetic(cfg SyntheticConfig) (*Synthetic, error) {
	syms, err := ParseSymbols(cfg.Symbols)
	if err != nil {
		return nil, err
	}
	if !(cfg.Rate > 0) || math.IsInf(cfg.Rate, 0) {
		return nil, fmt.Errorf("rate %v: want a positive number of events per second", cfg.Rate)
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	s := &Synthetic{rate: cfg.Rate, seed: seed, rng: rand.New(rand.NewPCG(seed, pcgStream))}
	total := 0.0
	for i, sym := range syms {
		total += 1 / math.Pow(float64(i+1), zipfExp)
		s.cum = append(s.cum, total)
		start := float64(10_000 + s.rng.IntN(40_001)) // $100 to $500
		s.syms = append(s.syms, walk{symbol: sym, mid: start, anchor: start})
	}
	return s, nil
}

// Seed returns the seed in use, so that a run with a random seed can be
// repeated.
func (s *Synthetic) Seed() uint64 { return s.seed }

// Run emits events until ctx ends, then returns nil. Every tick it emits the
// events owed since the previous tick; if it falls more than a second
// behind, it skips the debt rather than bursting.
func (s *Synthetic) Run(ctx context.Context, emit func(Event)) error {
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	last := time.Now()
	owed := 0.0
	maxOwed := max(1, s.rate)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Now()
		owed = min(owed+s.rate*now.Sub(last).Seconds(), maxOwed)
		last = now
		n := int(owed)
		owed -= float64(n)
		ts := now.UnixMilli()
		for range n {
			emit(s.Next(ts))
		}
	}
}

// Next moves one symbol's walk a step and returns its trade or quote,
// stamped ts. Run calls it; a simulation may call it directly to generate
// the same sequence without waiting for the clock. It must not be called
// concurrently with Run.
func (s *Synthetic) Next(ts int64) Event {
	i, bursting := s.pick()
	w := &s.syms[i]
	w.mid += w.mid*volatility*s.rng.NormFloat64() + (w.anchor-w.mid)*reversion
	if bursting {
		w.mid += w.mid * s.burst.drift
	}
	w.mid = max(w.mid, minMidCents)

	spread := int64(1 + s.rng.IntN(3))
	bid := int64(math.Round(w.mid)) - spread/2
	ask := bid + spread
	e := Event{Channel: event.Channel{Symbol: w.symbol}, TS: ts}
	tradeShare, lots := 1-quoteShare, 1
	if bursting {
		tradeShare, lots = burstTrades, burstLots
	}
	if s.rng.Float64() >= tradeShare {
		e.Channel.Kind = event.KindQuote
		e.Data = event.Quote{
			Bid: dollars(bid), BidSize: float64(100 * (1 + s.rng.IntN(20))),
			Ask: dollars(ask), AskSize: float64(100 * (1 + s.rng.IntN(20))),
		}
	} else {
		e.Channel.Kind = event.KindTrade
		price := bid
		if s.rng.IntN(2) == 1 {
			price = ask
		}
		e.Data = event.Trade{Price: dollars(price), Size: s.tradeSize(lots)}
	}
	return e
}

// pick chooses the symbol of the next event, starting and ending bursts;
// bursting says the event belongs to the running burst.
func (s *Synthetic) pick() (i int, bursting bool) {
	if s.burst.left == 0 && s.rng.Float64() < burstChance {
		s.burst = burst{sym: s.rng.IntN(len(s.syms)), left: burstMinLen + s.rng.IntN(burstMaxLen-burstMinLen+1), drift: burstDrift}
		if s.rng.IntN(2) == 0 {
			s.burst.drift = -burstDrift
		}
	}
	if s.burst.left > 0 {
		s.burst.left--
		if s.rng.Float64() < burstShare {
			return s.burst.sym, true
		}
	}
	i, _ = slices.BinarySearch(s.cum, s.rng.Float64()*s.cum[len(s.cum)-1])
	return min(i, len(s.syms)-1), false
}

// tradeSize is mostly round lots, sometimes an odd lot, rarely a block;
// lots multiplies the round lots.
func (s *Synthetic) tradeSize(lots int) float64 {
	switch r := s.rng.Float64(); {
	case r < blockShare:
		return float64(1000 * (5 + s.rng.IntN(46)))
	case r < blockShare+oddLotShare:
		return float64(1 + s.rng.IntN(99))
	default:
		n := min(1+int(s.rng.ExpFloat64()*meanLots), maxLots)
		return float64(100 * n * lots)
	}
}

// dollars converts cents to the float64 nearest the two-decimal price, which
// encoding/json prints with at most two decimals.
func dollars(cents int64) float64 { return float64(cents) / 100 }
