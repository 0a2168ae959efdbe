package monitor

import (
	"time"

	"github.com/tickwire/tickwire/publisher/internal/hub"
)

// Publisher is where a feed reader hands what it reads (feed.Publisher).
type Publisher interface {
	Publish(msgs []*hub.Message)
}

// Tap passes a shard's batches on to the next stage (the hub) and records
// that they got through. It adds two atomic stores per batch.
type Tap struct {
	next Publisher
	s    *shard
}

// Tap returns the tap of shard in front of next.
func (m *Monitor) Tap(shard int, next Publisher) *Tap {
	return &Tap{next: next, s: m.shards[shard]}
}

// Publish records the newest event time read, hands msgs on, and counts
// the batch as progress once next has taken it: a next stage that blocks
// shows as no progress.
func (t *Tap) Publish(msgs []*hub.Message) {
	var newest int64
	for _, m := range msgs {
		newest = max(newest, m.Event.TS)
	}
	if newest > t.s.newestTS.Load() {
		t.s.newestTS.Store(newest) // only the shard's reader stores
	}
	t.next.Publish(msgs)
	t.s.progress.Add(1)
}

// age is the shard's feed age now: now minus the newest event time read,
// 0 until one is read.
func (s *shard) age() float64 {
	ts := s.newestTS.Load()
	if ts <= 0 {
		return 0
	}
	return max(0, time.Since(time.UnixMilli(ts)).Seconds())
}
