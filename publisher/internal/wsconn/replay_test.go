package wsconn

import (
	"testing"

	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/shared/event"
)

// A resume whose replay is longer than the queue's limit, while live events
// of the channel were held back during the history read: the replay goes
// out (it is bounded by the history, not by the queue), then the held live
// events; the client is not closed as a slow consumer before it could read
// anything, and the release does not panic.
func TestQueueReplayLongerThanLimit(t *testing.T) {
	q := newQueue(8, 1<<20)
	ch, _ := event.ParseChannel("trade:AAPL")
	q.hold([]event.Channel{ch})
	for i := uint64(100); i < 103; i++ { // live, during the history read
		q.deliver(msg(t, "trade:AAPL", i))
	}
	var replay []*hub.Message
	for i := uint64(10); i < 20; i++ { // more than the 8 the queue holds
		replay = append(replay, msg(t, "trade:AAPL", i))
	}
	q.release([]event.Channel{ch}, [][]byte{[]byte(`{"type":"subscribed"}`)}, map[event.Channel]event.ID{ch: {Ms: 9}}, nil, replay)
	items, code, _ := q.take()
	if code != 0 || len(items) != 1+10+3 {
		t.Fatalf("got %v, close code %d; want subscribed, 10 replayed and 3 live events, no close", ids(items), code)
	}
	// The limits still apply to live events the client does not read.
	for i := uint64(200); i < 220; i++ {
		q.deliver(msg(t, "trade:AAPL", i))
	}
	if _, code, _ := q.take(); code != CloseSlowConsumer {
		t.Fatalf("close code %d after 20 unread live events, want %d", code, CloseSlowConsumer)
	}
}
