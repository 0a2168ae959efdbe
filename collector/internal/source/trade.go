package source

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
)

// trade is what derivation reads of a trade's data.
type trade struct{ price, size float64 }

// errNotTrade is why a trade event's data is of no use to derivation.
var errNotTrade = errors.New("trade data without a positive price and a size of 0 or more")

// decodeTrade reads price (required, > 0) and size (0 if absent, ≥ 0).
func decodeTrade(data []byte) (trade, error) {
	if t, ok := fastTrade(data); ok {
		return t, nil
	}
	var in struct {
		Price *float64 `json:"price"`
		Size  *float64 `json:"size"`
	}
	if err := json.Unmarshal(data, &in); err != nil {
		return trade{}, err
	}
	if in.Price == nil || !(*in.Price > 0) || math.IsInf(*in.Price, 0) {
		return trade{}, errNotTrade
	}
	t := trade{price: *in.Price}
	if in.Size != nil {
		if !(*in.Size >= 0) || math.IsInf(*in.Size, 0) {
			return trade{}, errNotTrade
		}
		t.size = *in.Size
	}
	return t, nil
}

// fastTrade reads data of the exact form {"price":P,"size":S}, as every
// source here writes trades, without the cost of encoding/json; ok is
// false for anything else, which decodeTrade then decodes in full.
func fastTrade(data []byte) (t trade, ok bool) {
	rest, ok := bytes.CutPrefix(data, []byte(`{"price":`))
	if !ok {
		return trade{}, false
	}
	price, rest, ok := bytes.Cut(rest, []byte(`,"size":`))
	if !ok {
		return trade{}, false
	}
	size, ok := bytes.CutSuffix(rest, []byte(`}`))
	if !ok || !jsonNumber(price) || !jsonNumber(size) {
		return trade{}, false
	}
	var err1, err2 error
	t.price, err1 = strconv.ParseFloat(string(price), 64)
	t.size, err2 = strconv.ParseFloat(string(size), 64)
	return t, err1 == nil && err2 == nil && t.price > 0 && !math.IsInf(t.price, 0) && t.size >= 0 && !math.IsInf(t.size, 0)
}

// jsonNumber reports whether b is a JSON number:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func jsonNumber(b []byte) bool {
	digits := func(i int) int { // the end of the digits from i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i
	}
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(i)
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		if j := digits(i + 1); j > i+1 {
			i = j
		} else {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if j := digits(i); j > i {
			i = j
		} else {
			return false
		}
	}
	return i == len(b)
}
