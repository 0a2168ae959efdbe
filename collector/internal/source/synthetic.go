package source

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tickwire/tickwire/shared/event"
)

// Tuning of the synthetic market. Prices are kept in cents.
const (
	tickEvery   = 10 * time.Millisecond // pacing granularity; high rates emit many events per tick
	zipfExp     = 1.1                   // activity of the i-th symbol ∝ 1/i^zipfExp
	quoteShare  = 0.6                   // share of events that are quotes; the rest are trades
	volatility  = 2e-4                  // standard deviation of one step, relative to the price
	reversion   = 1e-5                  // pull towards the start price per step, so long runs stay plausible
	minMidCents = 100                   // prices never fall below a dollar
	pcgStream   = 0x7469636b77697265    // second PCG word ("tickwire"); the seed is the first
)

// SyntheticConfig configures a Synthetic source.
type SyntheticConfig struct {
	Symbols []string // normalised by NewSynthetic; earlier symbols are more active
	Rate    float64  // events per second over all symbols; must be > 0
	Seed    uint64   // 0 picks a random seed, which Seed reports
}

// Synthetic is a random walk over a set of symbols emitting trades and
// quotes at a fixed total rate, with activity skewed towards the first
// symbols. With the same seed it emits the same sequence of channels and
// data; only the timestamps (wall clock) and the grouping into ticks differ.
//
// Run must not be called by more than one goroutine at a time.
type Synthetic struct {
	rate float64
	seed uint64
	rng  *rand.Rand
	cum  []float64 // cumulative activity weights, for picking a symbol
	syms []walk
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
func (s *Synthetic) Run(ctx context.Context, emit func(event.Event)) error {
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
			emit(s.next(ts))
		}
	}
}

// next moves one symbol's walk a step and returns its trade or quote.
func (s *Synthetic) next(ts int64) event.Event {
	i, _ := slices.BinarySearch(s.cum, s.rng.Float64()*s.cum[len(s.cum)-1])
	w := &s.syms[min(i, len(s.syms)-1)]
	w.mid += w.mid*volatility*s.rng.NormFloat64() + (w.anchor-w.mid)*reversion
	w.mid = max(w.mid, minMidCents)

	spread := int64(1 + s.rng.IntN(3))
	bid := int64(math.Round(w.mid)) - spread/2
	ask := bid + spread
	e := event.Event{Channel: event.Channel{Symbol: w.symbol}, TS: ts}
	var v any
	if s.rng.Float64() < quoteShare {
		e.Channel.Kind = event.KindQuote
		v = event.Quote{
			Bid: dollars(bid), BidSize: float64(100 * (1 + s.rng.IntN(20))),
			Ask: dollars(ask), AskSize: float64(100 * (1 + s.rng.IntN(20))),
		}
	} else {
		e.Channel.Kind = event.KindTrade
		price := bid
		if s.rng.IntN(2) == 1 {
			price = ask
		}
		v = event.Trade{Price: dollars(price), Size: s.tradeSize()}
	}
	// Marshalling a struct of finite floats cannot fail.
	e.Data, _ = json.Marshal(v)
	return e
}

// tradeSize is mostly round lots, sometimes an odd lot.
func (s *Synthetic) tradeSize() float64 {
	if s.rng.IntN(5) == 0 {
		return float64(1 + s.rng.IntN(99))
	}
	return float64(100 * (1 + s.rng.IntN(10)))
}

// dollars converts cents to the float64 nearest the two-decimal price, which
// encoding/json prints with at most two decimals.
func dollars(cents int64) float64 { return float64(cents) / 100 }
