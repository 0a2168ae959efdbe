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

	"github.com/tickwire/tickwire/collector/internal/source"
	"github.com/tickwire/tickwire/shared/event"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sink collects what a Stage passes on, encoded as it leaves the process.
type sink struct{ events []event.Event }

func (s *sink) add(e source.Event) {
	out, err := e.Encode()
	if err != nil {
		panic(err)
	}
	s.events = append(s.events, out)
}

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

// tradeEv returns a trade event, its data typed as a source makes it.
func tradeEv(sym string, ts int64, price, size float64) source.Event {
	return source.Event{Channel: event.Channel{Kind: event.KindTrade, Symbol: sym}, TS: ts, Data: event.Trade{Price: price, Size: size}}
}

// rawEv returns an event of kind with data as read from JSONL input.
func rawEv(kind event.Kind, sym string, ts int64, data string) source.Event {
	return source.Event{Channel: event.Channel{Kind: kind, Symbol: sym}, TS: ts, Data: source.NewRaw(kind, json.RawMessage(data))}
}

func lines(s ...string) string { return strings.Join(s, "\n") }

// encoded returns e's data as it leaves the process.
func encoded(e source.Event) string {
	out, err := e.Encode()
	if err != nil {
		panic(err)
	}
	return string(out.Data)
}
