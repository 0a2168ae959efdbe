package streams

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/poll"
)

// TestReaderLeavesNothingPending checks that the reader reads with NOACK:
// no entry is ever pending in its group, not even while its batch is being
// handled (acknowledging after Handle left it pending then), and that the
// group's lag, which status reporting and stall detection read, still falls
// to 0 once the reader has caught up.
func TestReaderLeavesNothingPending(t *testing.T) {
	f := newFixture(t)
	l := mustLayout(t, 1)
	w := NewWriter(f.c, l, WriterConfig{FeedLen: 1000, HistoryLen: 100})
	group := GroupName("pub-1")
	pendingSeen := make(chan int64, 100)
	s := &sink{}
	handle := func(evs []event.Event) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if p, err := f.c.XPending(ctx, l.Feed(0), group).Result(); err == nil {
			pendingSeen <- p.Count
		}
		s.handle(evs)
	}
	r := NewGroupReader(f.srv.Client(), GroupReaderConfig{
		Layout: l, Shard: 0, Group: group, Consumer: "pub-1", Handle: handle,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	poll.Until(t, 10*time.Second, r.Ready)

	writeTrades(t, w, 0, 50)
	s.waitFor(t, tsRange(0, 50))
	for len(pendingSeen) > 0 {
		if n := <-pendingSeen; n != 0 {
			t.Fatalf("%d entries pending while Handle ran, want 0 (NOACK)", n)
		}
	}
	poll.Until(t, 10*time.Second, func() error {
		groups, err := f.c.XInfoGroups(t.Context(), l.Feed(0)).Result()
		if err != nil {
			return err
		}
		if len(groups) != 1 || groups[0].Pending != 0 || groups[0].Lag != 0 || groups[0].EntriesRead != 50 {
			return fmt.Errorf("groups %+v, want one with 50 entries read, lag 0, nothing pending", groups)
		}
		return nil
	})
}
