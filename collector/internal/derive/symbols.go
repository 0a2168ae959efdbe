package derive

import (
	"container/heap"
	"log/slog"
	"time"
)

// refusedLogEvery is the least time between two log lines about refused
// symbols; the counter counts every refused event.
const refusedLogEvery = 10 * time.Second

// symbol returns the state of the symbol name, created if new, and marks it
// seen; nil if it is new and Config.MaxSymbols are known already.
func (s *Stage) symbol(name string) *symbol {
	sym := s.syms[name]
	if sym == nil {
		if s.cfg.MaxSymbols > 0 && len(s.syms) >= s.cfg.MaxSymbols {
			return nil
		}
		sym = &symbol{name: name, due: s.clock.Add(s.cfg.Idle)}
		sym.bar.lastStart = -1
		s.syms[name] = sym
		heap.Push(&s.due, sym)
		s.m.symbols.Set(float64(len(s.syms)))
	}
	sym.seen = s.clock
	return sym
}

// dueBy makes tick look at sym no later than t.
func (s *Stage) dueBy(sym *symbol, t time.Time) {
	if t.Before(sym.due) {
		sym.due = t
		heap.Fix(&s.due, sym.idx)
	}
}

// tick closes the bars whose wall-clock time is up at now and forgets the
// symbols idle since now minus Config.Idle. It looks only at the symbols
// due by now: a symbol's due time may be early (its bar was closed by a
// trade, or it was seen since), never late, and is then moved on.
func (s *Stage) tick(now time.Time) {
	s.mu.Lock()
	s.clock = now
	for len(s.due) > 0 && !now.Before(s.due[0].due) {
		sym := s.due[0]
		if b := &sym.bar.cur; b.open && s.cfg.CloseQuiet && !now.Before(b.closeAt) {
			s.closeBar(sym)
		}
		idleAt := sym.seen.Add(s.cfg.Idle)
		if !now.Before(idleAt) {
			s.forget(sym)
			continue
		}
		sym.due = idleAt
		if b := &sym.bar.cur; b.open && s.cfg.CloseQuiet && b.closeAt.Before(idleAt) {
			sym.due = b.closeAt
		}
		heap.Fix(&s.due, 0)
	}
	report := s.refused.take(now)
	s.mu.Unlock()
	report.log(s.log, s.cfg.MaxSymbols)
}

// forget emits an idle symbol's open bar, then drops its state.
func (s *Stage) forget(sym *symbol) {
	if sym.bar.cur.open {
		s.closeBar(sym)
	}
	heap.Remove(&s.due, sym.idx)
	delete(s.syms, sym.name)
	s.m.symbols.Set(float64(len(s.syms)))
	s.m.forgotten.Inc()
}

// refusals counts the events refused since the last log line about them.
type refusals struct {
	unlogged int
	last     string // the symbol last refused
	loggedAt time.Time
}

// refusedReport is a log line to write, after the Stage's lock is
// released; n 0: none.
type refusedReport struct {
	n      int
	symbol string
}

func (r refusedReport) log(log *slog.Logger, limit int) {
	if r.n > 0 {
		log.Warn("events of new symbols refused: COLLECTOR_MAX_SYMBOLS symbols are known",
			"refused", r.n, "last_symbol", r.symbol, "max_symbols", limit)
	}
}

// refuse counts an event of a new symbol refused, and returns a report if
// one is due.
func (s *Stage) refuse(name string) refusedReport {
	s.m.refused.Inc()
	s.refused.unlogged++
	s.refused.last = name
	return s.refused.take(s.now())
}

// take returns the refusals to log, if any wait and none was logged in the
// last refusedLogEvery.
func (r *refusals) take(now time.Time) refusedReport {
	if r.unlogged == 0 || now.Sub(r.loggedAt) < refusedLogEvery {
		return refusedReport{}
	}
	out := refusedReport{n: r.unlogged, symbol: r.last}
	r.unlogged, r.loggedAt = 0, now
	return out
}

// dueHeap orders symbols by due time, then name, so that bars closing at
// one tick come in a stable order. It implements heap.Interface.
type dueHeap []*symbol

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].name < h[j].name
}
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *dueHeap) Push(x any) {
	sym := x.(*symbol)
	sym.idx = len(*h)
	*h = append(*h, sym)
}
func (h *dueHeap) Pop() any {
	old := *h
	sym := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return sym
}
