package wsconn

import (
	"time"

	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/shared/event"
)

// Bounds of a subscribe's throttle_ms (docs/protocol.md).
const (
	minThrottle = 50 * time.Millisecond
	maxThrottle = 60 * time.Second
)

// window holds the live events of the channels paced at one interval
// (throttle_ms) until the interval has passed since the last frame of
// that pace: quotes and bars conflated to the latest per channel, trades
// and signals all kept, in arrival order. It is owned by the queue and
// changed only under its lock.
type window struct {
	every  time.Duration
	msgs   []*hub.Message
	latest map[event.Channel]int // index in msgs of the channel's quote or bar
	bytes  int
	due    time.Time // when msgs go out; zero while msgs is empty
	last   time.Time // when the previous frame went out
}

// paceOf returns the pace of c: its own subscription's, else its kind's
// wildcard's; 0 when it is not paced. q.mu is held.
func (q *queue) paceOf(c event.Channel) time.Duration {
	if len(q.pace) == 0 {
		return 0
	}
	if d, ok := q.pace[c]; ok {
		return d
	}
	return q.pace[event.Channel{Kind: c.Kind, Symbol: event.Wildcard}]
}

// setPace gives chs the pace every (0: not paced), as a subscribe asks.
// What waits in windows goes out now: an event of a channel whose pace
// changed must not come after a later one sent at the new pace.
func (q *queue) setPace(chs []event.Channel, every time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	changed := false
	for _, c := range chs {
		old, had := q.pace[c]
		switch {
		case every == 0 && had:
			delete(q.pace, c)
		case every > 0 && old != every:
			if q.pace == nil {
				q.pace = make(map[event.Channel]time.Duration)
			}
			q.pace[c] = every
		default:
			continue
		}
		changed = true
	}
	if changed {
		q.flushWindows(time.Time{})
	}
}

// pushPaced holds m in the window of its pace every. It reports whether
// the window was empty: the writer must learn its due time. q.mu is held.
func (q *queue) pushPaced(m *hub.Message, every time.Duration) bool {
	ch, key := m.Event.Channel, m.Key()
	last := q.lastOf(ch, key)
	if last != nil && !last.Less(m.Event.ID) {
		return false
	}
	w := q.windows[every]
	if w == nil {
		if q.windows == nil {
			q.windows = make(map[time.Duration]*window)
		}
		w = &window{every: every}
		q.windows[every] = w
	}
	size := len(m.Wire)
	if ch.Kind == event.KindQuote || ch.Kind == event.KindBar {
		if i, ok := w.latest[ch]; ok {
			q.pacedBytes += size - len(w.msgs[i].Wire)
			w.bytes += size - len(w.msgs[i].Wire)
			w.msgs[i] = m
			q.advance(last, ch, key, m.Event.ID)
			return false
		}
	}
	if q.events+q.pacedEvents >= q.maxItems || q.bytes+q.pacedBytes+size > q.maxBytes {
		q.overflow()
		return false
	}
	if ch.Kind == event.KindQuote || ch.Kind == event.KindBar {
		if w.latest == nil {
			w.latest = make(map[event.Channel]int)
		}
		w.latest[ch] = len(w.msgs)
	}
	w.msgs = append(w.msgs, m)
	w.bytes += size
	q.pacedEvents++
	q.pacedBytes += size
	q.advance(last, ch, key, m.Event.ID)
	if len(w.msgs) > 1 {
		return false
	}
	// The first event after a quiet spell goes out at once; later ones
	// wait until the interval has passed since the previous frame.
	w.due = time.Now()
	if next := w.last.Add(every); next.After(w.due) {
		w.due = next
	}
	return true
}

// flushWindows queues, as one events frame each, the windows due by now
// (all of them when now is zero), and returns how long until the next one
// is due (0: none waits). q.mu is held.
func (q *queue) flushWindows(now time.Time) time.Duration {
	var next time.Duration
	for _, w := range q.windows {
		if len(w.msgs) == 0 {
			continue
		}
		if !now.IsZero() && w.due.After(now) {
			if d := w.due.Sub(now); next == 0 || d < next {
				next = d
			}
			continue
		}
		b := append([]byte(nil), eventsHead...)
		for i, m := range w.msgs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, m.Wire...)
		}
		b = append(b, framesTail...)
		batch := append([]*hub.Message(nil), w.msgs...)
		q.items = append(q.items, item{whole: &whole{frame: b, events: len(w.msgs), batch: batch}})
		q.events += len(w.msgs)
		q.bytes += w.bytes
		q.pacedEvents -= len(w.msgs)
		q.pacedBytes -= w.bytes
		clear(w.msgs)
		w.msgs, w.bytes = w.msgs[:0], 0
		clear(w.latest)
		w.last, w.due = now, time.Time{}
		if now.IsZero() {
			w.last = time.Now()
		}
	}
	return next
}

// clearWindows drops what the windows hold (overflow). q.mu is held.
func (q *queue) clearWindows() {
	for _, w := range q.windows {
		clear(w.msgs)
		w.msgs, w.bytes = w.msgs[:0], 0
		clear(w.latest)
		w.due = time.Time{}
	}
	q.pacedEvents, q.pacedBytes = 0, 0
}
