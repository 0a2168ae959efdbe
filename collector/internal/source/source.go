// Package source produces the collector's events: a synthetic random walk
// for development and load tests, a replay of a CSV or JSONL file, and
// JSONL read from a stream so that any feed can be piped in.
//
// Sources hand on typed values (Event, with data an event.Trade, Quote,
// Bar, or Raw JSON read from the input); Event.Encode makes the JSON once,
// where events leave the process.
//
// A source is run by one goroutine; the emit function it is given must be
// safe to call from that goroutine and must not block for long.
package source

import (
	"context"
	"fmt"
	"strings"

	"github.com/tickwire/tickwire/shared/event"
)

// Source produces events until its context ends or, for a finite source,
// its input ends.
type Source interface {
	// Run calls emit for each event, in order, from the calling goroutine,
	// and never after it has returned. It returns nil when ctx ends or the
	// input is exhausted, and an error only when the input failed.
	Run(ctx context.Context, emit func(Event)) error
}

// ParseSymbols trims and normalises a symbol list (COLLECTOR_SYMBOLS) and
// refuses an empty list, an invalid symbol or a duplicate.
func ParseSymbols(list []string) ([]string, error) {
	out := make([]string, 0, len(list))
	seen := make(map[string]bool, len(list))
	for _, s := range list {
		sym, err := event.NormalizeSymbol(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("symbol %q: %w", s, err)
		}
		if seen[sym] {
			return nil, fmt.Errorf("symbol %q listed twice", sym)
		}
		seen[sym] = true
		out = append(out, sym)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no symbols")
	}
	return out, nil
}
