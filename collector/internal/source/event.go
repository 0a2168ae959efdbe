package source

import (
	"encoding/json"
	"fmt"

	"github.com/tickwire/tickwire/shared/event"
)

// Event is a market event as the collector's stages pass it to each
// other: its data is a typed value, encoded to JSON once, by Encode, when
// the event leaves the process for Redis. Data is one of event.Trade,
// event.Quote, event.Bar (sources and derived bars), a derived signal, or
// Raw (JSON as read from the input, passed on byte for byte).
type Event struct {
	Channel event.Channel
	TS      int64 // event time, Unix ms
	Data    any
}

// Raw is data read as JSON from the input (a JSONL line), passed on as it
// was read. For a trade, Trade is what the derive stage reads of it, valid
// when IsTrade: a positive price and a size of 0 or more (0 if absent).
type Raw struct {
	JSON    json.RawMessage
	Trade   event.Trade
	IsTrade bool
}

// NewRaw returns the Raw of data read for an event of kind: for a trade,
// its price and size are read once, here, at the input.
func NewRaw(kind event.Kind, data json.RawMessage) Raw {
	r := Raw{JSON: data}
	if kind == event.KindTrade {
		if t, err := decodeTrade(data); err == nil {
			r.Trade, r.IsTrade = event.Trade{Price: t.price, Size: t.size}, true
		}
	}
	return r
}

// TradeOf returns the price and size of a trade's data; ok is false for
// data of any other kind, or a trade without a positive price.
func TradeOf(data any) (t event.Trade, ok bool) {
	switch d := data.(type) {
	case event.Trade:
		return d, true // a source's own: checked when it was read
	case Raw:
		return d.Trade, d.IsTrade
	}
	return event.Trade{}, false
}

// Encode returns e as the stream writer takes it, with its data as JSON.
// It fails only for a value encoding/json refuses (a NaN, say), which no
// source or stage here makes.
func (e Event) Encode() (event.Event, error) {
	out := event.Event{Channel: e.Channel, TS: e.TS}
	if r, ok := e.Data.(Raw); ok {
		out.Data = r.JSON
		return out, nil
	}
	data, err := json.Marshal(e.Data)
	if err != nil {
		return event.Event{}, fmt.Errorf("encode %s data: %w", e.Channel, err)
	}
	out.Data = data
	return out, nil
}
