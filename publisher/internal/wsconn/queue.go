package wsconn

import (
	"sync"
	"sync/atomic"

	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/shared/event"
)

// item is one entry of the outbound queue: an event (msg), or an encoded
// control frame (frame) when msg is nil.
type item struct {
	msg   *hub.Message
	frame []byte
}

// queue is a connection's bounded outbound queue, filled by the hub (from
// the feed readers) and by the connection's reader, drained by its writer.
// Its mutex guards only memory; nothing blocks while holding it.
//
// Overflow policy, in order: above the high-water mark a quote or bar
// replaces the queued event of its channel (conflation: a late client sees
// the latest price, not every price); a live event that still does not fit
// under the hard limits (count or bytes) closes the connection with 4008
// and the queue is emptied, because a trade would otherwise be lost
// silently. The client then resumes from history with since.
//
// Channels being recovered (subscribe with snapshot or since) hold their
// live events back until release, which queues the history first.
// The queue also keeps the last id queued per channel and never queues an
// event that is not newer: per channel, ids only grow and nothing repeats.
type queue struct {
	maxItems  int
	maxBytes  int
	highWater int
	wake      chan struct{} // capacity 1: wakes a lingering writer
	// notify (if set) is called after anything is queued, without the lock:
	// it makes sure a writer runs.
	notify func()
	// aborted is set on overflow, for the writer to see between frames;
	// onAbort (if set) is called once then, without the lock, to cut short
	// a write in progress.
	aborted atomic.Bool
	onAbort func()

	mu    sync.Mutex
	items []item
	spare []item
	bytes int
	// replayed and replayedBytes are the part of items and bytes that is
	// replayed history: it does not count against the limits, which are
	// for live events a client has not kept up with.
	replayed      int
	replayedBytes int
	conflate      map[event.Channel]int       // index in items of the latest quote/bar, above high water
	last          map[event.Channel]*event.ID // pointers: one lookup per delivery
	recovering    map[event.Channel]struct{}  // concrete, or KIND:* for a kind
	held          []*hub.Message
	dirty         bool      // delivered since the last wake-up; a Wake is due
	closeCode     CloseCode // once set, nothing more is queued
	closeText     string
}

func newQueue(maxItems, maxBytes int) *queue {
	return &queue{
		maxItems:  maxItems,
		maxBytes:  maxBytes,
		highWater: maxItems / 2,
		wake:      make(chan struct{}, 1),
	}
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
	if q.notify != nil {
		q.notify()
	}
}

// pending reports whether the writer has something to do.
func (q *queue) pending() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) > 0 || q.closeCode != 0
}

// deliver queues a live event. Called by the hub; never blocks. It does
// not wake the writer: it reports whether a wakeUp is due, which the hub
// calls once after queuing a whole batch.
func (q *queue) deliver(m *hub.Message) (wake bool) {
	q.mu.Lock()
	if q.closeCode != 0 {
		q.mu.Unlock()
		return false
	}
	queued := false
	if len(q.recovering) > 0 && q.isRecovering(m.Event.Channel) {
		if len(q.held) >= q.maxItems {
			q.overflow()
		} else {
			q.held = append(q.held, m)
		}
	} else {
		queued = q.pushLive(m)
	}
	aborted := q.closeCode == CloseSlowConsumer
	if queued && !q.dirty {
		q.dirty, wake = true, true
	}
	q.mu.Unlock()
	if aborted {
		if q.onAbort != nil {
			q.onAbort()
		}
		q.signal()
	}
	return wake
}

// wakeUp makes the writer take what deliver queued.
func (q *queue) wakeUp() {
	q.mu.Lock()
	q.dirty = false
	q.mu.Unlock()
	q.signal()
}

// pushLive queues m under the overflow policy; it reports whether anything
// changed that the writer must see. q.mu is held.
func (q *queue) pushLive(m *hub.Message) bool {
	ch := m.Event.Channel
	last := q.last[ch]
	if last != nil && !last.Less(m.Event.ID) {
		return false
	}
	size := len(m.Wire)
	conflatable := ch.Kind == event.KindQuote || ch.Kind == event.KindBar
	live := len(q.items) - q.replayed
	if conflatable && live >= q.highWater {
		if i, ok := q.conflate[ch]; ok {
			q.bytes += size - len(q.items[i].msg.Wire)
			q.items[i].msg = m
			q.advance(last, ch, m.Event.ID)
			return false // already counted as waiting
		}
	}
	if live >= q.maxItems || q.bytes-q.replayedBytes+size > q.maxBytes {
		q.overflow()
		return true
	}
	if conflatable && live >= q.highWater {
		if q.conflate == nil {
			q.conflate = make(map[event.Channel]int)
		}
		q.conflate[ch] = len(q.items)
	}
	q.items = append(q.items, item{msg: m})
	q.bytes += size
	q.advance(last, ch, m.Event.ID)
	return true
}

// pushHistory queues a replayed event: subject to the id order, not to the
// limits (history is bounded by its own length). q.mu is held.
func (q *queue) pushHistory(m *hub.Message) {
	ch := m.Event.Channel
	if last := q.last[ch]; last != nil && !last.Less(m.Event.ID) {
		return
	}
	q.items = append(q.items, item{msg: m})
	q.bytes += len(m.Wire)
	q.replayed++
	q.replayedBytes += len(m.Wire)
	q.setLast(ch, m.Event.ID)
}

func (q *queue) setLast(ch event.Channel, id event.ID) {
	q.advance(q.last[ch], ch, id)
}

// advance records id as the last queued on ch, through last (the channel's
// entry, already looked up by the caller) when there is one. q.mu is held.
func (q *queue) advance(last *event.ID, ch event.Channel, id event.ID) {
	if last != nil {
		*last = id
		return
	}
	if q.last == nil {
		q.last = make(map[event.Channel]*event.ID)
	}
	p := new(event.ID) // not &id: that would move id to the heap on every call
	*p = id
	q.last[ch] = p
}

// overflow drops everything queued and closes with 4008. q.mu is held.
func (q *queue) overflow() {
	clear(q.items)
	q.items = q.items[:0]
	clear(q.held)
	q.held = nil
	q.bytes = 0
	q.replayed, q.replayedBytes = 0, 0
	clear(q.conflate)
	q.closeCode, q.closeText = CloseSlowConsumer, "slow consumer: resume with since"
	q.aborted.Store(true)
}

func (q *queue) isRecovering(c event.Channel) bool {
	if _, ok := q.recovering[c]; ok {
		return true
	}
	_, ok := q.recovering[event.Channel{Kind: c.Kind, Symbol: event.Wildcard}]
	return ok
}

// frame queues a control frame. Control frames are few and small, and are
// not subject to the limits.
func (q *queue) frame(b []byte) {
	q.mu.Lock()
	if q.closeCode == 0 {
		q.items = append(q.items, item{frame: b})
	}
	q.mu.Unlock()
	q.signal()
}

// close asks the writer to send what is queued, then close with code. The
// first close wins.
func (q *queue) close(code CloseCode, text string) {
	q.mu.Lock()
	if q.closeCode == 0 {
		q.closeCode, q.closeText = code, text
	}
	q.mu.Unlock()
	q.signal()
}

// closing reports whether a close has been asked for.
func (q *queue) closing() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closeCode != 0
}

// hold marks channels as recovering: their live events wait until release.
func (q *queue) hold(chs []event.Channel) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.recovering == nil {
		q.recovering = make(map[event.Channel]struct{})
	}
	for _, c := range chs {
		q.recovering[c] = struct{}{}
	}
}

// release ends the recovery of chs: it queues the frames in head (subscribed,
// gap), then a snapshot frame of snap (those newer than anything sent on
// their channel; omitted when none is), then replay, then the live events
// held back meanwhile that are newer still. since raises the floor of a
// channel's ids to what the client has already seen.
func (q *queue) release(chs []event.Channel, head [][]byte, since map[event.Channel]event.ID, snap, replay []*hub.Message) {
	q.mu.Lock()
	if q.closeCode != 0 {
		q.mu.Unlock()
		return
	}
	for _, b := range head {
		q.items = append(q.items, item{frame: b})
	}
	for c, id := range since {
		if last := q.last[c]; last == nil || last.Less(id) {
			q.setLast(c, id)
		}
	}
	if fresh := q.newer(snap); len(fresh) > 0 {
		q.items = append(q.items, item{frame: appendSnapshot(nil, fresh)})
		for _, m := range fresh {
			q.setLast(m.Event.Channel, m.Event.ID)
		}
	}
	for _, m := range replay {
		q.pushHistory(m)
	}
	for _, c := range chs {
		delete(q.recovering, c)
	}
	q.releaseHeld()
	q.mu.Unlock()
	q.signal()
}

// abandon ends the recovery of chs without queuing anything: their
// subscription failed.
func (q *queue) abandon(chs []event.Channel) {
	q.mu.Lock()
	for _, c := range chs {
		delete(q.recovering, c)
	}
	kept := q.held[:0]
	for _, m := range q.held {
		if q.isRecovering(m.Event.Channel) {
			kept = append(kept, m)
		}
	}
	clear(q.held[len(kept):])
	q.held = kept
	q.mu.Unlock()
}

// releaseHeld queues the held events no longer recovering. q.mu is held.
func (q *queue) releaseHeld() {
	kept := q.held[:0]
	for _, m := range q.held {
		if q.isRecovering(m.Event.Channel) {
			kept = append(kept, m)
			continue
		}
		q.pushLive(m)
		if q.closeCode != 0 {
			return // overflow (4008) emptied the queue and held
		}
	}
	clear(q.held[len(kept):])
	q.held = kept
}

// newer returns the messages of msgs newer than the last queued on their
// channel. q.mu is held.
func (q *queue) newer(msgs []*hub.Message) []*hub.Message {
	out := msgs[:0:0]
	for _, m := range msgs {
		if last := q.last[m.Event.Channel]; last == nil || last.Less(m.Event.ID) {
			out = append(out, m)
		}
	}
	return out
}

// take hands the writer everything queued, and the close code if one was
// asked for. The writer gives the slice back with recycle.
func (q *queue) take() ([]item, CloseCode, string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items, q.spare = q.spare[:0], nil
	q.bytes = 0
	q.replayed, q.replayedBytes = 0, 0
	clear(q.conflate)
	return items, q.closeCode, q.closeText
}

// recycle returns a slice from take for reuse, dropping its references.
func (q *queue) recycle(items []item) {
	clear(items)
	q.mu.Lock()
	if q.spare == nil && cap(items) <= 2*q.maxItems {
		q.spare = items[:0]
	}
	q.mu.Unlock()
}
