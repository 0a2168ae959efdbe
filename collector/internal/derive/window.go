package derive

// tick is one trade in a window.
type tick struct {
	ts          int64
	price, size float64
}

// window holds a symbol's recent trades: those of the surge window (time
// after now-W) and, before them, those of the baseline (after now-W-B).
// It keeps the volume of each span, and the extremes of the surge window's
// prices in monotonic queues, so that each trade costs O(1) amortised.
type window struct {
	ticks           []tick // ticks[i] is trade number off+i
	off             int
	head            int // number of the first trade of the baseline
	mid             int // number of the first trade of the surge window
	winVol, baseVol float64
	maxq, minq      []int // numbers of window trades, prices falling (rising): the front is the extreme
}

func (w *window) at(n int) *tick { return &w.ticks[n-w.off] }

// add appends a trade at ts (never before the last) and slides the spans:
// win and base are W and B in ms.
func (w *window) add(ts int64, price, size float64, win, base int64) {
	n := w.off + len(w.ticks)
	w.ticks = append(w.ticks, tick{ts: ts, price: price, size: size})
	w.winVol += size
	for len(w.maxq) > 0 && w.at(w.maxq[len(w.maxq)-1]).price <= price {
		w.maxq = w.maxq[:len(w.maxq)-1]
	}
	w.maxq = append(w.maxq, n)
	for len(w.minq) > 0 && w.at(w.minq[len(w.minq)-1]).price >= price {
		w.minq = w.minq[:len(w.minq)-1]
	}
	w.minq = append(w.minq, n)
	for t := w.at(w.mid); t.ts <= ts-win; t = w.at(w.mid) { // stops at the trade just added
		w.winVol -= t.size
		w.baseVol += t.size
		w.mid++
	}
	for w.maxq[0] < w.mid {
		w.maxq = w.maxq[1:]
	}
	for w.minq[0] < w.mid {
		w.minq = w.minq[1:]
	}
	for w.head < w.mid && w.at(w.head).ts <= ts-win-base {
		w.baseVol -= w.at(w.head).size
		w.head++
	}
	if drop := w.head - w.off; drop > 0 && 2*drop >= len(w.ticks) {
		w.ticks = append(w.ticks[:0], w.ticks[drop:]...)
		w.off = w.head
	}
}

// movePct is the move of price from the window's extremes, in percent: up
// from the lowest or down (negative) from the highest, whichever is larger.
func (w *window) movePct(price float64) float64 {
	lo, hi := w.at(w.minq[0]).price, w.at(w.maxq[0]).price
	up, down := (price-lo)/lo*100, (price-hi)/hi*100
	if up >= -down {
		return up
	}
	return down
}
