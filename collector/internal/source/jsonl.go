package source

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Limits of JSONL input.
const (
	maxLogBad = 100                  // bad lines logged one by one; later ones are only counted
	busyWait  = 5 * time.Millisecond // how often a held-back source asks again
)

// JSONLConfig configures a JSONL source.
type JSONLConfig struct {
	// Name says where the input comes from ("stdin"), in logs.
	Name string
	// Busy, if set, reports whether the consumer holds too many events; the
	// source then stops reading until it does not, so that a file piped in
	// faster than Redis takes it is held back upstream instead of dropped.
	Busy func() bool
}

// JSONL reads events, one JSON object a line, from a reader (ParseLine says
// what a line holds). Lines that are not valid events are logged with their
// number, counted in tickwire_collector_input_bad_lines_total, and skipped.
//
// Run must not be called by more than one goroutine, and only once.
type JSONL struct {
	r    io.Reader
	cfg  JSONLConfig
	log  *slog.Logger
	bad  prometheus.Counter
	seen struct{ lines, events, bad int }
}

// NewJSONL returns a JSONL source reading r, and registers its metric on reg.
func NewJSONL(r io.Reader, cfg JSONLConfig, log *slog.Logger, reg prometheus.Registerer) (*JSONL, error) {
	bad := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tickwire_collector_input_bad_lines_total",
		Help: "Input lines refused because they are not valid events.",
	})
	if err := reg.Register(bad); err != nil {
		return nil, fmt.Errorf("register input metrics: %w", err)
	}
	return &JSONL{r: r, cfg: cfg, log: log.With("component", "source", "input", cfg.Name), bad: bad}, nil
}

// Run emits the events of the input until it ends (then it returns nil, or
// the read error) or ctx ends (then it returns nil at once). A read that
// blocks, as on an idle terminal, cannot be interrupted: the goroutine
// reading stays in it until the input delivers or closes, and then ends.
func (j *JSONL) Run(ctx context.Context, emit func(Event)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan chunk, 2)
	go readLines(ctx, j.r, chunks)
	for {
		var c chunk
		select {
		case <-ctx.Done():
			return nil
		case c = <-chunks:
		}
		for _, l := range c.lines {
			if !j.handle(ctx, l, emit) {
				return nil
			}
		}
		if c.end {
			j.log.Info("input ended", "lines", j.seen.lines, "events", j.seen.events, "bad_lines", j.seen.bad)
			if c.err != nil {
				return fmt.Errorf("read %s: %w", j.cfg.Name, c.err)
			}
			return nil
		}
	}
}

// handle emits the event of one line, or counts the line as bad. It returns
// false if ctx ended while it waited for the consumer.
func (j *JSONL) handle(ctx context.Context, l line, emit func(Event)) bool {
	j.seen.lines = l.n
	var e Event
	var err error
	if l.tooLong {
		err = fmt.Errorf("line longer than %d bytes", maxLine)
	} else {
		e, err = ParseLine(l.text, time.Now())
	}
	if err != nil {
		j.refuse(l.n, err)
		return true
	}
	if !waitIdle(ctx, j.cfg.Busy) {
		return false
	}
	emit(e)
	j.seen.events++
	return true
}

// refuse counts a bad line, and logs it unless many were logged already.
func (j *JSONL) refuse(n int, err error) {
	j.bad.Inc()
	j.seen.bad++
	switch {
	case j.seen.bad < maxLogBad:
		j.log.Warn("bad input line skipped", "line", n, "err", err)
	case j.seen.bad == maxLogBad:
		j.log.Warn("bad input line skipped; further bad lines are counted, not logged", "line", n, "err", err)
	}
}

// waitIdle waits until busy (if set) reports false; false means ctx ended
// first.
func waitIdle(ctx context.Context, busy func() bool) bool {
	if busy == nil || !busy() {
		return true
	}
	t := time.NewTicker(busyWait)
	defer t.Stop()
	for busy() {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}
