package source

import (
	"encoding/json"
	"fmt"
	"testing"
)

// TestDecodeTrade: the fast path and encoding/json agree.
func TestDecodeTrade(t *testing.T) {
	tests := []struct {
		data string
		want string // "price size", or "" for refused
	}{
		{`{"price":189.23,"size":100}`, "189.23 100"},
		{`{"price":1e2,"size":0}`, "100 0"},
		{`{"price":189.23}`, "189.23 0"},
		{`{"size":5,"price":2}`, "2 5"},
		{` {"price":2,"size":5}`, "2 5"},
		{`{"price":2,"size":5,"x":1}`, "2 5"},
		{`{"price":0,"size":5}`, ""},
		{`{"price":-2,"size":5}`, ""},
		{`{"price":2,"size":-5}`, ""},
		{`{"price":"2","size":5}`, ""},
		{`{"price":2,"size":"5"}`, ""},
		{`{"price":1e999,"size":5}`, ""},
		{`{"price":2,"size":1e999}`, ""},
		{`{"price":null,"size":5}`, ""},
		{`{"price":2,"size":null}`, "2 0"},
		{`{"size":5}`, ""},
		{`{"price":2.,"size":5}`, ""},
		{`{"price":2,"size":5`, ""},
		{`[2,5]`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.data, func(t *testing.T) {
			tr, err := decodeTrade([]byte(tt.data))
			got := ""
			if err == nil {
				got = fmt.Sprint(tr.price, " ", tr.size)
			}
			if got != tt.want {
				t.Errorf("decodeTrade = %q (%v), want %q", got, err, tt.want)
			}
		})
	}
}

func FuzzDecodeTrade(f *testing.F) {
	f.Add(`{"price":189.23,"size":100}`)
	f.Add(`{"price":1e2,"size":0}`)
	f.Add(`{"price":2.,"size":5}`)
	f.Fuzz(func(t *testing.T, data string) {
		fast, ok := fastTrade([]byte(data))
		if !ok {
			return
		}
		var v struct{ Price, Size float64 }
		if err := json.Unmarshal([]byte(data), &v); err != nil || v.Price != fast.price || v.Size != fast.size {
			t.Fatalf("fast path read %+v from %q; encoding/json: %+v, %v", fast, data, v, err)
		}
	})
}

func TestJSONNumber(t *testing.T) {
	for _, s := range []string{"0", "-0", "1", "189.23", "1e2", "1E+2", "1.5e-3", "-12.0"} {
		if !jsonNumber([]byte(s)) {
			t.Errorf("%q refused", s)
		}
	}
	for _, s := range []string{"", "-", "01", "2.", ".5", "+1", "1e", "1e+", "Inf", "NaN", "0x10", "1_0", "1.2.3", " 1"} {
		if jsonNumber([]byte(s)) {
			t.Errorf("%q accepted", s)
		}
	}
}
