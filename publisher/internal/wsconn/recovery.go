package wsconn

import (
	"context"
	"slices"
	"time"

	"github.com/tickwire/tickwire/shared/event"
)

// Page sizes of history reads.
const (
	// minPage: a page smaller than this waits for the writer to drain more.
	minPage = 64
	// snapshotPage bounds the channels of one snapshot read (and frame).
	snapshotPage = 256
	// replayPage bounds the events of one replay read.
	replayPage = 500
)

// recovery is the history part of one subscribe: the snapshot of its
// channels without since, then the replay of those with since, read page
// by page as the client drains its queue. It is owned by the queue and
// changed only under its lock.
type recovery struct {
	sub    string          // the user, whose budget of reads pays
	hold   []event.Channel // held back while this runs (concrete or KIND:*)
	snap   []event.Channel // concrete channels still to snapshot
	replay []cursor        // channels still to replay, first one first
	// An event stream's resume (sse.go): the shard feeds still to read
	// after a position, and which of their channels are wanted (match
	// must only look at its argument: it runs under the queue's lock).
	feeds []feedCursor
	match func(event.Channel) bool
}

// feedCursor is where the replay of a shard's feed goes on from.
type feedCursor struct {
	shard int
	after event.ID
}

// cursor is where the replay of a channel goes on from.
type cursor struct {
	ch    event.Channel
	after event.ID
}

// page is one history read of a recovery: either snapshot channels or the
// next events of one replayed channel.
type page struct {
	r      *recovery
	snap   []event.Channel // a copy: the reader may drop channels meanwhile
	replay cursor
	feed   *feedCursor // a page of a shard's feed
	n      int         // events wanted (replay)
}

func (r *recovery) done() bool { return len(r.snap) == 0 && len(r.replay) == 0 && len(r.feeds) == 0 }

// next returns r's next page of at most n events.
func (r *recovery) next(n int) page {
	if len(r.snap) > 0 {
		k := min(n, snapshotPage, len(r.snap))
		return page{r: r, snap: append([]event.Channel(nil), r.snap[:k]...)}
	}
	if len(r.replay) > 0 {
		return page{r: r, replay: r.replay[0], n: min(n, replayPage)}
	}
	f := r.feeds[0]
	return page{r: r, feed: &f, n: min(n, replayPage)}
}

// drop removes the channels gone reports from what r reads.
func (r *recovery) drop(gone func(event.Channel) bool) {
	r.snap = slices.DeleteFunc(r.snap, gone)
	r.replay = slices.DeleteFunc(r.replay, func(c cursor) bool { return gone(c.ch) })
}

// cost is what a page costs the user's budget of history reads: one per
// Redis read of a channel.
func (p page) cost() int { return max(len(p.snap), 1) }

// fill reads the next history page of the connection's oldest recovery if
// its queue has room for it, within the user's budget of reads. It returns
// how long to wait before the budget allows the page (0: go on). Called by
// the writer only.
func (c *Conn) fill() time.Duration {
	p, ok := c.q.room()
	if !ok {
		return 0
	}
	now := time.Now()
	if !c.prepaid {
		c.prepaid = true
		if d := c.d.Hub.Reads.Reserve(p.r.sub, p.cost()); d > 0 {
			c.notBefore = now.Add(d)
		}
	}
	if wait := c.notBefore.Sub(now); wait > 0 {
		return wait
	}
	c.prepaid = false
	ctx, cancel := context.WithTimeout(context.Background(), historyTimeout)
	defer cancel()
	if err := c.readPage(ctx, p); err != nil {
		c.logger().Warn("history read failed during a recovery", "err", err)
		c.q.close(CloseGoingAway, "history unavailable: reconnect and resume with since")
	}
	return 0
}

// readPage reads p and queues what it found.
func (c *Conn) readPage(ctx context.Context, p page) error {
	if p.feed != nil {
		msgs, next, done, err := c.d.History.FeedAfter(ctx, p.feed.shard, p.feed.after, p.n)
		if err != nil {
			return err
		}
		c.q.feedPage(p, msgs, next, done)
		return nil
	}
	if len(p.snap) > 0 {
		msgs, err := c.d.History.Latest(ctx, p.snap)
		if err != nil {
			return err
		}
		c.q.snapshotPage(p, msgs)
		return nil
	}
	msgs, next, done, err := c.d.History.After(ctx, p.replay.ch, p.replay.after, p.n)
	if err != nil {
		return err
	}
	c.q.replayPage(p, msgs, next, done)
	return nil
}
