package derive

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/tickwire/tickwire/shared/event"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sink collects what a Stage passes on.
type sink struct{ events []event.Event }

func (s *sink) add(e event.Event) { s.events = append(s.events, e) }

// derived returns the events of kind, as "ch ts data" lines, and forgets
// everything collected.
func (s *sink) take(kinds ...event.Kind) []string {
	var out []string
	for _, e := range s.events {
		for _, k := range kinds {
			if e.Channel.Kind == k {
				out = append(out, fmt.Sprintf("%s %d %s", e.Channel, e.TS, e.Data))
			}
		}
	}
	s.events = nil
	return out
}

func newStage(t *testing.T, cfg Config) (*Stage, *sink) {
	t.Helper()
	var s sink
	st, err := New(cfg, s.add, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return st, &s
}

// tradeEv returns a trade event.
func tradeEv(sym string, ts int64, price, size float64) event.Event {
	data, _ := json.Marshal(event.Trade{Price: price, Size: size})
	return event.Event{Channel: event.Channel{Kind: event.KindTrade, Symbol: sym}, TS: ts, Data: data}
}

func lines(s ...string) string { return strings.Join(s, "\n") }
