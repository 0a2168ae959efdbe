package source

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/shared/event"
)

// Pacing of a replay.
const (
	maxLag   = time.Second      // further behind its schedule, a replay restarts the schedule rather than burst
	longWait = 10 * time.Second // waits at least this long are logged, so that a quiet replay is explained
	// loopStep separates two passes of a file whose rows all have one time.
	loopStep = 1000 // ms
)

// ReplayConfig configures a Replay.
type ReplayConfig struct {
	// File is the path of a CSV or JSONL file.
	File string
	// Speed paces the replay by the file's times: 1 is real time, N is N
	// times faster, 0 emits as fast as the consumer takes events.
	Speed float64
	// Loop starts the file again at its end, shifting the times of each
	// pass by the span of the file so that time keeps moving forward (ts,
	// and start and end of CSV bars; JSONL data is passed on as it is).
	Loop bool
	// Symbol names the symbol of CSV rows without one.
	Symbol string
	// Strict ends the replay with an error at the first bad row, instead of
	// reporting and skipping it.
	Strict bool
	// Busy, if set, reports whether the consumer holds too many events; the
	// replay then waits, so that it never outruns Redis and loses events.
	Busy func() bool
}

// Replay emits the events of a file, one per valid row, in file order.
// A CSV file has a header row naming its columns; a JSONL file (by its
// extension .jsonl or .ndjson, or by content: its first character is "{")
// has one event a line, as the stdin source reads them, and a line without
// ts takes the time of the line before it.
//
// CSV rows: the header's columns are recognised by name, ignoring case,
// spaces, underscores and hyphens: symbol (symbol, ticker, sym); time
// (timestamp, datetime, ts, time or date; a date column and a time column
// are joined); trades (price, and size, qty, quantity or volume); quotes
// (bid, ask, bid_size, ask_size; sizes optional); bars (open, high, low,
// close, volume optional). Other columns are ignored. The first group with
// a non-empty cell decides a row's kind (bar, then quote, then trade), and
// must then be complete. An event's ts is the row's time in Unix ms: RFC
// 3339, 2006-01-02, 2006-01-02 15:04:05, Jan 2 2006 and a few alike, read
// as UTC without a zone; or a Unix number, seconds below 1e11, milliseconds
// below 1e14 (then microseconds, nanoseconds). A bar starts at its row's
// time and lasts its symbol's period: the smallest gap between consecutive
// bar rows of the symbol in the file, else a day for date-only times and a
// minute otherwise.
//
// Bad rows are logged with file and line, counted in
// tickwire_collector_input_bad_lines_total, and skipped.
//
// Run must not be called by more than one goroutine at a time.
type Replay struct {
	cfg     ReplayConfig
	jsonl   bool
	periods map[string]int64 // CSV bar periods, from a first reading
	log     *slog.Logger
	bad     prometheus.Counter
	clock   clock
	seenBad int
}

// NewReplay checks the file (that it is readable, and for a CSV file its
// header) and returns a Replay of it, registering its metric on reg.
func NewReplay(cfg ReplayConfig, log *slog.Logger, reg prometheus.Registerer) (*Replay, error) {
	if !(cfg.Speed >= 0) || math.IsInf(cfg.Speed, 0) {
		return nil, fmt.Errorf("speed %v: want 0 (as fast as possible) or more", cfg.Speed)
	}
	if cfg.Symbol != "" {
		sym, err := event.NormalizeSymbol(strings.TrimSpace(cfg.Symbol))
		if err != nil {
			return nil, fmt.Errorf("symbol %q: %w", cfg.Symbol, err)
		}
		cfg.Symbol = sym
	}
	r := &Replay{cfg: cfg, log: log.With("component", "source", "file", cfg.File), clock: realClock{}}
	f, err := os.Open(cfg.File)
	if err != nil {
		return nil, fmt.Errorf("replay file: %w: want a readable CSV or JSONL file", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	if r.jsonl, err = isJSONL(cfg.File, br); err != nil {
		return nil, fmt.Errorf("replay file %s: %w", cfg.File, err)
	}
	if !r.jsonl {
		rows, err := newCSVRows(br, cfg.Symbol)
		if err != nil {
			return nil, fmt.Errorf("replay file %s: %w", cfg.File, err)
		}
		if rows.cols.bars() {
			if r.periods, err = rows.barPeriods(); err != nil {
				return nil, fmt.Errorf("replay file %s: %w", cfg.File, err)
			}
		}
	}
	r.bad = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tickwire_collector_input_bad_lines_total",
		Help: "Input lines refused because they are not valid events.",
	})
	if err := reg.Register(r.bad); err != nil {
		return nil, fmt.Errorf("register input metrics: %w", err)
	}
	return r, nil
}

// isJSONL tells a JSONL file from a CSV file: by extension, else by the
// first character that is not white space.
func isJSONL(name string, br *bufio.Reader) (bool, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jsonl", ".ndjson":
		return true, nil
	case ".csv", ".tsv":
		return false, nil
	}
	head, err := br.Peek(4096)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return false, err
	}
	head = bytes.TrimLeft(head, " \t\r\n\ufeff")
	return len(head) > 0 && head[0] == '{', nil
}

// passStats describe one pass over the file, in the file's own times.
type passStats struct {
	rows, events int
	minTS, maxTS int64
	step         int64 // smallest positive gap between consecutive rows
	lastTS       int64
}

func (s *passStats) add(ts int64) {
	if s.events == 0 {
		s.minTS, s.maxTS = ts, ts
	} else {
		gap := ts - s.lastTS
		if gap < 0 {
			gap = -gap
		}
		if gap > 0 && (s.step == 0 || gap < s.step) {
			s.step = gap
		}
		s.minTS, s.maxTS = min(s.minTS, ts), max(s.maxTS, ts)
	}
	s.events++
	s.lastTS = ts
}

// span is how far the next pass of a loop is shifted: the file's time span
// and one step more, so that its first row follows the last of this pass.
func (s *passStats) span() int64 {
	step := s.step
	if step == 0 {
		step = loopStep
	}
	return s.maxTS - s.minTS + step
}

// Run emits the file's events until its end (or, with Loop, until ctx
// ends), then returns nil. It returns an error if the file cannot be read,
// at a bad row of a strict replay, or when a loop has no valid row.
func (r *Replay) Run(ctx context.Context, emit func(Event)) error {
	p := pacer{speed: r.cfg.Speed}
	var shift int64
	for pass := 1; ; pass++ {
		st, err := r.pass(ctx, &p, shift, emit)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		r.log.Info("replay pass ended", "pass", pass, "rows", st.rows, "events", st.events, "bad_rows", st.rows-st.events)
		if !r.cfg.Loop {
			return nil
		}
		if st.events == 0 {
			return fmt.Errorf("replay file %s: no valid row to loop over", r.cfg.File)
		}
		shift += st.span()
	}
}

// pass replays the file once, adding shift to every time.
func (r *Replay) pass(ctx context.Context, p *pacer, shift int64, emit func(Event)) (passStats, error) {
	var st passStats
	f, err := os.Open(r.cfg.File)
	if err != nil {
		return st, fmt.Errorf("replay file: %w", err)
	}
	defer f.Close()
	rows, err := r.open(f)
	if err != nil {
		return st, fmt.Errorf("replay file %s: %w", r.cfg.File, err)
	}
	for {
		select {
		case <-ctx.Done():
			return st, nil
		default:
		}
		rw, err := rows.next(shift)
		var bad *rowError
		switch {
		case errors.Is(err, io.EOF):
			return st, nil
		case errors.As(err, &bad):
			st.rows++
			if r.cfg.Strict {
				return st, fmt.Errorf("replay file %s %v (strict replay stops at the first bad row)", r.cfg.File, bad)
			}
			r.refuse(bad)
			continue
		case err != nil:
			return st, fmt.Errorf("read replay file %s: %w", r.cfg.File, err)
		}
		st.rows++
		raw := rw.e.TS - shift // the file's own time
		if rw.noTS {
			raw = st.lastTS
			if st.events == 0 {
				raw = r.clock.Now().UnixMilli() - shift
			}
			rw.e.TS = raw + shift
		}
		st.add(raw)
		if !r.wait(ctx, p, rw) || !waitIdle(ctx, r.cfg.Busy) {
			return st, nil
		}
		emit(rw.e)
	}
}

// rowReader reads a replay file's rows. next returns a row with its time
// moved by shift (for CSV bars, start and end too; JSONL data is passed on
// as it is), io.EOF at the end, a *rowError for a bad row (the next call
// goes on after it), and any other error when reading failed.
type rowReader interface {
	next(shift int64) (row, error)
}

// open returns the rows of a file: after the header for CSV.
func (r *Replay) open(f io.Reader) (rowReader, error) {
	if r.jsonl {
		return &jsonlRows{br: bufio.NewReaderSize(f, maxLine)}, nil
	}
	rows, err := newCSVRows(f, r.cfg.Symbol)
	if err != nil {
		return nil, err
	}
	rows.periods = r.periods
	return rows, nil
}

// wait waits until the row is due; false means ctx ended first.
func (r *Replay) wait(ctx context.Context, p *pacer, rw row) bool {
	d := p.delay(r.clock.Now(), rw.e.TS)
	if d <= 0 {
		return true
	}
	if d >= longWait {
		r.log.Info("replay waiting for the next row's time", "wait", d.Round(time.Millisecond), "line", rw.line, "speed", r.cfg.Speed)
	}
	return r.clock.Sleep(ctx, d)
}

// refuse counts a bad row, and logs it unless many were logged already.
func (r *Replay) refuse(bad *rowError) {
	r.bad.Inc()
	r.seenBad++
	switch {
	case r.seenBad < maxLogBad:
		r.log.Warn("bad replay row skipped", "line", bad.line, "err", bad.err)
	case r.seenBad == maxLogBad:
		r.log.Warn("bad replay row skipped; further bad rows are counted, not logged", "line", bad.line, "err", bad.err)
	}
}

// jsonlRows reads the lines of a JSONL file.
type jsonlRows struct {
	br  *bufio.Reader
	n   int
	end bool
}

func (j *jsonlRows) next(shift int64) (row, error) {
	for !j.end {
		j.n++
		l, err := readLine(j.br, j.n)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return row{}, err
			}
			j.end = true
		}
		if l.tooLong {
			return row{}, &rowError{line: l.n, err: fmt.Errorf("line longer than %d bytes", maxLine)}
		}
		if len(l.text) == 0 {
			continue
		}
		e, hasTS, err := decodeLine(l.text)
		if err != nil {
			return row{}, &rowError{line: l.n, err: err}
		}
		e.TS += shift
		return row{e: e, line: l.n, noTS: !hasTS}, nil
	}
	return row{}, io.EOF
}

// pacer schedules events by their times: an event of time ts is due at
// wall0 + (ts - ts0)/speed. The schedule starts at the first event, and
// starts again at an event more than maxLag overdue (the consumer held the
// replay back, or the file's time went backwards), so that a replay never
// bursts to catch up.
type pacer struct {
	speed   float64
	started bool
	wall0   time.Time
	ts0     int64
}

// maxPace bounds a computed offset, so that absurd times and speeds cannot
// overflow a Duration (±31 years).
const maxPace = 1e12 // ms

// delay returns how long after now the event of time ts is due (0: now).
func (p *pacer) delay(now time.Time, ts int64) time.Duration {
	if p.speed == 0 {
		return 0
	}
	if !p.started {
		p.started, p.wall0, p.ts0 = true, now, ts
		return 0
	}
	ms := math.Max(-maxPace, math.Min(maxPace, float64(ts-p.ts0)/p.speed))
	d := p.wall0.Add(time.Duration(ms * float64(time.Millisecond))).Sub(now)
	if d < -maxLag {
		p.wall0, p.ts0 = now, ts
		return 0
	}
	return max(d, 0)
}

// clock is the time a replay paces itself by; tests replace it.
type clock interface {
	Now() time.Time
	// Sleep waits d, or until ctx ends (then it returns false).
	Sleep(ctx context.Context, d time.Duration) bool
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
