package event_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tickwire/tickwire/shared/event"
)

func TestParseChannelValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want event.Channel
		norm string
	}{
		{"trade", "trade:AAPL", event.Channel{Kind: event.KindTrade, Symbol: "AAPL"}, "trade:AAPL"},
		{"case-insensitive kind and symbol", "TRADE:aapl", event.Channel{Kind: event.KindTrade, Symbol: "AAPL"}, "trade:AAPL"},
		{"mixed case", "QuOtE:MsFt", event.Channel{Kind: event.KindQuote, Symbol: "MSFT"}, "quote:MSFT"},
		{"wildcard", "quote:*", event.Channel{Kind: event.KindQuote, Symbol: event.Wildcard}, "quote:*"},
		{"bar", "bar:SPY", event.Channel{Kind: event.KindBar, Symbol: "SPY"}, "bar:SPY"},
		{"signal", "signal:NVDA", event.Channel{Kind: event.KindSignal, Symbol: "NVDA"}, "signal:NVDA"},
		{"dot", "trade:BRK.B", event.Channel{Kind: event.KindTrade, Symbol: "BRK.B"}, "trade:BRK.B"},
		{"dash", "trade:btc-usd", event.Channel{Kind: event.KindTrade, Symbol: "BTC-USD"}, "trade:BTC-USD"},
		{"slash", "quote:EUR/USD", event.Channel{Kind: event.KindQuote, Symbol: "EUR/USD"}, "quote:EUR/USD"},
		{"underscore", "trade:A_B", event.Channel{Kind: event.KindTrade, Symbol: "A_B"}, "trade:A_B"},
		{"digit first", "trade:7203", event.Channel{Kind: event.KindTrade, Symbol: "7203"}, "trade:7203"},
		{"one char", "trade:X", event.Channel{Kind: event.KindTrade, Symbol: "X"}, "trade:X"},
		{"16 chars", "trade:ABCDEFGHIJKLMNOP", event.Channel{Kind: event.KindTrade, Symbol: "ABCDEFGHIJKLMNOP"}, "trade:ABCDEFGHIJKLMNOP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := event.ParseChannel(tt.in)
			if err != nil {
				t.Fatalf("ParseChannel(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseChannel(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if got.String() != tt.norm {
				t.Errorf("String() = %q, want %q", got.String(), tt.norm)
			}
			if got.IsWildcard() != (tt.want.Symbol == event.Wildcard) {
				t.Errorf("IsWildcard() = %v", got.IsWildcard())
			}
			again, err := event.ParseChannel(got.String())
			if err != nil || again != got {
				t.Errorf("re-parse of %q = %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestParseChannelInvalid(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"no colon", "tradeAAPL"},
		{"unknown kind", "trades:AAPL"},
		{"another unknown kind", "order:AAPL"},
		{"empty symbol", "trade:"},
		{"empty kind", ":AAPL"},
		{"17 chars", "trade:ABCDEFGHIJKLMNOPQ"},
		{"leading dot", "trade:.AAPL"},
		{"leading dash", "trade:-AAPL"},
		{"leading slash", "trade:/AAPL"},
		{"leading underscore", "trade:_AAPL"},
		{"space inside", "trade:AA PL"},
		{"leading space", " trade:AAPL"},
		{"trailing space", "trade:AAPL "},
		{"space after colon", "trade: AAPL"},
		{"unicode symbol", "trade:ÄAPL"},
		{"unicode later in symbol", "trade:AAPLé"},
		{"fullwidth letter", "trade:ＡAPL"},
		{"two colons", "trade:AAPL:X"},
		{"star inside symbol", "trade:AA*"},
		{"double star", "trade:**"},
		{"bare star", "*"},
		{"colon only", ":"},
		{"tab", "trade:\tAAPL"},
		{"NUL", "trade:AA\x00PL"},
		{"invalid utf8", "trade:\xff"},
		{"plus", "trade:A+B"},
		{"kind with space", "trade :AAPL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := event.ParseChannel(tt.in)
			if err == nil {
				t.Fatalf("ParseChannel(%q) = %+v, want an error", tt.in, got)
			}
			if !errors.Is(err, event.ErrInvalidChannel) {
				t.Errorf("error %v does not wrap ErrInvalidChannel", err)
			}
			if got != (event.Channel{}) {
				t.Errorf("ParseChannel(%q) returned %+v with its error, want zero", tt.in, got)
			}
		})
	}
}

// TestParseChannelNonASCIIKind: the grammar names four ASCII kinds and says
// input is case-insensitive; Unicode case folding must not let other strings in.
func TestParseChannelNonASCIIKind(t *testing.T) {
	for _, in := range []string{"ſignal:AAPL", "ſIGNAL:AAPL"} {
		if c, err := event.ParseChannel(in); err == nil {
			t.Errorf("ParseChannel(%q) = %v, want ErrInvalidChannel", in, c)
		}
	}
	if k, ok := event.ParseKind("ſignal"); ok {
		t.Errorf("ParseKind(ſignal) = %v, want not ok", k)
	}
}

func TestParseChannelErrorClipsInput(t *testing.T) {
	long := "trade:" + strings.Repeat("A", 10_000)
	_, err := event.ParseChannel(long)
	if err == nil {
		t.Fatal("no error for a 10006-byte channel")
	}
	if len(err.Error()) > 200 {
		t.Errorf("error message is %d bytes long; hostile input must be clipped", len(err.Error()))
	}
}

func TestKind(t *testing.T) {
	for k := event.Kind(0); k < event.NumKinds; k++ {
		name := k.String()
		got, ok := event.ParseKind(strings.ToUpper(name))
		if !ok || got != k {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", strings.ToUpper(name), got, ok, k)
		}
	}
	if s := event.NumKinds.String(); s != "kind(4)" {
		t.Errorf("NumKinds.String() = %q", s)
	}
	if _, ok := event.ParseKind(""); ok {
		t.Error(`ParseKind("") ok`)
	}
}

func TestNormalizeSymbol(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"aapl", "AAPL", true},
		{"AAPL", "AAPL", true},
		{"brk.b", "BRK.B", true},
		{"", "", false},
		{"*", "", false},
		{".A", "", false},
		{"A.", "A.", true},
		{strings.Repeat("z", 16), strings.Repeat("Z", 16), true},
		{strings.Repeat("z", 17), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := event.NormalizeSymbol(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("NormalizeSymbol(%q) error = %v, want ok %v", tt.in, err, tt.ok)
			}
			if got != tt.want {
				t.Errorf("NormalizeSymbol(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func mustChannel(t *testing.T, s string) event.Channel {
	t.Helper()
	c, err := event.ParseChannel(s)
	if err != nil {
		t.Fatalf("ParseChannel(%q): %v", s, err)
	}
	return c
}

func TestParsePattern(t *testing.T) {
	tests := []struct {
		in, norm string
		all      bool
	}{
		{"*", "*", true},
		{"trade:*", "trade:*", false},
		{"TRADE:*", "trade:*", false},
		{"quote:aapl", "quote:AAPL", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := event.ParsePattern(tt.in)
			if err != nil {
				t.Fatalf("ParsePattern(%q): %v", tt.in, err)
			}
			if p.All != tt.all || p.String() != tt.norm {
				t.Errorf("ParsePattern(%q) = %+v (%q), want all=%v %q", tt.in, p, p.String(), tt.all, tt.norm)
			}
		})
	}
	for _, bad := range []string{"", "**", "trade", "trade:", ":*", "x:*", "*:AAPL", " *"} {
		t.Run("invalid "+bad, func(t *testing.T) {
			if p, err := event.ParsePattern(bad); err == nil {
				t.Errorf("ParsePattern(%q) = %+v, want an error", bad, p)
			} else if !errors.Is(err, event.ErrInvalidChannel) {
				t.Errorf("error %v does not wrap ErrInvalidChannel", err)
			}
		})
	}
}

func TestPatternCovers(t *testing.T) {
	tests := []struct {
		pattern, channel string
		want             bool
	}{
		{"trade:AAPL", "trade:AAPL", true},
		{"trade:AAPL", "trade:aapl", true},
		{"trade:AAPL", "trade:*", false}, // a concrete claim never grants the wildcard
		{"trade:AAPL", "trade:MSFT", false},
		{"trade:AAPL", "quote:AAPL", false},
		{"trade:*", "trade:AAPL", true},
		{"trade:*", "trade:*", true},
		{"trade:*", "quote:AAPL", false},
		{"trade:*", "quote:*", false},
		{"*", "trade:AAPL", true},
		{"*", "quote:*", true},
		{"*", "bar:SPY", true},
		{"*", "signal:*", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" covers "+tt.channel, func(t *testing.T) {
			p, err := event.ParsePattern(tt.pattern)
			if err != nil {
				t.Fatalf("ParsePattern(%q): %v", tt.pattern, err)
			}
			if got := p.Covers(mustChannel(t, tt.channel)); got != tt.want {
				t.Errorf("%q.Covers(%q) = %v, want %v", tt.pattern, tt.channel, got, tt.want)
			}
		})
	}
}
