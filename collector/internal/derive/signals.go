package derive

import (
	"math"

	"github.com/tickwire/tickwire/shared/event"
)

// The types of signal, as docs/protocol.md names them.
const (
	sigNewHigh = iota
	sigNewLow
	sigSurge
	numSignals
)

var signalNames = [numSignals]string{"new_high", "new_low", "surge"}

// extreme is the data of new_high and new_low.
type extreme struct {
	Signal   string  `json:"signal"`
	Price    float64 `json:"price"`
	PrevHigh float64 `json:"prev_high,omitempty"` // prices are > 0: set exactly for new_high
	PrevLow  float64 `json:"prev_low,omitempty"`
	MovePct  float64 `json:"move_pct"`
}

// surge is the data of surge.
type surge struct {
	Signal       string   `json:"signal"`
	Price        float64  `json:"price"`
	MovePct      float64  `json:"move_pct"`
	WindowMs     int64    `json:"window_ms"`
	WindowVolume float64  `json:"window_volume"`
	VolumeRatio  *float64 `json:"volume_ratio,omitempty"` // absent until the baseline is known
}

// sigState is a symbol's session: its extremes, recent trades and the
// time of its last signals.
type sigState struct {
	active    bool
	day       int64 // UTC day of event time
	first     int64 // time of the session's first trade
	clock     int64 // latest trade time of the session; never goes back
	trades    int
	high, low float64
	inSurge   bool
	fired     [numSignals]bool
	last      [numSignals]int64 // time of the last signal of each type
	win       window
}

// detect updates the symbol's session with a trade at ts and emits the
// signals it sets off (see the package doc).
func (s *Stage) detect(sym *symbol, ts int64, tr event.Trade) {
	g := &sym.sig
	if !g.active || ts < g.clock-timeReset || max(ts, g.clock)/dayMs != g.day {
		*g = sigState{active: true, day: ts / dayMs, first: ts, clock: ts, high: tr.Price, low: tr.Price}
	}
	g.clock = max(g.clock, ts)
	g.trades++
	warm := g.trades > s.cfg.Warmup
	switch {
	case tr.Price > g.high:
		if warm {
			s.fire(sym, sigNewHigh, extreme{Signal: "new_high", Price: tr.Price, PrevHigh: g.high, MovePct: pct(tr.Price, g.high)})
		}
		g.high = tr.Price
	case tr.Price < g.low:
		if warm {
			s.fire(sym, sigNewLow, extreme{Signal: "new_low", Price: tr.Price, PrevLow: g.low, MovePct: pct(tr.Price, g.low)})
		}
		g.low = tr.Price
	}
	if s.cfg.SurgePct == 0 && s.cfg.SurgeVolumeX == 0 {
		return
	}
	window, baseline := s.cfg.SurgeWindow.Milliseconds(), s.cfg.SurgeBaseline.Milliseconds()
	g.win.add(g.clock, tr.Price, tr.Size, window, baseline)
	move := g.win.movePct(tr.Price)
	on := s.cfg.SurgePct > 0 && math.Abs(move) >= s.cfg.SurgePct
	var ratio *float64
	if s.cfg.SurgeVolumeX > 0 && g.clock-g.first >= window+baseline {
		if avg := g.win.baseVol * float64(window) / float64(baseline); avg > 0 {
			r := round(max(g.win.winVol, 0)/avg, 2)
			ratio = &r
			on = on || r >= s.cfg.SurgeVolumeX
		}
	}
	if on && !g.inSurge && warm {
		s.fire(sym, sigSurge, surge{
			Signal: "surge", Price: tr.Price, MovePct: round(move, 4), WindowMs: window,
			WindowVolume: max(g.win.winVol, 0), VolumeRatio: ratio,
		})
	}
	g.inSurge = on
}

// fire emits a signal unless one of its type fired for the symbol less than
// the cooldown ago.
func (s *Stage) fire(sym *symbol, kind int, data any) {
	g := &sym.sig
	if g.fired[kind] && g.clock-g.last[kind] < s.cfg.Cooldown.Milliseconds() {
		s.m.suppressed.WithLabelValues(signalNames[kind]).Inc()
		return
	}
	g.fired[kind], g.last[kind] = true, g.clock
	s.emit(event.KindSignal, sym, g.clock, data)
	s.m.derived.WithLabelValues(signalNames[kind]).Inc()
}

// pct is the change from ref to p in percent, to four decimals.
func pct(p, ref float64) float64 { return round((p-ref)/ref*100, 4) }

func round(v float64, decimals int) float64 {
	f := math.Pow(10, float64(decimals))
	return math.Round(v*f) / f
}
