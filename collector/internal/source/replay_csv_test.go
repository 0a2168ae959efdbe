package source

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/event"
)

func TestParseHeader(t *testing.T) {
	tests := []struct {
		name       string
		header     string
		haveSymbol bool
		want       map[role]int // roles expected, by column; others absent
		wantErr    string       // in the error; "" means usable
	}{
		{"trades", "time,symbol,price,size", false,
			map[role]int{roleTime: 0, roleSymbol: 1, rolePrice: 2, roleSize: 3}, ""},
		{"case and separators", "TimeStamp,Ticker,PRICE,Qty, Bid Size ,ask-size,BID,Ask", false,
			map[role]int{roleTimestamp: 0, roleSymbol: 1, rolePrice: 2, roleSize: 3, roleBidSize: 4, roleAskSize: 5, roleBid: 6, roleAsk: 7}, ""},
		{"bars with date", "Date,Open,High,Low,Close,Adj Close,Volume", true,
			map[role]int{roleDate: 0, roleOpen: 1, roleHigh: 2, roleLow: 3, roleClose: 4, roleVolume: 6}, ""},
		{"date and time", "date,time,sym,bid,ask", false,
			map[role]int{roleDate: 0, roleTime: 1, roleSymbol: 2, roleBid: 3, roleAsk: 4}, ""},
		{"ts and datetime aliases", "ts,sym,price,volume", false,
			map[role]int{roleTimestamp: 0, roleSymbol: 1, rolePrice: 2, roleVolume: 3}, ""},
		{"datetime", "datetime,symbol,price,quantity", false,
			map[role]int{roleTimestamp: 0, roleSymbol: 1, rolePrice: 2, roleSize: 3}, ""},
		{"first of a role wins", "time,symbol,price,price,size", false,
			map[role]int{roleTime: 0, roleSymbol: 1, rolePrice: 2, roleSize: 4}, ""},
		{"byte order mark", "\ufefftime,symbol,price,size", false,
			map[role]int{roleTime: 0, roleSymbol: 1, rolePrice: 2, roleSize: 3}, ""},
		{"no time", "symbol,price,size", false, nil, "no time column"},
		{"no symbol", "time,price,size", false, nil, "no symbol column and no default symbol"},
		{"no symbol but default", "time,price,size", true, map[role]int{roleTime: 0, rolePrice: 1, roleSize: 2}, ""},
		{"price without size", "time,symbol,price", false, map[role]int{roleTime: 0, roleSymbol: 1, rolePrice: 2}, ""},
		{"prices only, by date", "symbol,date,price", false, map[role]int{roleSymbol: 0, roleDate: 1, rolePrice: 2}, ""},
		{"bid without ask", "time,symbol,bid,bid_size", false, nil, "no price, bid and ask"},
		{"incomplete bar", "time,symbol,open,high,low", false, nil, "open, high, low and close"},
		{"nothing known", "a,b,c", false, nil, "no time column"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cols, err := parseHeader(strings.Split(tt.header, ","), tt.haveSymbol)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrNoUsableColumns) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseHeader error %v, want ErrNoUsableColumns with %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), expectedColumns) {
					t.Errorf("error does not say what was expected: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseHeader: %v", err)
			}
			for r := range numRoles {
				want, ok := tt.want[r]
				if !ok {
					want = -1
				}
				if cols.idx[r] != want {
					t.Errorf("role %d at column %d, want %d", r, cols.idx[r], want)
				}
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	const base = 1764340200000 // 2025-11-28T14:30:00Z
	tests := []struct {
		in       string
		want     int64
		dateOnly bool
	}{
		{"2025-11-28T14:30:00Z", base, false},
		{"2025-11-28T14:30:00.123Z", base + 123, false},
		{"2025-11-28T14:30:00.123456789Z", base + 123, false},
		{"2025-11-28T09:30:00-05:00", base, false},
		{"2025-11-28T15:30:00+01:00", base, false},
		{"2025-11-28T14:30:00", base, false},
		{"2025-11-28T14:30:00.5", base + 500, false},
		{"2025-11-28 14:30:00+00:00", base, false},
		{"2025-11-28 14:30:00", base, false},
		{"2025-11-28 14:30:00.250", base + 250, false},
		{"2025-11-28T14:30", base, false},
		{"2025-11-28 14:30", base, false},
		{"2025-11-28", base - 14*3600_000 - 30*60_000, true},
		{"Nov 28 2025", base - 14*3600_000 - 30*60_000, true},
		{"nov 28 2025", base - 14*3600_000 - 30*60_000, true},
		{"Nov 28, 2025", base - 14*3600_000 - 30*60_000, true},
		{"Mar 2 2025", 1740873600000, true},
		{"Nov 28 2025 14:30:00", base, false},
		{"Nov 28 2025 14:30", base, false},
		{"1764340200", base, false},              // seconds
		{"1764340200.5", base + 500, false},      // seconds with a fraction
		{"1764340200.123456", base + 123, false}, // finer than ms is dropped
		{"1764340200000", base, false},           // milliseconds
		{"1764340200000123", base, false},        // microseconds
		{"1764340200000123456", base, false},     // nanoseconds
		{"99999999999", 99999999999000, false},   // the largest seconds (year 5138)
		{"100000000000", 100000000000, false},    // the smallest ms (1973)
		{"0", 0, false},                          // the epoch
		{"  2025-11-28T14:30:00Z ", base, false}, // spaces around
		{"1970-01-01T00:00:00Z", 0, false},       // the epoch as text
		{"2025-11-28T14:30:00.999Z", base + 999, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var p timeParser
			got, dateOnly, err := p.parse(tt.in)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got != tt.want || dateOnly != tt.dateOnly {
				t.Errorf("parse = %d (%v), want %d (%v)", got, dateOnly, tt.want, tt.dateOnly)
			}
		})
	}
}

func TestParseTimeRefuses(t *testing.T) {
	for _, in := range []string{
		"", " ", "yesterday", "2025-13-01", "2025-11-31", "2025-11-28T25:00:00Z", "28/11/2025",
		"-1764340200", "1764340200.", ".5", "1e9", "0x10", "1969-12-31T23:59:59Z", "Dec 31 1969",
		"99999999999999999999", "2025-11-28T14:30:00 EST", "1,764,340,200",
	} {
		t.Run(in, func(t *testing.T) {
			var p timeParser
			if got, _, err := p.parse(in); !errors.Is(err, errBadTime) {
				t.Errorf("parse = %d, %v; want errBadTime", got, err)
			}
		})
	}
}

// TestTimeParserRemembersLayout: a file in one format is parsed with that
// format first, and a row in another format is still understood.
func TestTimeParserRemembersLayout(t *testing.T) {
	var p timeParser
	for _, in := range []string{"Nov 28 2025", "Nov 29 2025", "2025-11-30", "Dec 1 2025"} {
		if _, _, err := p.parse(in); err != nil {
			t.Fatalf("parse %q: %v", in, err)
		}
	}
	if l := timeLayouts[p.last].layout; l != "Jan 2 2006" {
		t.Errorf("last layout %q", l)
	}
}

const rowHeader = "time,symbol,price,size,bid,ask,bid_size,ask_size,open,high,low,close,volume,note"

// parseOne parses one row under rowHeader.
func parseOne(t *testing.T, header, rec string, defSymbol string) (Event, error) {
	t.Helper()
	rows, err := newCSVRows(strings.NewReader(header+"\n"+rec+"\n"), defSymbol)
	if err != nil {
		t.Fatalf("header: %v", err)
	}
	r, err := rows.next(0)
	if errors.Is(err, io.EOF) {
		t.Fatalf("no row read from %q", rec)
	}
	return r.e, err
}

func TestParseRow(t *testing.T) {
	const ts = "2025-11-28T14:30:00Z"
	const ms = 1764340200000
	tests := []struct {
		name, header, row, defSymbol string
		wantCh, wantData             string
	}{
		{"trade", rowHeader, ts + ",AAPL,189.23,100,,,,,,,,,,x", "",
			"trade:AAPL", `{"price":189.23,"size":100}`},
		{"trade size from volume", "time,symbol,price,volume", ts + ",AAPL,189.23,100", "",
			"trade:AAPL", `{"price":189.23,"size":100}`},
		{"trade without size", rowHeader, ts + ",AAPL,189.23,,,,,,,,,,,", "",
			"trade:AAPL", `{"price":189.23,"size":0}`},
		{"prices only", "symbol,date,price", "SPY,2025-11-28,602.5", "",
			"trade:SPY", `{"price":602.5,"size":0}`},
		{"trade of size 0", rowHeader, ts + ",AAPL,189.23,0,,,,,,,,,,", "",
			"trade:AAPL", `{"price":189.23,"size":0}`},
		{"quote", rowHeader, ts + ",AAPL,,,189.22,189.24,300,500,,,,,,", "",
			"quote:AAPL", `{"bid":189.22,"bid_size":300,"ask":189.24,"ask_size":500}`},
		{"quote without sizes", "time,symbol,bid,ask", ts + ",EUR/USD,1.0561,1.0562", "",
			"quote:EUR/USD", `{"bid":1.0561,"bid_size":0,"ask":1.0562,"ask_size":0}`},
		{"quote wins over price", rowHeader, ts + ",AAPL,189.23,100,189.22,189.24,,,,,,,,", "",
			"quote:AAPL", `{"bid":189.22,"bid_size":0,"ask":189.24,"ask_size":0}`},
		{"bar", rowHeader, ts + ",AAPL,,,,,,,189,190,188.5,189.5,12000,", "",
			"bar:AAPL", `{"open":189,"high":190,"low":188.5,"close":189.5,"volume":12000,"start":1764340200000,"end":1764340260000}`},
		{"bar wins over everything", rowHeader, ts + ",AAPL,189,1,1,2,,,189,190,188.5,189.5,,", "",
			"bar:AAPL", `{"open":189,"high":190,"low":188.5,"close":189.5,"volume":0,"start":1764340200000,"end":1764340260000}`},
		{"daily bar", "date,open,high,low,close", "2025-11-28,1,2,0.5,1.5", "SPY",
			"bar:SPY", `{"open":1,"high":2,"low":0.5,"close":1.5,"volume":0,"start":1764288000000,"end":1764374400000}`},
		{"default symbol fills an empty cell", rowHeader, ts + ",,189.23,100,,,,,,,,,,", "AAPL",
			"trade:AAPL", `{"price":189.23,"size":100}`},
		{"symbol normalised", rowHeader, ts + ", brk.b ,480.1,5,,,,,,,,,,", "",
			"trade:BRK.B", `{"price":480.1,"size":5}`},
		{"spaces and quotes", rowHeader, `"` + ts + `", AAPL , 189.23 ,"100",,,,,,,,,,"a, b"`, "",
			"trade:AAPL", `{"price":189.23,"size":100}`},
		{"date and time columns", "date,time,symbol,price,size", "2025-11-28,14:30:00,AAPL,1,1", "",
			"trade:AAPL", `{"price":1,"size":1}`},
		{"date column alone", "date,time,symbol,price,size", "2025-11-28,,AAPL,1,1", "",
			"trade:AAPL", `{"price":1,"size":1}`},
		{"semicolons", "time;symbol;price;size", ts + ";AAPL;189.23;100", "",
			"trade:AAPL", `{"price":189.23,"size":100}`},
		{"tabs", "time\tsymbol\tprice\tsize", ts + "\tAAPL\t189.23\t100", "",
			"trade:AAPL", `{"price":189.23,"size":100}`},
		{"exponent", rowHeader, ts + ",AAPL,1.8923e2,1e2,,,,,,,,,,", "",
			"trade:AAPL", `{"price":189.23,"size":100}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := parseOne(t, tt.header, tt.row, tt.defSymbol)
			if err != nil {
				t.Fatalf("row refused: %v", err)
			}
			if e.Channel.String() != tt.wantCh || string(data(e)) != tt.wantData {
				t.Errorf("got %s %s, want %s %s", e.Channel, data(e), tt.wantCh, tt.wantData)
			}
			wantTS := int64(ms)
			if tt.name == "daily bar" || tt.name == "date column alone" || tt.name == "prices only" {
				wantTS = 1764288000000
			}
			if e.TS != wantTS {
				t.Errorf("ts %d, want %d", e.TS, wantTS)
			}
		})
	}
}

func TestParseRowRefuses(t *testing.T) {
	const ts = "2025-11-28T14:30:00Z"
	tests := []struct {
		name, row, want string
	}{
		{"too few fields", ts + ",AAPL,189.23,100", "4 fields, the header has 14"},
		{"too many fields", ts + ",AAPL,189.23,100,,,,,,,,,,,", "15 fields"},
		{"bare quote", ts + `,AAPL,189"23,100,,,,,,,,,,`, `bare "`},
		{"bad time", "yesterday,AAPL,189.23,100,,,,,,,,,,", "bad time"},
		{"empty time", ",AAPL,189.23,100,,,,,,,,,,", "bad time"},
		{"no symbol", ts + ",,189.23,100,,,,,,,,,,", "no symbol"},
		{"bad symbol", ts + ",$AAPL,189.23,100,,,,,,,,,,", "symbol"},
		{"long symbol", ts + ",ABCDEFGHIJKLMNOPQ,1,1,,,,,,,,,,", "symbol"},
		{"no data", ts + ",AAPL,,,,,,,,,,,,x", "no price, bid/ask or open/high/low/close"},
		{"price not a number", ts + ",AAPL,abc,100,,,,,,,,,,", `price "abc": not a number`},
		{"price NaN", ts + ",AAPL,NaN,100,,,,,,,,,,", "not a number"},
		{"price infinite", ts + ",AAPL,+Inf,100,,,,,,,,,,", "not a number"},
		{"price overflows", ts + ",AAPL,1e999,100,,,,,,,,,,", "not a number"},
		{"price zero", ts + ",AAPL,0,100,,,,,,,,,,", "price 0: want more than 0"},
		{"price negative", ts + ",AAPL,-1,100,,,,,,,,,,", "want more than 0"},
		{"size negative", ts + ",AAPL,189.23,-5,,,,,,,,,,", "size -5: want 0 or more"},
		{"size with unit", ts + ",AAPL,189.23,100sh,,,,,,,,,,", "not a number"},
		{"bid without ask", ts + ",AAPL,,,189.22,,,,,,,,,", "no ask"},
		{"ask without bid", ts + ",AAPL,,,,189.24,,,,,,,,", "no bid"},
		{"bid zero", ts + ",AAPL,,,0,189.24,,,,,,,,", "bid 0"},
		{"bid size negative", ts + ",AAPL,,,189.22,189.24,-1,,,,,,,", "bid_size -1"},
		{"bar without close", ts + ",AAPL,,,,,,,1,2,0.5,,,", "no close"},
		{"bar only open", ts + ",AAPL,,,,,,,1,,,,,", "no high"},
		{"bar high below low", ts + ",AAPL,,,,,,,1,0.5,2,1,,", "inconsistent bar"},
		{"bar close above high", ts + ",AAPL,,,,,,,1,2,0.5,3,,", "inconsistent bar"},
		{"bar open below low", ts + ",AAPL,,,,,,,0.4,2,0.5,1,,", "inconsistent bar"},
		{"bar volume negative", ts + ",AAPL,,,,,,,1,2,0.5,1,-1,", "volume -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseOne(t, rowHeader, tt.row, "")
			var bad *rowError
			if !errors.As(err, &bad) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want a row error with %q", err, tt.want)
			}
			if bad.line != 2 {
				t.Errorf("line %d, want 2", bad.line)
			}
		})
	}
}

func TestBarPeriods(t *testing.T) {
	const csv = `date,symbol,open,high,low,close,price,size
2025-11-21,SPY,1,1,1,1,,
2025-11-24,SPY,1,1,1,1,,
2025-11-24,QQQ,1,1,1,1,,
2025-11-25,SPY,1,1,1,1,,
2025-11-24 10:00,SPY,,,,,1,1
2025-11-26,SPY,1,1,1,1,,
2025-11-26,SPY,bad,1,1,1,,
2025-12-01,QQQ,1,1,1,1,,
2025-11-24,IWM,1,1,1,1,,
2025-11-17,IWM,1,1,1,1,,
`
	rows, err := newCSVRows(strings.NewReader(csv), "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := rows.barPeriods()
	if err != nil {
		t.Fatal(err)
	}
	const day = 24 * 3600 * 1000
	// SPY: Friday to Monday is 3 days, the smallest gap 1 day; trades do not
	// count. QQQ: a week. IWM: newest first. A lone bar has no period.
	want := map[string]int64{"SPY": day, "QQQ": 7 * day, "IWM": 7 * day}
	if len(got) != len(want) {
		t.Errorf("periods %v, want %v", got, want)
	}
	for sym, p := range want {
		if got[sym] != p {
			t.Errorf("%s: period %d, want %d", sym, got[sym], p)
		}
	}
}

// FuzzParseCSVRow feeds a header and rows through the CSV reader: it must
// never panic, and every event it accepts must be valid.
func FuzzParseCSVRow(f *testing.F) {
	f.Add(rowHeader, "2025-11-28T14:30:00Z,AAPL,189.23,100,,,,,,,,,,x", "")
	f.Add("date,open,high,low,close,volume", "Nov 28 2025,1,2,0.5,1.5,100", "SPY")
	f.Add("ts;sym;bid;ask", "1764340200000;eur/usd;1.05;1.06", "")
	f.Add("time,symbol,price,qty", "1764340200.5,\"BRK.B\",1e2,0", "")
	f.Fuzz(func(t *testing.T, header, rows, defSymbol string) {
		if defSymbol != "" {
			var err error
			if defSymbol, err = event.NormalizeSymbol(defSymbol); err != nil {
				return
			}
		}
		r, err := newCSVRows(strings.NewReader(header+"\n"+rows), defSymbol)
		if err != nil {
			return
		}
		for range 100 {
			row, err := r.next(0)
			var bad *rowError
			switch {
			case errors.Is(err, io.EOF):
				return
			case errors.As(err, &bad):
				continue
			case err != nil:
				t.Fatalf("read error from a string: %v", err)
			}
			checkReplayed(t, row.e)
		}
	})
}

// checkReplayed fails t unless e is an event a replay may emit.
func checkReplayed(t *testing.T, e Event) {
	t.Helper()
	if e.Channel.IsWildcard() || e.TS < 0 {
		t.Fatalf("accepted %s ts %d", e.Channel, e.TS)
	}
	if _, err := event.ParseChannel(e.Channel.String()); err != nil {
		t.Fatalf("accepted channel %s: %v", e.Channel, err)
	}
	if err := event.CheckData(data(e)); err != nil {
		t.Fatalf("accepted data %s: %v", data(e), err)
	}
	positive := func(vs ...float64) bool {
		for _, v := range vs {
			if !(v > 0) || math.IsInf(v, 0) {
				return false
			}
		}
		return true
	}
	ok := true
	switch e.Channel.Kind {
	case event.KindTrade:
		var v event.Trade
		ok = json.Unmarshal(data(e), &v) == nil && positive(v.Price) && v.Size >= 0
	case event.KindQuote:
		var v event.Quote
		ok = json.Unmarshal(data(e), &v) == nil && positive(v.Bid, v.Ask) && v.BidSize >= 0 && v.AskSize >= 0
	case event.KindBar:
		var v event.Bar
		ok = json.Unmarshal(data(e), &v) == nil && positive(v.Open, v.High, v.Low, v.Close) &&
			v.Low <= min(v.Open, v.Close) && v.High >= max(v.Open, v.Close) && v.Volume >= 0 &&
			v.Start == e.TS && v.End > v.Start
	default:
		ok = false
	}
	if !ok {
		t.Fatalf("accepted %s %s", e.Channel, data(e))
	}
}

// ms parses an RFC 3339 time to Unix ms, for expectations written as text.
func ms(t *testing.T, s string) int64 {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm.UnixMilli()
}
