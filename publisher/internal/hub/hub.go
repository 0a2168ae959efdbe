// Package hub indexes a replica's subscriptions and fans events out to them.
//
// The hub's lock guards only its in-memory lists. Publish holds the read
// lock while it hands each message to each subscriber's Deliver, which must
// never block: a subscriber queues or drops, it does not wait. So no lock
// here is ever held across I/O, and a slow client cannot hold up the others.
package hub

import (
	"hash/maphash"
	"sync"

	"github.com/tickwire/tickwire/shared/event"
)

// Message is one event, encoded once and shared read-only by every
// subscriber that receives it.
type Message struct {
	Event event.Event
	// Wire is the protocol's EVENT object, ready to be written.
	Wire []byte
	key  uint64 // KeyOf(Event.Channel), hashed once by NewMessage; 0: not hashed
}

// NewMessage encodes e once.
func NewMessage(e event.Event) *Message {
	return &Message{Event: e, Wire: e.AppendWire(make([]byte, 0, 64+len(e.Data))), key: KeyOf(e.Channel)}
}

// Key returns KeyOf(m.Event.Channel), hashed once when m was made by
// NewMessage: every subscriber's queue finds its per-channel state by it.
// The event is read-only once made; a message made otherwise is hashed
// on each call.
func (m *Message) Key() uint64 {
	if m.key != 0 {
		return m.key
	}
	return KeyOf(m.Event.Channel)
}

var keySeed = maphash.MakeSeed()

// KeyOf hashes a channel, for per-channel state looked up once per
// delivery: a map keyed by it hashes 8 bytes instead of the symbol. Two
// channels can share a key (rarely: 64 bits, a seed per process), so a
// user of keys must also compare the channels.
func KeyOf(c event.Channel) uint64 {
	var h maphash.Hash
	h.SetSeed(keySeed)
	_ = h.WriteByte(byte(c.Kind))
	_, _ = h.WriteString(c.Symbol)
	return h.Sum64()
}

// Subscriber receives messages. Deliver queues one; it is called with the
// hub's read lock held, possibly from several goroutines at once (one per
// feed shard), and must return at once. It reports whether the subscriber
// wants a Wake once the batch being published is all queued: a subscriber
// woken per batch rather than per event writes one frame per batch.
type Subscriber interface {
	Deliver(m *Message) (wake bool)
	Wake()
}

// subscription is what the hub knows of one subscriber.
type subscription struct {
	channels Set                  // concrete channels
	kinds    [event.NumKinds]bool // KIND:* subscriptions
}

// Hub routes messages to subscribers. It is safe for concurrent use.
//
// An event is delivered once per subscriber even when several of its
// subscriptions match (trade:* and trade:AAPL): a subscriber with KIND:* is
// kept out of the lists of that kind's concrete channels, so Publish never
// needs to check for duplicates.
type Hub struct {
	// Reads is the replica's budget of history reads per user.
	Reads *Budget

	mu    sync.RWMutex
	subs  map[Subscriber]*subscription
	byCh  map[event.Channel][]Subscriber
	byKnd [event.NumKinds][]Subscriber
}

// The default budget of history reads per user (one read: one channel's
// latest entry, or one page of its replay): a KIND:* snapshot of 20 000
// symbols at once, then 5 000 reads a second.
const (
	ReadsPerSecond = 5000
	ReadsBurst     = 20000
)

// New returns an empty hub.
func New() *Hub {
	return &Hub{
		Reads: NewBudget(ReadsPerSecond, ReadsBurst),
		subs:  make(map[Subscriber]*subscription), byCh: make(map[event.Channel][]Subscriber),
	}
}

// Subscribe adds channels (concrete or KIND:*) to s's subscriptions.
// Channels s already has are ignored.
func (h *Hub) Subscribe(s Subscriber, chs []event.Channel) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sub := h.subs[s]
	if sub == nil {
		sub = &subscription{}
		h.subs[s] = sub
	}
	for _, c := range chs {
		if c.IsWildcard() {
			if sub.kinds[c.Kind] {
				continue
			}
			sub.kinds[c.Kind] = true
			h.byKnd[c.Kind] = append(h.byKnd[c.Kind], s)
			for cc := range sub.channels.All() { // now covered by the wildcard
				if cc.Kind == c.Kind {
					h.removeFromChannel(cc, s)
				}
			}
			continue
		}
		if !sub.channels.Add(c) {
			continue
		}
		if !sub.kinds[c.Kind] {
			h.byCh[c] = append(h.byCh[c], s)
		}
	}
}

// Unsubscribe removes channels from s's subscriptions; channels it does not
// have are ignored.
func (h *Hub) Unsubscribe(s Subscriber, chs []event.Channel) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sub := h.subs[s]
	if sub == nil {
		return
	}
	for _, c := range chs {
		if c.IsWildcard() {
			if !sub.kinds[c.Kind] {
				continue
			}
			sub.kinds[c.Kind] = false
			h.byKnd[c.Kind] = remove(h.byKnd[c.Kind], s)
			for cc := range sub.channels.All() { // no longer covered
				if cc.Kind == c.Kind {
					h.byCh[cc] = append(h.byCh[cc], s)
				}
			}
			continue
		}
		if !sub.channels.Delete(c) {
			continue
		}
		if !sub.kinds[c.Kind] {
			h.removeFromChannel(c, s)
		}
	}
	if sub.channels.Len() == 0 && sub.kinds == [event.NumKinds]bool{} {
		delete(h.subs, s)
	}
}

// Remove drops every subscription of s.
func (h *Hub) Remove(s Subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sub := h.subs[s]
	if sub == nil {
		return
	}
	for k, on := range sub.kinds {
		if on {
			h.byKnd[k] = remove(h.byKnd[k], s)
		}
	}
	for c := range sub.channels.All() {
		if !sub.kinds[c.Kind] {
			h.removeFromChannel(c, s)
		}
	}
	delete(h.subs, s)
}

// wakeOnStack is how many subscribers Publish lists for their wake-up on
// its stack; a batch that wakes more grows the list on the heap.
const wakeOnStack = 128

// Publish hands each message to every subscriber of its channel or kind,
// then wakes each subscriber that asked for it, once.
func (h *Hub) Publish(msgs []*Message) {
	var onStack [wakeOnStack]Subscriber // a batch allocated its list as it grew: 8 times for 100 subscribers
	wake := onStack[:0]
	h.mu.RLock()
	for _, m := range msgs {
		for _, s := range h.byCh[m.Event.Channel] {
			if s.Deliver(m) {
				wake = append(wake, s)
			}
		}
		for _, s := range h.byKnd[m.Event.Channel.Kind] {
			if s.Deliver(m) {
				wake = append(wake, s)
			}
		}
	}
	h.mu.RUnlock()
	for _, s := range wake {
		s.Wake()
	}
}

// Stats returns the number of subscribers and of subscriptions (concrete
// channels plus wildcards) the hub holds.
func (h *Hub) Stats() (subscribers, subscriptions int) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, sub := range h.subs {
		subscriptions += sub.channels.Len()
		for _, on := range sub.kinds {
			if on {
				subscriptions++
			}
		}
	}
	return len(h.subs), subscriptions
}

func (h *Hub) removeFromChannel(c event.Channel, s Subscriber) {
	list := remove(h.byCh[c], s)
	if len(list) == 0 {
		delete(h.byCh, c)
		return
	}
	h.byCh[c] = list
}

// remove deletes s from list by swapping in the last element; order does
// not matter to fan-out.
func remove(list []Subscriber, s Subscriber) []Subscriber {
	for i, x := range list {
		if x == s {
			last := len(list) - 1
			list[i] = list[last]
			list[last] = nil
			return list[:last]
		}
	}
	return list
}
