package event_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tickwire/tickwire/shared/event"
)

// Seeds beyond these live in testdata/fuzz/<FuzzName>/.

// inGrammar reports whether s is KIND:SYMBOL or KIND:* of docs/protocol.md, with
// ASCII case-insensitivity only.
func inGrammar(s string) bool {
	kind, sym, ok := strings.Cut(s, ":")
	if !ok {
		return false
	}
	known := false
	for _, k := range []string{"trade", "quote", "bar", "signal"} {
		if asciiLower(kind) == k {
			known = true
		}
	}
	if !known {
		return false
	}
	if sym == "*" {
		return true
	}
	if len(sym) < 1 || len(sym) > 16 {
		return false
	}
	for i := 0; i < len(sym); i++ {
		c := sym[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && strings.IndexByte("._/-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func FuzzParseChannel(f *testing.F) {
	for _, s := range []string{
		"trade:AAPL", "TRADE:aapl", "quote:*", "bar:BRK.B", "signal:BTC-USD", "quote:EUR/USD",
		"trade:ABCDEFGHIJKLMNOP", "trade:ABCDEFGHIJKLMNOPQ", "trade:", ":AAPL", "trade", "*",
		"trade:.A", "trade:A B", "trade:ÄAPL", "trade:**", "trade:A:B", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := event.ParseChannel(s)
		if err != nil {
			if !errors.Is(err, event.ErrInvalidChannel) {
				t.Fatalf("ParseChannel(%q) error %v does not wrap ErrInvalidChannel", s, err)
			}
			if c != (event.Channel{}) {
				t.Fatalf("ParseChannel(%q) returned %+v with its error", s, c)
			}
			return
		}
		if !inGrammar(s) {
			t.Fatalf("ParseChannel(%q) = %+v, but the input is not in the protocol's grammar", s, c)
		}
		norm := c.String()
		if !inGrammar(norm) {
			t.Fatalf("normal form %q of %q is not in the grammar", norm, s)
		}
		if norm != asciiLower(norm[:strings.IndexByte(norm, ':')])+":"+strings.ToUpper(norm[strings.IndexByte(norm, ':')+1:]) {
			t.Fatalf("normal form %q is not kind lower-case, symbol upper-case", norm)
		}
		again, err := event.ParseChannel(norm)
		if err != nil || again != c {
			t.Fatalf("ParseChannel(%q) = %+v, %v; want %+v", norm, again, err, c)
		}
		if again.String() != norm {
			t.Fatalf("String() not stable: %q then %q", norm, again.String())
		}
		p, err := event.ParsePattern(norm)
		if err != nil || !p.Covers(c) {
			t.Fatalf("pattern %q does not cover its own channel: %v", norm, err)
		}
	})
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"0-0", "1764288000123-0", "1764288000123-42", "5", "18446744073709551615-18446744073709551615", "18446744073709551616-0", "-", "1-", "-1", "1-2-3", "+1-2", "a-b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := event.ParseID(s)
		if err != nil {
			if !errors.Is(err, event.ErrInvalidID) {
				t.Fatalf("ParseID(%q) error %v does not wrap ErrInvalidID", s, err)
			}
			return
		}
		// Only digits and at most one dash get through.
		ms, seq, _ := strings.Cut(s, "-")
		for _, part := range []string{ms, seq} {
			if strings.Trim(part, "0123456789") != "" {
				t.Fatalf("ParseID(%q) accepted non-digits", s)
			}
		}
		again, err := event.ParseID(id.String())
		if err != nil || again != id {
			t.Fatalf("ParseID(%q) = %+v, %v; want %+v", id.String(), again, err, id)
		}
		if id.Less(id) {
			t.Fatalf("%v.Less(itself)", id)
		}
		if !id.IsZero() && !(event.ID{}).Less(id) {
			t.Fatalf("zero ID not less than %v", id)
		}
	})
}

// FuzzFromEntry feeds stream entries as go-redis returns them. present is a
// bit set of the fields that exist: 1 ch, 2 ts, 4 data.
func FuzzFromEntry(f *testing.F) {
	f.Add("1764288000123-0", "trade:AAPL", "1764288000120", `{"price":189.23,"size":100}`, uint8(7))
	f.Add("1-1", "quote:EUR/USD", "0", `{"bid":1,"bid_size":2,"ask":3,"ask_size":4}`, uint8(7))
	f.Add("1-1", "trade:*", "0", `{}`, uint8(7))
	f.Add("1-1", "trade:A", "-1", `{}`, uint8(7))
	f.Add("1-1", "trade:A", "1", `[1]`, uint8(7))
	f.Add("1-1", "trade:A", "1", `{"a":`, uint8(7))
	f.Add("x", "trade:A", "1", `{}`, uint8(7))
	f.Add("1-1", "trade:A", "1", `{}`, uint8(3))
	f.Add("1-1", "trade:A", "1", " {\"a\":\"\xff\"} ", uint8(7))
	f.Fuzz(func(t *testing.T, id, ch, ts, data string, present uint8) {
		values := map[string]any{}
		if present&1 != 0 {
			values[event.FieldChannel] = ch
		}
		if present&2 != 0 {
			values[event.FieldTS] = ts
		}
		if present&4 != 0 {
			values[event.FieldData] = data
		}
		e, err := event.FromEntry(id, values)
		if err != nil {
			for _, sentinel := range []error{event.ErrInvalidID, event.ErrMissingField, event.ErrInvalidChannel, event.ErrBadTimestamp, event.ErrBadData} {
				if errors.Is(err, sentinel) {
					return
				}
			}
			t.Fatalf("FromEntry error %v wraps no sentinel", err)
		}
		if e.Channel.IsWildcard() || e.TS < 0 || len(e.Data) > event.MaxDataSize {
			t.Fatalf("FromEntry accepted %+v", e)
		}
		wire := e.AppendWire(nil)
		if !json.Valid(wire) {
			t.Fatalf("AppendWire of an accepted entry is not valid JSON: %q", wire)
		}
		var obj struct {
			Ch   string          `json:"ch"`
			ID   string          `json:"id"`
			TS   int64           `json:"ts"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(wire, &obj); err != nil {
			t.Fatalf("unmarshal %q: %v", wire, err)
		}
		if obj.Ch != e.Channel.String() || obj.ID != e.ID.String() || obj.TS != e.TS {
			t.Fatalf("wire %q does not carry ch %s, id %s, ts %d", wire, e.Channel, e.ID, e.TS)
		}
		// What the collector writes, the publisher reads back unchanged.
		back, err := event.FromEntry(e.ID.String(), entryOf(t, &e))
		if err != nil {
			t.Fatalf("FromEntry of Fields() of %+v: %v", e, err)
		}
		if back.Channel != e.Channel || back.ID != e.ID || back.TS != e.TS || string(back.Data) != string(e.Data) {
			t.Fatalf("round trip %+v became %+v", e, back)
		}
	})
}
