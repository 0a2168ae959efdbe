package wsconn

import (
	"slices"
	"sync"
	"time"

	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/shared/event"
)

// item is one entry of the outbound queue: an event (msg), or a frame
// written whole when msg is nil. Each live delivery writes one item, so
// it is two words: what only whole frames need is behind a pointer
// (BenchmarkDeliverFanout: 72 bytes an item cost 13 ns a delivery).
type item struct {
	msg   *hub.Message
	whole *whole
}

// whole is a frame queued already encoded: a control frame, a snapshot (its
// events counted toward the limits by the queue), or a window of paced live
// events (pace.go).
type whole struct {
	frame  []byte
	events int            // a paced window's events, counted as delivered when it is written
	batch  []*hub.Message // those events, for an event stream's position (sse.go)
}

// queue is a connection's bounded outbound queue, filled by the hub (from
// the feed readers), by the connection's reader and by the history pages
// of its recoveries, drained by its writer. Its mutex guards only memory;
// nothing blocks while holding it, and it calls nothing outside: its
// methods report what the connection must do (wake the writer, cut a
// write short).
//
// Everything queued counts toward the limits (count and bytes), live
// events as well as replayed and snapshot ones; control frames are few and
// small and do not. Overflow policy, in order: above the high-water mark a
// quote or bar replaces the queued event of its channel (conflation: a
// late client sees the latest price, not every price); a live event that
// still does not fit under the hard limits closes the connection with 4008
// and the queue is emptied, because a trade would otherwise be lost
// silently. The client then resumes from history with since. History is
// queued only when there is room (see room), so history alone never
// overflows: a client that stops reading stops the reading of history.
//
// Channels being recovered (subscribe with snapshot or since) hold their
// live events back until their recovery ends; held events are bounded by
// the same limits, and overflowing them closes 4008 too.
// The queue also keeps the last id queued per channel and never queues an
// event that is not newer: per channel, ids only grow and nothing repeats.
type queue struct {
	// What every delivery reads, together: the hub hands each event of a
	// batch to every subscriber in turn, so at a thousand subscribers each
	// delivery finds its queue out of the cache, and pays for every cache
	// line it touches (BenchmarkDeliverFanout).
	mu         sync.Mutex
	closeCode  CloseCode // once set, nothing more is queued
	dirty      bool      // delivered since the last wake-up; a Wake is due
	events     int       // events in items (snapshot frames count their events)
	bytes      int       // bytes of those events
	maxItems   int
	maxBytes   int
	highWater  int
	last       map[uint64]*lastID              // by hub.KeyOf(channel): one lookup per delivery (lastOf)
	lastClash  map[event.Channel]*event.ID     // channels whose key another channel's entry holds
	recovering map[event.Channel]int           // concrete, or KIND:* for a kind: recoveries holding it
	pace       map[event.Channel]time.Duration // paced channels (below): concrete or KIND:*
	floor      []event.ID                      // an event stream resumed at a position (below)
	items      []item
	conflate   map[event.Channel]int // index in items of the latest quote/bar, above high water

	spare     []item
	held      []*hub.Message
	heldBytes int
	jobs      []*recovery // FIFO: the oldest is read first
	closeText string

	// Paced channels (throttle_ms, pace.go): their live events wait in
	// the window of their pace; they count toward the limits with the
	// queued ones.
	windows     map[time.Duration]*window
	pacedEvents int
	pacedBytes  int

	// An event stream resumed at a position (sse.go): floor holds, per
	// shard, the position; live events not above it were sent before.
	// Set once, before anything is delivered.
	shardOf func(symbol string) int
}

func newQueue(maxItems, maxBytes int) *queue {
	return &queue{maxItems: maxItems, maxBytes: maxBytes, highWater: maxItems / 2}
}

// pending reports whether the writer has something to do.
func (q *queue) pending() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) > 0 || len(q.jobs) > 0 || q.closeCode != 0 || q.pacedEvents > 0
}

// deliver queues a live event. Called by the hub; never blocks. It reports
// whether a wake-up is due (the hub wakes once after queuing a whole
// batch), and whether the queue overflowed just now: then a write in
// progress must be cut short.
func (q *queue) deliver(m *hub.Message) (wake, overflowed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closeCode != 0 {
		return false, false
	}
	queued := false
	if len(q.recovering) > 0 && q.isRecovering(m.Event.Channel) {
		if len(q.held) >= q.maxItems || q.heldBytes+len(m.Wire) > q.maxBytes {
			q.overflow()
		} else {
			q.held = append(q.held, m)
			q.heldBytes += len(m.Wire)
		}
	} else {
		queued = q.push(m)
	}
	if q.closeCode == CloseSlowConsumer {
		return false, true
	}
	if queued && !q.dirty {
		q.dirty, wake = true, true
	}
	return wake, false
}

// wakeUp ends a batch of deliveries: the writer must take them.
func (q *queue) wakeUp() {
	q.mu.Lock()
	q.dirty = false
	q.mu.Unlock()
}

// push queues m, or holds it in its window when its channel is paced. It
// reports whether the writer must look. q.mu is held.
func (q *queue) push(m *hub.Message) bool {
	if q.floor != nil && !q.floor[q.shardOf(m.Event.Channel.Symbol)].Less(m.Event.ID) {
		return false
	}
	if every := q.paceOf(m.Event.Channel); every > 0 {
		return q.pushPaced(m, every)
	}
	return q.pushLive(m)
}

// pushLive queues m under the overflow policy; it reports whether anything
// changed that the writer must see. q.mu is held.
func (q *queue) pushLive(m *hub.Message) bool {
	ch, key := m.Event.Channel, m.Key()
	last := q.lastOf(ch, key)
	if last != nil && !last.Less(m.Event.ID) {
		return false
	}
	size := len(m.Wire)
	conflatable := ch.Kind == event.KindQuote || ch.Kind == event.KindBar
	if conflatable && q.events >= q.highWater {
		if i, ok := q.conflate[ch]; ok {
			q.bytes += size - len(q.items[i].msg.Wire)
			q.items[i].msg = m
			q.advance(last, ch, key, m.Event.ID)
			return false // already counted as waiting
		}
	}
	if q.events >= q.maxItems || q.bytes+size > q.maxBytes {
		q.overflow()
		return true
	}
	if conflatable && q.events >= q.highWater {
		if q.conflate == nil {
			q.conflate = make(map[event.Channel]int)
		}
		q.conflate[ch] = len(q.items)
	}
	q.items = append(q.items, item{msg: m})
	q.events++
	q.bytes += size
	q.advance(last, ch, key, m.Event.ID)
	return true
}

// pushHistory queues a replayed event, subject to the id order. Its room
// was checked before its page was read. q.mu is held.
func (q *queue) pushHistory(m *hub.Message) {
	ch, key := m.Event.Channel, m.Key()
	last := q.lastOf(ch, key)
	if last != nil && !last.Less(m.Event.ID) {
		return
	}
	q.items = append(q.items, item{msg: m})
	q.events++
	q.bytes += len(m.Wire)
	q.advance(last, ch, key, m.Event.ID)
}

// lastID is the last id queued on a channel.
type lastID struct {
	ch event.Channel
	id event.ID
}

// lastOf returns the last id queued on ch, whose key is key
// (hub.KeyOf(ch)), as a pointer to update; nil if none was. q.mu is held.
func (q *queue) lastOf(ch event.Channel, key uint64) *event.ID {
	e := q.last[key]
	switch {
	case e == nil:
		return nil
	case e.ch == ch:
		return &e.id
	default: // another channel has this key
		return q.lastClash[ch]
	}
}

// advance records id as the last queued on ch (key: its hub.KeyOf),
// through last (the channel's entry, from lastOf) when there is one. q.mu
// is held.
func (q *queue) advance(last *event.ID, ch event.Channel, key uint64, id event.ID) {
	if last != nil {
		*last = id
		return
	}
	if q.last == nil {
		q.last = make(map[uint64]*lastID)
	}
	if q.last[key] == nil {
		q.last[key] = &lastID{ch: ch, id: id}
		return
	}
	if q.lastClash == nil {
		q.lastClash = make(map[event.Channel]*event.ID)
	}
	p := new(event.ID) // not &id: that would move id to the heap on every call
	*p = id
	q.lastClash[ch] = p
}

// overflow drops everything queued and held and closes with 4008. q.mu is
// held.
func (q *queue) overflow() {
	clear(q.items)
	q.items = q.items[:0]
	clear(q.held)
	q.held, q.heldBytes = nil, 0
	q.jobs = nil
	q.events, q.bytes = 0, 0
	clear(q.conflate)
	q.clearWindows()
	q.closeCode, q.closeText = CloseSlowConsumer, "slow consumer: resume with since"
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
		q.items = append(q.items, item{whole: &whole{frame: b}})
	}
	q.mu.Unlock()
}

// close asks the writer to send what is queued, then close with code. The
// first close wins.
func (q *queue) close(code CloseCode, text string) {
	q.mu.Lock()
	if q.closeCode == 0 {
		q.closeCode, q.closeText = code, text
		q.jobs = nil
	}
	q.mu.Unlock()
}

// closing reports whether a close has been asked for.
func (q *queue) closing() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closeCode != 0
}

// hold marks channels as recovering: their live events wait until the
// recovery that holds them ends.
func (q *queue) hold(chs []event.Channel) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.recovering == nil {
		q.recovering = make(map[event.Channel]int)
	}
	for _, c := range chs {
		q.recovering[c]++
	}
}

// unhold ends the hold of chs (once per hold), then queues the held
// events no longer recovering, or drops them unless keep. q.mu is held.
func (q *queue) unhold(chs []event.Channel, keep bool) {
	for _, c := range chs {
		if q.recovering[c] <= 1 {
			delete(q.recovering, c)
		} else {
			q.recovering[c]--
		}
	}
	if len(q.recovering) == 0 {
		q.recovering = nil // a map keeps its size: an idle connection keeps none
	}
	kept := q.held[:0]
	bytes := 0
	for _, m := range q.held {
		if q.isRecovering(m.Event.Channel) {
			kept = append(kept, m)
			bytes += len(m.Wire)
			continue
		}
		if !keep {
			continue
		}
		q.push(m)
		if q.closeCode != 0 {
			return // overflow (4008) emptied the queue and held
		}
	}
	clear(q.held[len(kept):])
	if len(kept) == 0 {
		kept = nil
	}
	q.held, q.heldBytes = kept, bytes
}

// begin queues the frames in head (subscribed, gap), raises the floor of
// the channels in since to what the client has already seen, queues first
// (the first snapshot page of r, read with the subscribe), and queues r,
// whose other pages the writer reads as room allows. An empty r ends at
// once.
func (q *queue) begin(head [][]byte, since map[event.Channel]event.ID, r *recovery, first page, msgs []*hub.Message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closeCode != 0 {
		return
	}
	for _, b := range head {
		q.items = append(q.items, item{whole: &whole{frame: b}})
	}
	for c, id := range since {
		key := hub.KeyOf(c)
		if last := q.lastOf(c, key); last == nil || last.Less(id) {
			q.advance(last, c, key, id)
		}
	}
	if first.r == r {
		q.pushSnapshot(first, msgs)
	}
	if r.done() {
		q.unhold(r.hold, true)
		return
	}
	q.jobs = append(q.jobs, r)
}

// abandon ends the hold of chs without queuing anything: their
// subscription failed before its recovery began, and the events held for
// them are dropped (the client is not subscribed to them).
func (q *queue) abandon(chs []event.Channel) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.unhold(chs, false)
}

// admit ends the hold of chs, new channels without a recovery, once their
// subscribed frame is queued: the live events held meanwhile follow it.
func (q *queue) admit(chs []event.Channel) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.unhold(chs, true)
}

// room returns the next page of the oldest recovery to read, if the
// queue has room for it: history is read only while the queue is below its
// high-water mark (events and bytes), so a client that does not read stops
// the reading. A recovery with nothing left is ended on the way.
func (q *queue) room() (page, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.jobs) > 0 && q.jobs[0].done() {
		// The held-back events (within the limits) are queued when it
		// ends: only once the writer has drained the queue, so that they
		// fit whatever the last page brought.
		if q.events > 0 && (q.events+len(q.held) > q.maxItems || q.bytes+q.heldBytes > q.maxBytes) {
			return page{}, false
		}
		q.endJob()
	}
	if len(q.jobs) == 0 || q.closeCode != 0 {
		return page{}, false
	}
	n := q.highWater - q.events
	if n < min(minPage, max(q.highWater/2, 1)) || q.bytes > q.maxBytes/2 {
		return page{}, false
	}
	return q.jobs[0].next(n), true
}

// endJob ends the oldest recovery. q.mu is held.
func (q *queue) endJob() {
	r := q.jobs[0]
	q.jobs[0] = nil
	q.jobs = q.jobs[1:]
	q.unhold(r.hold, true)
}

// snapshotPage queues msgs, read for p, as one snapshot frame: those of
// channels still wanted (not unsubscribed meanwhile) and newer than
// anything sent on their channel (none: no frame).
func (q *queue) snapshotPage(p page, msgs []*hub.Message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closeCode != 0 || len(q.jobs) == 0 || q.jobs[0] != p.r {
		return
	}
	q.pushSnapshot(p, msgs)
}

// pushSnapshot is snapshotPage with q.mu held.
func (q *queue) pushSnapshot(p page, msgs []*hub.Message) {
	r := p.r
	read := make(map[event.Channel]bool, len(p.snap))
	for _, c := range p.snap {
		read[c] = false
	}
	rest := r.snap[:0]
	for _, c := range r.snap {
		if _, ok := read[c]; ok {
			read[c] = true // still wanted
			continue
		}
		rest = append(rest, c)
	}
	clear(r.snap[len(rest):])
	r.snap = rest
	fresh := q.newer(msgs)
	fresh = slices.DeleteFunc(fresh, func(m *hub.Message) bool { return !read[m.Event.Channel] })
	if len(fresh) == 0 {
		return
	}
	b := appendSnapshot(nil, fresh)
	q.items = append(q.items, item{whole: &whole{frame: b}})
	q.events += len(fresh)
	q.bytes += len(b)
	for _, m := range fresh {
		ch, key := m.Event.Channel, m.Key()
		q.advance(q.lastOf(ch, key), ch, key, m.Event.ID)
	}
}

// replayPage queues msgs, the page p of a replayed channel, and moves its
// cursor to next, or past the channel when done. A page of a channel
// unsubscribed meanwhile is dropped.
func (q *queue) replayPage(p page, msgs []*hub.Message, next event.ID, done bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	r := p.r
	if q.closeCode != 0 || len(q.jobs) == 0 || q.jobs[0] != r || len(r.replay) == 0 || r.replay[0] != p.replay {
		return
	}
	for _, m := range msgs {
		q.pushHistory(m)
	}
	if done {
		r.replay = r.replay[1:]
	} else {
		r.replay[0].after = next
	}
}

// feedPage queues the events of msgs, the page p of a shard's feed, that
// the recovery wants, and moves its cursor to next, or past the shard
// when done.
func (q *queue) feedPage(p page, msgs []*hub.Message, next event.ID, done bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	r := p.r
	if q.closeCode != 0 || len(q.jobs) == 0 || q.jobs[0] != r || len(r.feeds) == 0 || r.feeds[0] != *p.feed {
		return
	}
	for _, m := range msgs {
		if r.match(m.Event.Channel) {
			q.pushHistory(m)
		}
	}
	if done {
		r.feeds = r.feeds[1:]
	} else {
		r.feeds[0].after = next
	}
}

// drop forgets what recoveries would still send of the channels gone
// reports (unsubscribed): their history and their held-back live events.
// gone must only look at its argument; it runs under the queue's lock.
func (q *queue) drop(gone func(event.Channel) bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, r := range q.jobs {
		r.drop(gone)
	}
	kept := q.held[:0]
	bytes := 0
	for _, m := range q.held {
		if !gone(m.Event.Channel) {
			kept = append(kept, m)
			bytes += len(m.Wire)
		}
	}
	clear(q.held[len(kept):])
	q.held, q.heldBytes = kept, bytes
}

// newer returns the messages of msgs newer than the last queued on their
// channel. q.mu is held.
func (q *queue) newer(msgs []*hub.Message) []*hub.Message {
	out := msgs[:0:0]
	for _, m := range msgs {
		if last := q.lastOf(m.Event.Channel, m.Key()); last == nil || last.Less(m.Event.ID) {
			out = append(out, m)
		}
	}
	return out
}

// take hands the writer everything queued (with the paced windows due by
// now), and the close code if one was asked for; due is how long until the
// next window is due (0: none waits). now is called only when a paced
// window holds events: the writer takes twice per frame, and reading the
// clock is not free. The writer gives the slice back with recycle.
func (q *queue) take(now func() time.Time) (items []item, code CloseCode, text string, due time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closeCode == 0 && q.pacedEvents > 0 {
		due = q.flushWindows(now())
	}
	items = q.items
	q.items, q.spare = q.spare[:0], nil
	q.events, q.bytes = 0, 0
	clear(q.conflate)
	return items, q.closeCode, q.closeText, due
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

// release drops the spare slice, and the queue's own when it is empty: the
// writer's goroutine ends, and an idle connection keeps no slice sized for
// its last burst. (A writer started meanwhile at worst allocates one
// again.)
func (q *queue) release() {
	q.mu.Lock()
	q.spare = nil
	if len(q.items) == 0 {
		q.items = nil
	}
	q.mu.Unlock()
}
