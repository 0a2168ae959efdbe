package source

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/tickwire/tickwire/shared/event"
)

// ErrNoUsableColumns is returned (wrapped) for a CSV header from which no
// event can be built.
var ErrNoUsableColumns = errors.New("no usable columns")

// role is what a CSV column holds.
type role int

const (
	roleSymbol    role = iota
	roleTimestamp      // a full time: timestamp, datetime, ts
	roleTime           // "time": a full time, or the time of day beside a date column
	roleDate
	rolePrice
	roleSize // size, qty, quantity: the size of a trade
	roleVolume
	roleOpen
	roleHigh
	roleLow
	roleClose
	roleBid
	roleAsk
	roleBidSize
	roleAskSize
	numRoles
)

// roleNames maps a header name, folded by foldName, to its role.
var roleNames = map[string]role{
	"symbol": roleSymbol, "ticker": roleSymbol, "sym": roleSymbol,
	"timestamp": roleTimestamp, "datetime": roleTimestamp, "ts": roleTimestamp,
	"time": roleTime, "date": roleDate,
	"price": rolePrice, "size": roleSize, "qty": roleSize, "quantity": roleSize, "volume": roleVolume,
	"open": roleOpen, "high": roleHigh, "low": roleLow, "close": roleClose,
	"bid": roleBid, "ask": roleAsk, "bidsize": roleBidSize, "asksize": roleAskSize,
}

// expectedColumns says, in errors, what a header needs.
const expectedColumns = "want a header row with a time column (time, timestamp, date, datetime or ts), " +
	"a symbol column (symbol, ticker or sym) unless a default symbol is set, and the columns of at least one kind: " +
	"price (size, qty or volume optional) for trades, bid and ask for quotes, open, high, low and close for bars"

// foldName folds a header name for matching: lower case, without spaces,
// underscores, hyphens and dots ("Bid Size" and "bid_size" are alike).
func foldName(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "\ufeff")
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch r {
		case ' ', '_', '-', '.':
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// csvColumns is a header's map from role to column index (-1: absent).
type csvColumns struct {
	n   int // fields in the header, and so in every row
	idx [numRoles]int
}

// parseHeader maps the columns of a header row; the first column of a role
// wins, and unknown columns are ignored. It refuses a header from which no
// event can be built.
func parseHeader(rec []string, haveSymbol bool) (csvColumns, error) {
	c := csvColumns{n: len(rec)}
	for i := range c.idx {
		c.idx[i] = -1
	}
	for i, name := range rec {
		if r, ok := roleNames[foldName(name)]; ok && c.idx[r] < 0 {
			c.idx[r] = i
		}
	}
	var missing []string
	if !c.has(roleTimestamp) && !c.has(roleTime) && !c.has(roleDate) {
		missing = append(missing, "no time column")
	}
	if !c.has(roleSymbol) && !haveSymbol {
		missing = append(missing, "no symbol column and no default symbol")
	}
	if !c.trades() && !c.quotes() && !c.bars() {
		missing = append(missing, "no price, bid and ask, or open, high, low and close")
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("%w in header %q (%s): %s", ErrNoUsableColumns,
			clipCell(strings.Join(rec, ",")), strings.Join(missing, "; "), expectedColumns)
	}
	return c, nil
}

func (c *csvColumns) has(r role) bool { return c.idx[r] >= 0 }

// trades: a price makes a trade; its size is optional (0 when absent), as
// a file of prices only (symbol,date,price) is the commonest kind.
func (c *csvColumns) trades() bool { return c.has(rolePrice) }
func (c *csvColumns) quotes() bool { return c.has(roleBid) && c.has(roleAsk) }
func (c *csvColumns) bars() bool {
	return c.has(roleOpen) && c.has(roleHigh) && c.has(roleLow) && c.has(roleClose)
}

// cell returns the trimmed cell of role r, or "" if the column is absent.
func (c *csvColumns) cell(rec []string, r role) string {
	if i := c.idx[r]; i >= 0 {
		return strings.TrimSpace(rec[i])
	}
	return ""
}

// parsedRow is a valid row before its data is encoded.
type parsedRow struct {
	ch       event.Channel
	ts       int64
	dateOnly bool
	trade    event.Trade
	quote    event.Quote
	bar      event.Bar
}

// parseRow reads one record (of the header's length). The first group of
// columns with a non-empty cell decides the kind: open/high/low/close make
// a bar, bid/ask a quote, price a trade; the group must then be complete.
func (c *csvColumns) parseRow(rec []string, defSymbol string, tp *timeParser) (parsedRow, error) {
	var p parsedRow
	if len(rec) != c.n {
		return p, fmt.Errorf("%d fields, the header has %d", len(rec), c.n)
	}
	sym := c.cell(rec, roleSymbol)
	if sym == "" {
		sym = defSymbol
	}
	if sym == "" {
		return p, errors.New("no symbol")
	}
	var err error
	if p.ch.Symbol, err = event.NormalizeSymbol(sym); err != nil {
		return p, fmt.Errorf("symbol %q: %v", clipCell(sym), err)
	}
	if p.ts, p.dateOnly, err = tp.parse(c.timeCell(rec)); err != nil {
		return p, err
	}
	switch {
	case c.any(rec, roleOpen, roleHigh, roleLow, roleClose):
		p.ch.Kind = event.KindBar
		err = c.parseBar(rec, &p)
	case c.any(rec, roleBid, roleAsk):
		p.ch.Kind = event.KindQuote
		err = c.parseQuote(rec, &p)
	case c.any(rec, rolePrice):
		p.ch.Kind = event.KindTrade
		err = c.parseTrade(rec, &p)
	default:
		err = errors.New("no price, bid/ask or open/high/low/close")
	}
	return p, err
}

// timeCell is the row's time: the timestamp column; else the date and time
// columns joined by a space ("2025-11-28" "14:30:00"); else either alone.
func (c *csvColumns) timeCell(rec []string) string {
	if c.has(roleTimestamp) {
		return c.cell(rec, roleTimestamp)
	}
	date, tod := c.cell(rec, roleDate), c.cell(rec, roleTime)
	switch {
	case date != "" && tod != "":
		return date + " " + tod
	case date != "":
		return date
	default:
		return tod
	}
}

// any reports whether one of the roles has a non-empty cell.
func (c *csvColumns) any(rec []string, roles ...role) bool {
	for _, r := range roles {
		if c.cell(rec, r) != "" {
			return true
		}
	}
	return false
}

func (c *csvColumns) parseTrade(rec []string, p *parsedRow) error {
	var err error
	if p.trade.Price, err = c.number(rec, rolePrice, "price", true, true); err != nil {
		return err
	}
	sizeRole, name := roleSize, "size"
	if !c.has(roleSize) {
		sizeRole, name = roleVolume, "volume"
	}
	p.trade.Size, err = c.number(rec, sizeRole, name, false, false)
	return err
}

func (c *csvColumns) parseQuote(rec []string, p *parsedRow) error {
	q := &p.quote
	var err error
	if q.Bid, err = c.number(rec, roleBid, "bid", true, true); err != nil {
		return err
	}
	if q.Ask, err = c.number(rec, roleAsk, "ask", true, true); err != nil {
		return err
	}
	if q.BidSize, err = c.number(rec, roleBidSize, "bid_size", false, false); err != nil {
		return err
	}
	q.AskSize, err = c.number(rec, roleAskSize, "ask_size", false, false)
	return err
}

func (c *csvColumns) parseBar(rec []string, p *parsedRow) error {
	b := &p.bar
	for _, f := range []struct {
		r    role
		name string
		v    *float64
	}{{roleOpen, "open", &b.Open}, {roleHigh, "high", &b.High}, {roleLow, "low", &b.Low}, {roleClose, "close", &b.Close}} {
		var err error
		if *f.v, err = c.number(rec, f.r, f.name, true, true); err != nil {
			return err
		}
	}
	var err error
	if b.Volume, err = c.number(rec, roleVolume, "volume", false, false); err != nil {
		return err
	}
	if b.High < b.Low || b.High < max(b.Open, b.Close) || b.Low > min(b.Open, b.Close) {
		return fmt.Errorf("inconsistent bar: open %v high %v low %v close %v", b.Open, b.High, b.Low, b.Close)
	}
	return nil
}

// number parses the cell of role r: a finite number, positive if positive
// is set, else zero or more. An empty cell (or absent column) is an error
// if required, and 0 if not.
func (c *csvColumns) number(rec []string, r role, name string, required, positive bool) (float64, error) {
	s := c.cell(rec, r)
	if s == "" {
		if required {
			return 0, fmt.Errorf("no %s", name)
		}
		return 0, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil || math.IsInf(v, 0) || math.IsNaN(v):
		return 0, fmt.Errorf("%s %q: not a number", name, clipCell(s))
	case positive && v <= 0:
		return 0, fmt.Errorf("%s %v: want more than 0", name, v)
	case v < 0:
		return 0, fmt.Errorf("%s %v: want 0 or more", name, v)
	}
	return v + 0, nil // no -0 in the output
}

// Bar periods when a file does not show them (see barPeriods).
const (
	defaultDayBar = 24 * 60 * 60 * 1000 // ms, for rows with a date only
	defaultBar    = 60 * 1000           // ms, for rows with a time of day
)

// toEvent returns the row's event, its time moved by shift (a loop's later
// passes); periods gives the bar period of each symbol (see barPeriods).
func (p *parsedRow) toEvent(periods map[string]int64, shift int64) Event {
	e := Event{Channel: p.ch, TS: p.ts + shift}
	switch p.ch.Kind {
	case event.KindTrade:
		e.Data = p.trade
	case event.KindQuote:
		e.Data = p.quote
	default:
		period, ok := periods[p.ch.Symbol]
		switch {
		case ok:
		case p.dateOnly:
			period = defaultDayBar
		default:
			period = defaultBar
		}
		p.bar.Start, p.bar.End = e.TS, e.TS+period
		e.Data = p.bar
	}
	return e
}

// rowError is a bad row: it is skipped (or ends a strict replay).
type rowError struct {
	line int
	err  error
}

func (e *rowError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *rowError) Unwrap() error { return e.err }

// row is one valid row of a replay file. noTS marks a JSONL line without
// ts, which takes the time of the row before it.
type row struct {
	e    Event
	line int
	noTS bool
}

// csvRows reads the rows of a CSV file after its header. It is not safe
// for concurrent use.
type csvRows struct {
	r         *csv.Reader
	cols      csvColumns
	defSymbol string
	periods   map[string]int64
	times     timeParser
}

// newCSVRows reads the header of r. defSymbol (normalised, or "") names
// the symbol of rows without one.
func newCSVRows(r io.Reader, defSymbol string) (*csvRows, error) {
	br := bufio.NewReader(r)
	cr := csv.NewReader(br)
	cr.Comma = sniffDelimiter(br)
	cr.FieldsPerRecord = -1 // checked per row, to report the line
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: the file is empty: %s", ErrNoUsableColumns, expectedColumns)
	}
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	cols, err := parseHeader(header, defSymbol != "")
	if err != nil {
		return nil, err
	}
	return &csvRows{r: cr, cols: cols, defSymbol: defSymbol}, nil
}

// sniffDelimiter picks the most frequent of comma, semicolon and tab in the
// first line (comma when none appears).
func sniffDelimiter(br *bufio.Reader) rune {
	head, _ := br.Peek(4096) // a short file gives less, with an error
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	best, bestN := ',', bytes.Count(head, []byte{','})
	for _, d := range []rune{';', '\t'} {
		if n := bytes.Count(head, []byte(string(d))); n > bestN {
			best, bestN = d, n
		}
	}
	return best
}

// nextParsed returns the next row: io.EOF at the end, a *rowError for a bad
// row (the next call goes on after it), any other error if reading failed.
func (c *csvRows) nextParsed() (parsedRow, int, error) {
	rec, err := c.r.Read()
	if err != nil {
		var perr *csv.ParseError
		if errors.As(err, &perr) {
			return parsedRow{}, perr.StartLine, &rowError{line: perr.StartLine, err: perr.Err}
		}
		return parsedRow{}, 0, err
	}
	line, _ := c.r.FieldPos(0)
	p, err := c.cols.parseRow(rec, c.defSymbol, &c.times)
	if err != nil {
		return p, line, &rowError{line: line, err: err}
	}
	return p, line, nil
}

// next returns the next row as an event, its time moved by shift; errors
// as nextParsed.
func (c *csvRows) next(shift int64) (row, error) {
	p, line, err := c.nextParsed()
	if err != nil {
		return row{}, err
	}
	return row{e: p.toEvent(c.periods, shift), line: line}, nil
}

// barPeriods reads the rows of a CSV file and returns each symbol's bar
// period in ms: the smallest positive difference between the times of
// consecutive bar rows of that symbol. The smallest, not the next, so that
// a weekend, a holiday or a halt does not stretch the bar before it, and
// the last bar gets the same period as the others. Symbols with a single
// bar row are absent (encode then uses a day for date-only times, a minute
// otherwise). Bad rows are skipped here; the replay reports them.
func (c *csvRows) barPeriods() (map[string]int64, error) {
	last := map[string]int64{}
	periods := map[string]int64{}
	for {
		p, _, err := c.nextParsed()
		var bad *rowError
		switch {
		case errors.Is(err, io.EOF):
			return periods, nil
		case errors.As(err, &bad):
			continue
		case err != nil:
			return nil, err
		}
		if p.ch.Kind != event.KindBar {
			continue
		}
		if prev, ok := last[p.ch.Symbol]; ok {
			gap := p.ts - prev
			if gap < 0 {
				gap = -gap // files listed newest first
			}
			if old, ok := periods[p.ch.Symbol]; gap > 0 && (!ok || gap < old) {
				periods[p.ch.Symbol] = gap
			}
		}
		last[p.ch.Symbol] = p.ts
	}
}
