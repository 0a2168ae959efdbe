package wsconn

import (
	"time"

	"testing"

	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/shared/event"
)

// A resume whose replay is longer than the queue's limit is read in pages
// only while the queue is below its high-water mark: a client that does
// not drain stops the reading of history. Replayed events count toward the
// limits: live events on top of an undrained replay overflow (4008).
func TestQueueReplayIsFlowControlled(t *testing.T) {
	q := newQueue(8, 1<<20) // high water 4
	ch, _ := event.ParseChannel("trade:AAPL")
	other, _ := event.ParseChannel("trade:MSFT")
	q.hold([]event.Channel{ch})
	for i := uint64(100); i < 103; i++ { // live, during the replay
		q.deliver(msg(t, "trade:AAPL", i))
	}
	r := &recovery{hold: []event.Channel{ch}, replay: []cursor{{ch: ch, after: event.ID{Ms: 9}}}}
	q.begin([][]byte{[]byte(`{"type":"subscribed"}`)}, map[event.Channel]event.ID{ch: {Ms: 9}}, r, page{}, nil)
	next := uint64(10)
	readPage := func() {
		t.Helper()
		p, ok := q.room()
		if !ok {
			t.Fatal("no room for a page in a drained queue")
		}
		var msgs []*hub.Message
		for range p.n {
			msgs = append(msgs, msg(t, "trade:AAPL", next))
			next++
		}
		q.replayPage(p, msgs, event.ID{Ms: next - 1}, next >= 20)
	}
	readPage()
	if _, ok := q.room(); ok {
		t.Fatal("room for another page above the high-water mark: history would be read for a client that does not drain")
	}
	items, code, _, _ := q.take(time.Now)
	if code != 0 || len(items) != 1+4 {
		t.Fatalf("got %v, close %d; want subscribed and a page of 4", ids(items), code)
	}
	for next < 20 {
		readPage()
		mustTake(q)
	}
	// The recovery ended: the held live events follow.
	if _, ok := q.room(); ok {
		t.Fatal("a page after the replay ended")
	}
	if got := ids(mustTake(q)); len(got) != 3 || got[0] != "trade:AAPL@100-0" {
		t.Fatalf("after the replay got %v, want the 3 held live events", got)
	}
	// Replayed events count toward the limits.
	r = &recovery{hold: []event.Channel{other}, replay: []cursor{{ch: other}}}
	q.hold(r.hold)
	q.begin(nil, nil, r, page{}, nil)
	p, _ := q.room()
	q.replayPage(p, []*hub.Message{msg(t, "trade:MSFT", 1), msg(t, "trade:MSFT", 2), msg(t, "trade:MSFT", 3), msg(t, "trade:MSFT", 4)}, event.ID{Ms: 4}, true)
	for i := uint64(200); i < 205; i++ {
		q.deliver(msg(t, "trade:AAPL", i))
	}
	if _, code, _, _ := q.take(time.Now); code != CloseSlowConsumer {
		t.Fatalf("close code %d with 4 replayed and 5 live unread events in a queue of 8, want %d", code, CloseSlowConsumer)
	}
}

// Live events held back during a long recovery are bounded too: beyond the
// queue's limit the connection closes 4008 instead of losing trades.
func TestQueueHeldOverflowCloses4008(t *testing.T) {
	q := newQueue(8, 1<<20)
	ch, _ := event.ParseChannel("trade:AAPL")
	q.hold([]event.Channel{ch})
	q.begin(nil, nil, &recovery{hold: []event.Channel{ch}, replay: []cursor{{ch: ch}}}, page{}, nil)
	over := false
	for i := uint64(1); i <= 9; i++ {
		_, o := q.deliver(msg(t, "trade:AAPL", i))
		over = over || o
	}
	if _, code, _, _ := q.take(time.Now); code != CloseSlowConsumer || !over {
		t.Fatalf("close code %d (overflow reported %v) after 9 held events in a queue of 8, want %d", code, over, CloseSlowConsumer)
	}
}
