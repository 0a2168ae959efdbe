package source

import (
	"encoding/json"
	"testing"

	"github.com/tickwire/tickwire/shared/event"
)

// data returns e's data as it leaves the process.
func data(e Event) json.RawMessage {
	out, err := e.Encode()
	if err != nil {
		panic(err)
	}
	return out.Data
}

// TestEncode: typed data is encoded once, raw data passed on byte for byte.
func TestEncode(t *testing.T) {
	ch := event.Channel{Kind: event.KindTrade, Symbol: "A"}
	tests := []struct {
		name string
		data any
		want string
	}{
		{"trade", event.Trade{Price: 1.5, Size: 100}, `{"price":1.5,"size":100}`},
		{"raw as read", NewRaw(event.KindTrade, json.RawMessage(`{ "price": 2, "venue":"X" }`)), `{ "price": 2, "venue":"X" }`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Event{Channel: ch, TS: 7, Data: tt.data}.Encode()
			if err != nil || string(out.Data) != tt.want || out.TS != 7 || out.Channel != ch {
				t.Errorf("Encode = %+v %s, %v; want data %s", out, out.Data, err, tt.want)
			}
		})
	}
}

// TestNewRaw: a raw trade's price and size are read once, at the input.
func TestNewRaw(t *testing.T) {
	tests := []struct {
		kind event.Kind
		data string
		want event.Trade
		ok   bool
	}{
		{event.KindTrade, `{"price":189.23,"size":100}`, event.Trade{Price: 189.23, Size: 100}, true},
		{event.KindTrade, `{"size":1,"price":2,"venue":"X"}`, event.Trade{Price: 2, Size: 1}, true},
		{event.KindTrade, `{"price":2}`, event.Trade{Price: 2}, true},
		{event.KindTrade, `{"price":"10"}`, event.Trade{}, false},
		{event.KindTrade, `{"price":0,"size":1}`, event.Trade{}, false},
		{event.KindTrade, `{"price":1,"size":-1}`, event.Trade{}, false},
		{event.KindQuote, `{"price":1,"size":1}`, event.Trade{}, false},
	}
	for _, tt := range tests {
		got, ok := TradeOf(NewRaw(tt.kind, json.RawMessage(tt.data)))
		if got != tt.want || ok != tt.ok {
			t.Errorf("%v %s: %+v %v, want %+v %v", tt.kind, tt.data, got, ok, tt.want, tt.ok)
		}
	}
}
