package derive

import (
	"time"

	"github.com/tickwire/tickwire/shared/event"
)

// barState is a symbol's bar in the making, and the start of the last one
// emitted (-1: none yet).
type barState struct {
	cur       openBar
	lastStart int64
}

type openBar struct {
	event.Bar
	open    bool
	closeAt time.Time // by the wall clock, with Config.CloseQuiet
}

// addToBar adds a trade at ts to its symbol's bars (see the package doc).
func (s *Stage) addToBar(sym *symbol, ts int64, tr event.Trade) {
	b := &sym.bar
	start := ts - ts%barMs
	switch {
	case b.cur.open && start == b.cur.Start:
		b.cur.High = max(b.cur.High, tr.Price)
		b.cur.Low = min(b.cur.Low, tr.Price)
		b.cur.Close = tr.Price
		b.cur.Volume += tr.Size
		return
	case b.cur.open && start > b.cur.Start:
		s.closeBar(sym)
	case b.cur.open && b.cur.Start-start > timeReset, !b.cur.open && b.lastStart-start > timeReset:
		s.restart(sym)
	case b.cur.open, start <= b.lastStart:
		s.m.late.Inc()
		return
	}
	b.cur = openBar{
		Bar: event.Bar{
			Open: tr.Price, High: tr.Price, Low: tr.Price, Close: tr.Price, Volume: tr.Size,
			Start: start, End: start + barMs,
		},
		open: true,
	}
	if s.cfg.CloseQuiet {
		b.cur.closeAt = s.now().Add(time.Duration(start+barMs-ts)*time.Millisecond + barGrace)
		s.dueBy(sym, b.cur.closeAt)
	}
}

// restart forgets a symbol's time: its open bar is emitted, and its bars
// and signals start afresh.
func (s *Stage) restart(sym *symbol) {
	if sym.bar.cur.open {
		s.closeBar(sym)
	}
	s.log.Info("symbol's time went back; bars and signals restart", "symbol", sym.name)
	sym.bar.lastStart = -1
	sym.sig = sigState{}
}

// closeBar emits the symbol's open bar, stamped with its end.
func (s *Stage) closeBar(sym *symbol) {
	b := &sym.bar
	s.emit(event.KindBar, sym, b.cur.End, b.cur.Bar)
	s.m.derived.WithLabelValues("bar").Inc()
	b.lastStart = b.cur.Start
	b.cur = openBar{}
}
