package source

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/poll"
)

var testSymbols = []string{"AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "BRK.B", "JPM", "V"}

// collect runs s until it has emitted n events and returns them.
func collect(t *testing.T, s *Synthetic, n int) []Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var got []Event
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, func(e Event) {
			mu.Lock()
			got = append(got, e)
			mu.Unlock()
		})
	}()
	poll.Until(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) < n {
			return fmt.Errorf("%d events, want %d", len(got), n)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	return got[:n]
}

func newSynthetic(t *testing.T, rate float64, seed uint64) *Synthetic {
	t.Helper()
	s, err := NewSynthetic(SyntheticConfig{Symbols: testSymbols, Rate: rate, Seed: seed})
	if err != nil {
		t.Fatalf("NewSynthetic: %v", err)
	}
	return s
}

func TestSyntheticDeterministic(t *testing.T) {
	const n = 2000
	a := collect(t, newSynthetic(t, 50_000, 42), n)
	b := collect(t, newSynthetic(t, 20_000, 42), n) // another rate: other ticks, same sequence
	c := collect(t, newSynthetic(t, 50_000, 43), n)
	same := func(x, y Event) bool { return x.Channel == y.Channel && string(data(x)) == string(data(y)) }
	for i := range n {
		if !same(a[i], b[i]) {
			t.Fatalf("event %d differs with the same seed: %s %s vs %s %s", i, a[i].Channel, data(a[i]), b[i].Channel, data(b[i]))
		}
	}
	differ := 0
	for i := range n {
		if !same(a[i], c[i]) {
			differ++
		}
	}
	if differ < n/2 {
		t.Errorf("seeds 42 and 43 gave %d of %d events alike", n-differ, n)
	}
}

func TestSyntheticRandomSeed(t *testing.T) {
	s := newSynthetic(t, 100, 0)
	if s.Seed() == 0 {
		t.Fatal("Seed() is 0 after asking for a random seed")
	}
}

func TestSyntheticRate(t *testing.T) {
	const rate = 5000
	s := newSynthetic(t, rate, 1)
	var mu sync.Mutex
	count := 0
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Run(ctx, func(Event) { mu.Lock(); count++; mu.Unlock() }); err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := rate * time.Since(start).Seconds()
	if got := float64(count); got < want*0.5 || got > want*1.5 {
		t.Errorf("emitted %v events, want about %.0f", got, want)
	}
}

func TestSyntheticData(t *testing.T) {
	before := time.Now().UnixMilli()
	events := collect(t, newSynthetic(t, 50_000, 7), 20_000)
	after := time.Now().UnixMilli()
	perSymbol := map[string]int{}
	kinds := map[event.Kind]int{}
	for i, e := range events {
		perSymbol[e.Channel.Symbol]++
		kinds[e.Channel.Kind]++
		if e.TS < before || e.TS > after {
			t.Fatalf("event %d: ts %d outside the run [%d, %d]", i, e.TS, before, after)
		}
		if err := event.CheckData(data(e)); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if err := checkPrices(e); err != nil {
			t.Fatalf("event %d %s %s: %v", i, e.Channel, data(e), err)
		}
	}
	if len(perSymbol) != len(testSymbols) {
		t.Errorf("events for %d symbols, want %d: %v", len(perSymbol), len(testSymbols), perSymbol)
	}
	if hot, cold := perSymbol["AAPL"], perSymbol["V"]; hot < 3*cold {
		t.Errorf("AAPL has %d events and V %d: want the first symbol much more active", hot, cold)
	}
	if kinds[event.KindTrade] == 0 || kinds[event.KindQuote] == 0 {
		t.Errorf("kinds %v: want trades and quotes", kinds)
	}
}

// checkPrices checks a trade's or quote's data: positive, in cents, bid < ask.
func checkPrices(e Event) error {
	switch e.Channel.Kind {
	case event.KindTrade:
		var tr event.Trade
		if err := json.Unmarshal(data(e), &tr); err != nil {
			return err
		}
		if !plausible(tr.Price) || tr.Size <= 0 {
			return fmt.Errorf("implausible trade %+v", tr)
		}
	case event.KindQuote:
		var q event.Quote
		if err := json.Unmarshal(data(e), &q); err != nil {
			return err
		}
		if !plausible(q.Bid) || !plausible(q.Ask) || q.Bid >= q.Ask || q.BidSize <= 0 || q.AskSize <= 0 {
			return fmt.Errorf("implausible quote %+v", q)
		}
	default:
		return fmt.Errorf("unexpected kind %s", e.Channel.Kind)
	}
	return nil
}

// plausible: a price between $1 and $1000 in whole cents.
func plausible(p float64) bool {
	cents := p * 100
	return p >= 0.99 && p < 1000 && math.Abs(cents-math.Round(cents)) < 1e-6
}

func TestNewSyntheticErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  SyntheticConfig
	}{
		{"no symbols", SyntheticConfig{Rate: 1}},
		{"bad symbol", SyntheticConfig{Symbols: []string{"AAPL", "A B"}, Rate: 1}},
		{"wildcard", SyntheticConfig{Symbols: []string{"*"}, Rate: 1}},
		{"duplicate", SyntheticConfig{Symbols: []string{"AAPL", "aapl"}, Rate: 1}},
		{"zero rate", SyntheticConfig{Symbols: []string{"AAPL"}}},
		{"negative rate", SyntheticConfig{Symbols: []string{"AAPL"}, Rate: -5}},
		{"NaN rate", SyntheticConfig{Symbols: []string{"AAPL"}, Rate: math.NaN()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewSynthetic(tt.cfg); err == nil {
				t.Error("NewSynthetic succeeded, want an error")
			}
		})
	}
}

func TestParseSymbolsNormalises(t *testing.T) {
	got, err := ParseSymbols([]string{" aapl", "brk.b ", "BTC-USD"})
	if err != nil {
		t.Fatalf("ParseSymbols: %v", err)
	}
	if fmt.Sprint(got) != "[AAPL BRK.B BTC-USD]" {
		t.Errorf("ParseSymbols = %v", got)
	}
}

// TestSyntheticTradeSizes: mostly round lots, some odd lots, rare blocks.
func TestSyntheticTradeSizes(t *testing.T) {
	s := newSynthetic(t, 200, 11)
	var trades, round, odd, block int
	for i := range 200_000 {
		e := s.Next(int64(i))
		if e.Channel.Kind != event.KindTrade {
			continue
		}
		var tr event.Trade
		if err := json.Unmarshal(data(e), &tr); err != nil {
			t.Fatal(err)
		}
		trades++
		switch {
		case tr.Size >= 5000:
			block++
		case tr.Size >= 100 && math.Mod(tr.Size, 100) == 0:
			round++
		case tr.Size >= 1 && tr.Size < 100:
			odd++
		default:
			t.Fatalf("trade size %v", tr.Size)
		}
	}
	share := func(n int) float64 { return float64(n) / float64(trades) }
	if share(round) < 0.75 || share(odd) < 0.08 || share(odd) > 0.25 || block == 0 || share(block) > 0.01 {
		t.Errorf("of %d trades: %.3f round lots, %.3f odd lots, %.4f blocks", trades, share(round), share(odd), share(block))
	}
}

// TestSyntheticBursts: now and then one symbol takes a large share of the
// feed for a while (outside bursts, no symbol but the first comes close).
func TestSyntheticBursts(t *testing.T) {
	s := newSynthetic(t, 200, 5)
	const n, block = 120_000, 200 // ten minutes at 200 events/s
	bursts := map[string]int{}
	count := map[string]int{}
	for i := range n {
		count[s.Next(int64(i)).Channel.Symbol]++
		if (i+1)%block > 0 {
			continue
		}
		for sym, c := range count {
			if sym != testSymbols[0] && c > block*3/10 {
				bursts[sym]++
			}
		}
		clear(count)
	}
	total := 0
	for _, c := range bursts {
		total += c
	}
	if total < 5 || len(bursts) < 3 {
		t.Errorf("bursting stretches per symbol %v: want bursts on several symbols", bursts)
	}
}
