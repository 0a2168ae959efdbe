package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tickwire/tickwire/shared/event"
)

// entryOf builds the map go-redis returns for an entry written with
// e.Fields(): field name to string value.
func entryOf(t testing.TB, e *event.Event) map[string]any {
	t.Helper()
	fields := e.Fields()
	if len(fields)%2 != 0 {
		t.Fatalf("Fields() has odd length %d", len(fields))
	}
	m := make(map[string]any, len(fields)/2)
	for i := 0; i < len(fields); i += 2 {
		k, ok := fields[i].(string)
		if !ok {
			t.Fatalf("field name %d is %T, want string", i, fields[i])
		}
		v, ok := fields[i+1].(string)
		if !ok {
			t.Fatalf("field %s value is %T, want string", k, fields[i+1])
		}
		m[k] = v
	}
	return m
}

func TestFieldsNames(t *testing.T) {
	e := event.Event{Channel: event.Channel{Kind: event.KindTrade, Symbol: "AAPL"}, TS: 1764288000120, Data: json.RawMessage(`{"price":1,"size":2}`)}
	want := []any{"ch", "trade:AAPL", "ts", "1764288000120", "data", `{"price":1,"size":2}`}
	if got := e.Fields(); !reflect.DeepEqual(got, want) {
		t.Errorf("Fields() = %#v, want %#v", got, want)
	}
}

func TestFromEntryRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		e    event.Event
	}{
		{"trade", event.Event{Channel: event.Channel{Kind: event.KindTrade, Symbol: "AAPL"}, TS: 1764288000120, Data: json.RawMessage(`{"price":189.23,"size":100}`)}},
		{"quote", event.Event{Channel: event.Channel{Kind: event.KindQuote, Symbol: "EUR/USD"}, TS: 1, Data: json.RawMessage(`{"bid":1.08,"bid_size":1e6,"ask":1.0801,"ask_size":2e6}`)}},
		{"bar", event.Event{Channel: event.Channel{Kind: event.KindBar, Symbol: "BRK.B"}, TS: 0, Data: json.RawMessage(`{"open":1,"high":2,"low":0.5,"close":1.5,"volume":10,"start":0,"end":60000}`)}},
		{"signal", event.Event{Channel: event.Channel{Kind: event.KindSignal, Symbol: "BTC-USD"}, TS: 1 << 62, Data: json.RawMessage(`{"signal":"new_high","price":99000.5,"window":"1m"}`)}},
		{"empty object", event.Event{Channel: event.Channel{Kind: event.KindTrade, Symbol: "X"}, TS: 5, Data: json.RawMessage(`{}`)}},
		{"whitespace and unicode", event.Event{Channel: event.Channel{Kind: event.KindTrade, Symbol: "X"}, TS: 5, Data: json.RawMessage(" {\"note\": \"é \\u00e9 \\\"q\\\"\"}\n")}},
		{"max data size", event.Event{Channel: event.Channel{Kind: event.KindTrade, Symbol: "X"}, TS: 5, Data: json.RawMessage(`{"p":"` + strings.Repeat("a", event.MaxDataSize-8) + `"}`)}},
	}
	ids := []event.ID{{Ms: 1764288000123}, {Ms: 1764288000123, Seq: 42}}
	for _, tt := range tests {
		for _, id := range ids {
			t.Run(tt.name+"/"+id.String(), func(t *testing.T) {
				got, err := event.FromEntry(id.String(), entryOf(t, &tt.e))
				if err != nil {
					t.Fatalf("FromEntry: %v", err)
				}
				want := tt.e
				want.ID = id
				if got.Channel != want.Channel || got.ID != want.ID || got.TS != want.TS || !bytes.Equal(got.Data, want.Data) {
					t.Errorf("FromEntry = %+v\nwant       %+v", got, want)
				}
			})
		}
	}
}

func TestFromEntryNormalisesChannel(t *testing.T) {
	got, err := event.FromEntry("1-0", map[string]any{"ch": "TRADE:aapl", "ts": "1", "data": "{}"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Channel.String() != "trade:AAPL" {
		t.Errorf("channel = %q, want trade:AAPL", got.Channel.String())
	}
}

func TestFromEntryRefusals(t *testing.T) {
	valid := func() map[string]any {
		return map[string]any{"ch": "trade:AAPL", "ts": "1764288000120", "data": `{"price":1,"size":2}`}
	}
	with := func(k string, v any) map[string]any {
		m := valid()
		m[k] = v
		return m
	}
	without := func(k string) map[string]any {
		m := valid()
		delete(m, k)
		return m
	}
	huge := `{"p":"` + strings.Repeat("a", event.MaxDataSize) + `"}`
	tests := []struct {
		name   string
		id     string
		values map[string]any
		want   error
	}{
		{"missing ch", "1-0", without("ch"), event.ErrMissingField},
		{"missing ts", "1-0", without("ts"), event.ErrMissingField},
		{"missing data", "1-0", without("data"), event.ErrMissingField},
		{"nil map", "1-0", nil, event.ErrMissingField},
		{"ch not a string", "1-0", with("ch", 7), event.ErrMissingField},
		{"ts not a string", "1-0", with("ts", int64(7)), event.ErrMissingField},
		{"data not a string", "1-0", with("data", []byte("{}")), event.ErrMissingField},
		{"bad JSON", "1-0", with("data", `{"price":`), event.ErrBadData},
		{"trailing garbage", "1-0", with("data", `{"price":1} x`), event.ErrBadData},
		{"two objects", "1-0", with("data", `{}{}`), event.ErrBadData},
		{"array data", "1-0", with("data", `[1,2]`), event.ErrBadData},
		{"string data", "1-0", with("data", `"x"`), event.ErrBadData},
		{"number data", "1-0", with("data", `42`), event.ErrBadData},
		{"null data", "1-0", with("data", `null`), event.ErrBadData},
		{"empty data", "1-0", with("data", ``), event.ErrBadData},
		{"blank data", "1-0", with("data", " \n"), event.ErrBadData},
		{"huge data", "1-0", with("data", huge), event.ErrBadData},
		{"wildcard channel", "1-0", with("ch", "trade:*"), event.ErrInvalidChannel},
		{"bad channel", "1-0", with("ch", "trade:"), event.ErrInvalidChannel},
		{"unknown kind", "1-0", with("ch", "order:AAPL"), event.ErrInvalidChannel},
		{"bare star channel", "1-0", with("ch", "*"), event.ErrInvalidChannel},
		{"negative ts", "1-0", with("ts", "-1"), event.ErrBadTimestamp},
		{"fractional ts", "1-0", with("ts", "1.5"), event.ErrBadTimestamp},
		{"exponent ts", "1-0", with("ts", "1e3"), event.ErrBadTimestamp},
		{"word ts", "1-0", with("ts", "now"), event.ErrBadTimestamp},
		{"empty ts", "1-0", with("ts", ""), event.ErrBadTimestamp},
		{"overflowing ts", "1-0", with("ts", "9223372036854775808"), event.ErrBadTimestamp},
		{"bad id", "x-0", valid(), event.ErrInvalidID},
		{"empty id", "", valid(), event.ErrInvalidID},
		{"id with trailing dash", "1-", valid(), event.ErrInvalidID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := event.FromEntry(tt.id, tt.values)
			if err == nil {
				t.Fatalf("FromEntry = %+v, want an error", got)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("FromEntry error %v, want one wrapping %v", err, tt.want)
			}
			if len(err.Error()) > 300 {
				t.Errorf("error message is %d bytes long; hostile input must be clipped", len(err.Error()))
			}
			if got.Channel != (event.Channel{}) || got.ID != (event.ID{}) || got.TS != 0 || got.Data != nil {
				t.Errorf("FromEntry returned %+v with its error, want the zero Event", got)
			}
		})
	}
}

func TestFromEntryClipsLongTimestamp(t *testing.T) {
	_, err := event.FromEntry("1-0", map[string]any{"ch": "trade:A", "ts": strings.Repeat("9", 10_000), "data": "{}"})
	if !errors.Is(err, event.ErrBadTimestamp) {
		t.Fatalf("err = %v, want ErrBadTimestamp", err)
	}
	if len(err.Error()) > 200 {
		t.Errorf("error message is %d bytes", len(err.Error()))
	}
}

func TestCheckData(t *testing.T) {
	if err := event.CheckData([]byte(`{"a":1}`)); err != nil {
		t.Errorf("CheckData(object) = %v", err)
	}
	exact := []byte(`{"p":"` + strings.Repeat("a", event.MaxDataSize-8) + `"}`)
	if len(exact) != event.MaxDataSize {
		t.Fatalf("test data is %d bytes, want %d", len(exact), event.MaxDataSize)
	}
	if err := event.CheckData(exact); err != nil {
		t.Errorf("CheckData(%d bytes) = %v, want nil", len(exact), err)
	}
	over := append([]byte(`{"pp":"`), exact[6:]...)
	if err := event.CheckData(over); !errors.Is(err, event.ErrBadData) {
		t.Errorf("CheckData(%d bytes) = %v, want ErrBadData", len(over), err)
	}
}

func TestAppendWire(t *testing.T) {
	e := event.Event{
		Channel: event.Channel{Kind: event.KindTrade, Symbol: "AAPL"},
		ID:      event.ID{Ms: 1764288000123},
		TS:      1764288000120,
		Data:    json.RawMessage(`{"price":189.23,"size":100}`),
	}
	// The example EVENT of docs/protocol.md, byte for byte.
	const want = `{"ch":"trade:AAPL","id":"1764288000123-0","ts":1764288000120,"data":{"price":189.23,"size":100}}`
	if got := string(e.AppendWire(nil)); got != want {
		t.Errorf("AppendWire = %s\nwant        %s", got, want)
	}
	prefix := []byte(`{"type":"events","events":[`)
	out := e.AppendWire(append([]byte(nil), prefix...))
	if !bytes.HasPrefix(out, prefix) || string(out[len(prefix):]) != want {
		t.Errorf("AppendWire did not append after the prefix: %s", out)
	}
}

func TestAppendWireIsJSON(t *testing.T) {
	tests := []struct {
		name string
		e    event.Event
		want map[string]any
	}{
		{
			"quote slash symbol",
			event.Event{Channel: event.Channel{Kind: event.KindQuote, Symbol: "EUR/USD"}, ID: event.ID{Ms: 7, Seq: 3}, TS: 0, Data: json.RawMessage(`{"bid":1.5,"bid_size":2,"ask":1.6,"ask_size":3}`)},
			map[string]any{"ch": "quote:EUR/USD", "id": "7-3", "ts": 0.0, "data": map[string]any{"bid": 1.5, "bid_size": 2.0, "ask": 1.6, "ask_size": 3.0}},
		},
		{
			"signal with whitespace in data",
			event.Event{Channel: event.Channel{Kind: event.KindSignal, Symbol: "BRK.B"}, ID: event.ID{Ms: 1, Seq: 0}, TS: 42, Data: json.RawMessage(" {\"signal\" : \"surge\", \"price\": 3}\n")},
			map[string]any{"ch": "signal:BRK.B", "id": "1-0", "ts": 42.0, "data": map[string]any{"signal": "surge", "price": 3.0}},
		},
		{
			"bar",
			event.Event{Channel: event.Channel{Kind: event.KindBar, Symbol: "BTC-USD"}, ID: event.ID{Ms: 1764288000123, Seq: 9}, TS: 1764288000000, Data: json.RawMessage(`{"open":1,"high":2,"low":0,"close":1,"volume":5,"start":1764287940000,"end":1764288000000}`)},
			map[string]any{"ch": "bar:BTC-USD", "id": "1764288000123-9", "ts": 1764288000000.0, "data": map[string]any{"open": 1.0, "high": 2.0, "low": 0.0, "close": 1.0, "volume": 5.0, "start": 1764287940000.0, "end": 1764288000000.0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := tt.e.AppendWire(nil)
			if !json.Valid(out) {
				t.Fatalf("AppendWire is not valid JSON: %s", out)
			}
			var got map[string]any
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("AppendWire = %v\nwant        %v", got, tt.want)
			}
		})
	}
}

// TestAppendWireAfterFromEntry: what the publisher does with every entry.
func TestAppendWireAfterFromEntry(t *testing.T) {
	e, err := event.FromEntry("1764288000123-1", map[string]any{"ch": "trade:aapl", "ts": "1764288000120", "data": `{"price":189.23,"size":100}`})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"ch":"trade:AAPL","id":"1764288000123-1","ts":1764288000120,"data":{"price":189.23,"size":100}}`
	if got := string(e.AppendWire(nil)); got != want {
		t.Errorf("AppendWire = %s, want %s", got, want)
	}
}

func TestDataTypesMarshalToProtocolFields(t *testing.T) {
	tests := []struct {
		v      any
		fields []string
	}{
		{event.Trade{}, []string{"price", "size"}},
		{event.Quote{}, []string{"bid", "bid_size", "ask", "ask_size"}},
		{event.Bar{}, []string{"open", "high", "low", "close", "volume", "start", "end"}},
	}
	for _, tt := range tests {
		t.Run(reflect.TypeOf(tt.v).Name(), func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if err := event.CheckData(b); err != nil {
				t.Errorf("CheckData(%s) = %v", b, err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			if len(m) != len(tt.fields) {
				t.Errorf("%s has %d fields, want %v", b, len(m), tt.fields)
			}
			for _, f := range tt.fields {
				if _, ok := m[f]; !ok {
					t.Errorf("%s lacks %q", b, f)
				}
			}
		})
	}
}
