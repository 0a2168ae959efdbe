package wsconn

import (
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/shared/event"
)

func msg(t *testing.T, ch string, ms uint64) *hub.Message {
	t.Helper()
	c, err := event.ParseChannel(ch)
	if err != nil {
		t.Fatal(err)
	}
	return hub.NewMessage(event.Event{Channel: c, ID: event.ID{Ms: ms}, TS: int64(ms), Data: json.RawMessage(`{"p":1}`)})
}

func ids(items []item) []string {
	var out []string
	for _, it := range items {
		if it.msg == nil {
			out = append(out, "frame:"+string(it.whole.frame))
			continue
		}
		out = append(out, it.msg.Event.Channel.String()+"@"+it.msg.Event.ID.String())
	}
	return out
}

func TestQueueDropsOldAndRepeated(t *testing.T) {
	q := newQueue(100, 1<<20)
	q.deliver(msg(t, "trade:A", 2))
	q.deliver(msg(t, "trade:A", 2)) // twice
	q.deliver(msg(t, "trade:A", 1)) // older
	q.deliver(msg(t, "trade:B", 1)) // other channel: independent
	items, code, _, _ := q.take(time.Now)
	if got := ids(items); len(got) != 2 || code != 0 {
		t.Fatalf("got %v code %d, want two events", got, code)
	}
}

func TestQueueConflatesQuotesAboveHighWater(t *testing.T) {
	q := newQueue(8, 1<<20) // high water 4
	for i := uint64(1); i <= 4; i++ {
		q.deliver(msg(t, "trade:A", i))
	}
	for i := uint64(1); i <= 20; i++ {
		q.deliver(msg(t, "quote:A", i))
		q.deliver(msg(t, "bar:A", i))
	}
	items, code, _, _ := q.take(time.Now)
	if code != 0 {
		t.Fatalf("closed with %d; quotes and bars should conflate", code)
	}
	got := ids(items)
	want := []string{"trade:A@1-0", "trade:A@2-0", "trade:A@3-0", "trade:A@4-0", "quote:A@20-0", "bar:A@20-0"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestQueueOverflowOnTradesCloses4008(t *testing.T) {
	q := newQueue(8, 1<<20)
	aborted := 0
	for i := uint64(1); i <= 9; i++ {
		if _, over := q.deliver(msg(t, "trade:A", i)); over {
			aborted++
		}
	}
	items, code, _, _ := q.take(time.Now)
	if code != CloseSlowConsumer || len(items) != 0 || aborted != 1 {
		t.Fatalf("code %d items %d aborted %d: want 4008, emptied, aborted once", code, len(items), aborted)
	}
	q.deliver(msg(t, "trade:A", 10))
	if items, _, _, _ := q.take(time.Now); len(items) != 0 {
		t.Fatal("queued after close")
	}
}

func TestQueueByteLimit(t *testing.T) {
	m := msg(t, "trade:A", 1)
	q := newQueue(100, 3*len(m.Wire))
	for i := uint64(1); i <= 4; i++ {
		q.deliver(msg(t, "trade:A", i))
	}
	if _, code, _, _ := q.take(time.Now); code != CloseSlowConsumer {
		t.Fatalf("code %d, want 4008 on the byte limit", code)
	}
}

func TestQueueHoldAndRelease(t *testing.T) {
	q := newQueue(100, 1<<20)
	a := event.Channel{Kind: event.KindTrade, Symbol: "A"}
	wild := event.Channel{Kind: event.KindQuote, Symbol: event.Wildcard}
	x := event.Channel{Kind: event.KindQuote, Symbol: "X"}
	y := event.Channel{Kind: event.KindQuote, Symbol: "Y"}
	q.hold([]event.Channel{a, wild})
	q.deliver(msg(t, "trade:A", 5)) // held
	q.deliver(msg(t, "trade:A", 7)) // held
	q.deliver(msg(t, "quote:X", 3)) // held by the wildcard
	q.deliver(msg(t, "trade:B", 1)) // live
	if got := ids(mustTake(q)); len(got) != 1 || got[0] != "trade:B@1-0" {
		t.Fatalf("before release got %v, want only trade:B", got)
	}
	r := &recovery{hold: []event.Channel{a, wild}, snap: []event.Channel{x, y}, replay: []cursor{{ch: a, after: event.ID{Ms: 3}}}}
	q.begin([][]byte{[]byte("S")}, map[event.Channel]event.ID{a: {Ms: 3}}, r, page{}, nil)
	snap := []*hub.Message{msg(t, "quote:X", 2), msg(t, "quote:Y", 9)}
	p, ok := q.room()
	if !ok || len(p.snap) != 2 {
		t.Fatalf("first page %+v %v, want the snapshot of 2 channels", p, ok)
	}
	q.snapshotPage(p, snap)
	p, ok = q.room()
	if !ok || p.replay.ch != a {
		t.Fatalf("second page %+v %v, want the replay of trade:A", p, ok)
	}
	q.replayPage(p, []*hub.Message{msg(t, "trade:A", 4), msg(t, "trade:A", 5)}, event.ID{Ms: 5}, true)
	if _, ok := q.room(); ok {
		t.Fatal("a page after the recovery ended")
	}
	got := ids(mustTake(q))
	want := []string{
		"frame:S",
		`frame:{"type":"snapshot","events":[` + string(snap[0].Wire) + "," + string(snap[1].Wire) + "]}",
		"trade:A@4-0", "trade:A@5-0", // replay
		"trade:A@7-0", "quote:X@3-0", // held, newer than replay and snapshot; 5 dropped as repeated
	}
	if len(got) != len(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("item %d: got %v\nwant %v", i, got[i], want[i])
		}
	}
}

func mustTake(q *queue) []item {
	items, _, _, _ := q.take(time.Now)
	return items
}

// BenchmarkDeliver measures the per-subscriber cost of a live event: queue
// it (order check, limits) and take it out for writing, as the hub and the
// writer do.
func BenchmarkDeliver(b *testing.B) {
	q := newQueue(8192, 4<<20)
	msgs := make([]*hub.Message, 64)
	for i := range msgs {
		c := event.Channel{Kind: event.KindTrade, Symbol: "AAPL"}
		msgs[i] = hub.NewMessage(event.Event{Channel: c, Data: json.RawMessage(`{"price":1,"size":1}`)})
	}
	b.ReportAllocs()
	var id uint64
	for i := 0; b.Loop(); i++ {
		m := msgs[i%len(msgs)]
		id++
		m.Event.ID = event.ID{Ms: id}
		q.deliver(m)
		if i%64 == 63 {
			items, _, _, _ := q.take(time.Now)
			q.recycle(items)
		}
	}
}

// Two channels whose keys are the same (hub.KeyOf: rare, but 64 bits do
// not rule it out) keep apart their last ids, so the order of one never
// drops the events of the other.
func TestQueueLastIDKeyClash(t *testing.T) {
	q := newQueue(100, 1<<20)
	a := event.Channel{Kind: event.KindTrade, Symbol: "A"}
	b := event.Channel{Kind: event.KindTrade, Symbol: "B"}
	const key = 7 // both
	q.advance(q.lastOf(a, key), a, key, event.ID{Ms: 5})
	q.advance(q.lastOf(b, key), b, key, event.ID{Ms: 3})
	q.advance(q.lastOf(b, key), b, key, event.ID{Ms: 9})
	if got := q.lastOf(a, key); got == nil || *got != (event.ID{Ms: 5}) {
		t.Fatalf("last of A: %v, want 5-0", got)
	}
	if got := q.lastOf(b, key); got == nil || *got != (event.ID{Ms: 9}) {
		t.Fatalf("last of B: %v, want 9-0", got)
	}
	if got := q.lastOf(event.Channel{Kind: event.KindTrade, Symbol: "C"}, key); got != nil {
		t.Fatalf("last of C, never queued: %v, want none", *got)
	}
	if got := q.lastOf(a, hub.KeyOf(a)); got != nil && hub.KeyOf(a) != key {
		t.Fatalf("last of A under its own key: %v, want none (A was recorded under %d)", *got, key)
	}
}

// BenchmarkDeliverFanout is W2's fan-out as the hub does it: each event of
// a batch (ten channels, one event each) to 1000 queues in turn, then
// each queue's writer takes the batch. Unlike BenchmarkDeliver's one hot
// queue, each delivery finds its queue out of the cache, as the hub does
// at 1000 subscribers: the cache lines a delivery touches are its cost.
// An op is one batch (10 000 deliveries); ns/delivery is reported.
func BenchmarkDeliverFanout(b *testing.B) {
	const subscribers, channels = 1000, 10
	queues := make([]*queue, subscribers)
	pad := make([][]byte, subscribers) // a connection's other memory between two queues
	for i := range queues {
		queues[i] = newQueue(8192, 4<<20)
		pad[i] = make([]byte, 2048)
	}
	msgs := make([]*hub.Message, channels)
	for i := range msgs {
		c := event.Channel{Kind: event.KindTrade, Symbol: fmt.Sprintf("SYM%d", i)}
		msgs[i] = hub.NewMessage(event.Event{Channel: c, Data: json.RawMessage(`{"price":1,"size":1}`)})
	}
	b.ReportAllocs()
	var id uint64
	for b.Loop() {
		for _, m := range msgs {
			id++
			m.Event.ID = event.ID{Ms: id}
			for _, q := range queues {
				q.deliver(m)
			}
		}
		for _, q := range queues {
			q.wakeUp()
			items, _, _, _ := q.take(time.Now)
			q.recycle(items)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*channels*subscribers), "ns/delivery")
	runtime.KeepAlive(pad)
}

// A plain subscribe holds its new channels until its subscribed frame is
// queued: a live event the hub delivers in between follows the frame (the
// e2e failover test once saw it first). A failed subscribe drops what was
// held: the client is not subscribed to those channels.
func TestQueueLiveEventFollowsSubscribed(t *testing.T) {
	q := newQueue(100, 1<<20)
	a := event.Channel{Kind: event.KindTrade, Symbol: "A"}
	b := event.Channel{Kind: event.KindTrade, Symbol: "B"}
	q.hold([]event.Channel{a})
	q.deliver(msg(t, "trade:A", 5)) // between Hub.Subscribe and the reply
	q.begin([][]byte{[]byte("S")}, nil, &recovery{}, page{}, nil)
	q.admit([]event.Channel{a})
	q.deliver(msg(t, "trade:A", 6))
	if got, want := ids(mustTake(q)), []string{"frame:S", "trade:A@5-0", "trade:A@6-0"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}

	q.hold([]event.Channel{b})
	q.deliver(msg(t, "trade:B", 1))
	q.abandon([]event.Channel{b})
	q.frame([]byte("E"))
	if got, want := ids(mustTake(q)), []string{"frame:E"}; !slices.Equal(got, want) {
		t.Errorf("after a failed subscribe got %v, want only the error frame %v", got, want)
	}
}

// An idle connection's queue keeps nothing of what it held: no map of
// recovering channels after a subscribe's hold ends, no slice of held
// events, no empty slice of items once its writer has gone (each was kept
// before, a few hundred bytes per connection).
func TestQueueIdleKeepsNothing(t *testing.T) {
	q := newQueue(100, 1<<20)
	a := event.Channel{Kind: event.KindTrade, Symbol: "A"}
	q.hold([]event.Channel{a})
	q.deliver(msg(t, "trade:A", 1)) // held
	q.frame([]byte("subscribed"))
	q.admit([]event.Channel{a})
	if q.recovering != nil || q.held != nil {
		t.Fatalf("after the hold: recovering %v, held %v; want both nil", q.recovering, q.held)
	}
	// The writer: take, write, recycle, take nothing, release, retire.
	items, _, _, _ := q.take(time.Now)
	if len(items) != 2 {
		t.Fatalf("took %d items, want the frame and the event", len(items))
	}
	q.recycle(items)
	if items, _, _, _ := q.take(time.Now); len(items) != 0 {
		t.Fatalf("took %d items, want none", len(items))
	}
	q.release()
	if q.items != nil || q.spare != nil {
		t.Fatalf("idle queue keeps items (cap %d) or spare (cap %d)", cap(q.items), cap(q.spare))
	}
}
