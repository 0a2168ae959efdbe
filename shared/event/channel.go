// Package event holds what collector and publisher agree an event is: the
// channel grammar of the client protocol, stream entry ids, the event itself
// and its two encodings (the Redis stream entry and the wire JSON).
//
// Everything here is a value or a pure function; it is safe for concurrent
// use.
package event

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidChannel is returned (wrapped) for a channel or pattern that does
// not follow the grammar KIND:SYMBOL of the protocol.
var ErrInvalidChannel = errors.New("invalid channel")

// Kind is the kind of an event, the part of a channel before the colon.
type Kind uint8

// The kinds of docs/protocol.md, in a fixed order so a Kind can index an array.
const (
	KindTrade Kind = iota
	KindQuote
	KindBar
	KindSignal
	// NumKinds is the number of kinds; not a kind itself.
	NumKinds
)

var kindNames = [NumKinds]string{"trade", "quote", "bar", "signal"}

// String returns the kind's lower-case name.
func (k Kind) String() string {
	if k < NumKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind parses a kind name, case-insensitively.
func ParseKind(s string) (Kind, bool) {
	for k, name := range kindNames {
		// Same length first: EqualFold alone folds Unicode ("ſ" is "s").
		if len(s) == len(name) && strings.EqualFold(s, name) {
			return Kind(k), true
		}
	}
	return 0, false
}

// Wildcard is the symbol of a channel that stands for every symbol of its kind.
const Wildcard = "*"

// MaxSymbolLen is the longest symbol the grammar allows.
const MaxSymbolLen = 16

// Channel is a parsed, normalised channel: a kind and an upper-case symbol,
// or the Wildcard symbol for KIND:*.
type Channel struct {
	Kind   Kind
	Symbol string
}

// String returns the channel in its normal form, e.g. "trade:AAPL".
func (c Channel) String() string { return c.Kind.String() + ":" + c.Symbol }

// IsWildcard reports whether c is KIND:*.
func (c Channel) IsWildcard() bool { return c.Symbol == Wildcard }

// ParseChannel parses KIND:SYMBOL or KIND:*, case-insensitively, and
// normalises the symbol to upper case.
func ParseChannel(s string) (Channel, error) {
	kindStr, sym, ok := strings.Cut(s, ":")
	if !ok {
		return Channel{}, fmt.Errorf("%w %q: want KIND:SYMBOL", ErrInvalidChannel, clip(s))
	}
	kind, ok := ParseKind(kindStr)
	if !ok {
		return Channel{}, fmt.Errorf("%w %q: kind must be trade, quote, bar or signal", ErrInvalidChannel, clip(s))
	}
	if sym == Wildcard {
		return Channel{Kind: kind, Symbol: Wildcard}, nil
	}
	norm, err := NormalizeSymbol(sym)
	if err != nil {
		return Channel{}, fmt.Errorf("%w %q: %v", ErrInvalidChannel, clip(s), err)
	}
	return Channel{Kind: kind, Symbol: norm}, nil
}

// NormalizeSymbol checks a symbol against [A-Z0-9][A-Z0-9._/-]{0,15}
// (case-insensitively) and returns it in upper case.
func NormalizeSymbol(sym string) (string, error) {
	if sym == "" {
		return "", errors.New("empty symbol")
	}
	if len(sym) > MaxSymbolLen {
		return "", fmt.Errorf("symbol longer than %d characters", MaxSymbolLen)
	}
	upper := true
	for i := 0; i < len(sym); i++ {
		c := sym[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c >= 'a' && c <= 'z':
			upper = false
		case i > 0 && (c == '.' || c == '_' || c == '/' || c == '-'):
		default:
			return "", fmt.Errorf("symbol has %q at position %d", c, i+1)
		}
	}
	if upper {
		return sym, nil
	}
	return strings.ToUpper(sym), nil
}

// Pattern is an entry of a token's channels claim: "*" (everything),
// KIND:* or one concrete channel.
type Pattern struct {
	All     bool
	Channel Channel
}

// ParsePattern parses a claim pattern.
func ParsePattern(s string) (Pattern, error) {
	if s == "*" {
		return Pattern{All: true}, nil
	}
	c, err := ParseChannel(s)
	if err != nil {
		return Pattern{}, err
	}
	return Pattern{Channel: c}, nil
}

// String returns the pattern in normal form.
func (p Pattern) String() string {
	if p.All {
		return "*"
	}
	return p.Channel.String()
}

// Covers reports whether the pattern allows subscribing to all of c. A
// concrete pattern does not cover a wildcard channel of its kind.
func (p Pattern) Covers(c Channel) bool {
	switch {
	case p.All:
		return true
	case p.Channel.Kind != c.Kind:
		return false
	case p.Channel.IsWildcard():
		return true
	default:
		return p.Channel.Symbol == c.Symbol
	}
}

// clip keeps hostile input short inside error messages.
func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
