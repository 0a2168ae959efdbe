package streams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/event"
)

// Timing of a GroupReader.
const (
	// BlockTime bounds one XREADGROUP; shutdown waits at most this long for
	// a blocked read, unless the reader's client is closed first.
	BlockTime   = 2 * time.Second
	readCount   = 1000
	backoffMin  = 50 * time.Millisecond
	backoffMax  = 500 * time.Millisecond
	callTimeout = 3 * time.Second
)

// GroupReaderConfig says what a GroupReader reads and where it hands it.
type GroupReaderConfig struct {
	Layout   Layout
	Shard    int
	Group    string // GroupName(replica)
	Consumer string
	// Handle receives each batch read, in stream order. It runs on Run's goroutine and must not block for long.
	Handle func(events []event.Event)
	// Bad receives the entries that do not decode; may be nil.
	Bad func(id string, err error)
	// ReadFailed and GroupLost, if set, are called on each failed read and
	// on each group re-created after Redis lost it (for metrics).
	ReadFailed, GroupLost func()
	Log                   *slog.Logger
}

// GroupReader reads one shard's feed with a consumer group: XREADGROUP …
// NOACK BLOCK, and hands each batch to Handle. NOACK because a replica
// never reads its pending entries again (its group is created afresh on
// start, and a read with ">" skips them): acknowledging cost Redis a
// pending-list insert and delete per entry and a round trip per batch. The
// group's lag (XINFO GROUPS) still tracks the reader; its pending count
// stays 0. It creates its group
// afresh at the feed's tail when it starts, re-creates it when Redis lost it
// (NOGROUP), and retries failed reads with backoff. It owns its Redis client:
// a blocked read holds a connection, and must not starve the process's other
// commands. Run is called once; Ready and Close may be called from any
// goroutine.
type GroupReader struct {
	client redis.UniversalClient
	cfg    GroupReaderConfig
	stream string
	log    *slog.Logger

	ready atomic.Bool
	// Owned by Run: the last id dispatched (or the group's start), and the
	// feed generation the group was created on.
	lastID, gen string
}

// NewGroupReader returns a reader of cfg's shard. It takes ownership of
// client and closes it when Run returns.
func NewGroupReader(client redis.UniversalClient, cfg GroupReaderConfig) *GroupReader {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &GroupReader{client: client, cfg: cfg, stream: cfg.Layout.Feed(cfg.Shard), log: cfg.Log}
}

// Ready returns nil when the reader's group exists and its last read
// succeeded.
func (r *GroupReader) Ready() error {
	if !r.ready.Load() {
		return fmt.Errorf("feed %s: not reading", r.stream)
	}
	return nil
}

// Close closes the reader's client; for a reader whose Run never ran.
// Closing twice is harmless.
func (r *GroupReader) Close() { _ = r.client.Close() }

// Run creates the group afresh after the feed's last entry (destroying any
// stale one of the same name), then reads until ctx ends. Redis errors are
// retried with backoff; Run returns nil at ctx end.
func (r *GroupReader) Run(ctx context.Context) error {
	// go-redis does not interrupt a blocked read when ctx ends; closing the
	// client does, so shutdown does not wait out a whole BlockTime.
	stop := context.AfterFunc(ctx, func() { _ = r.client.Close() })
	defer func() {
		if stop() {
			_ = r.client.Close()
		}
	}()
	if err := r.setup(ctx); err != nil {
		return nil // ctx ended before Redis answered
	}
	b := backoff{}
	outage := false
	for ctx.Err() == nil {
		err := r.readOnce(ctx)
		switch {
		case err == nil:
			if outage {
				r.log.Info("feed reading again", "stream", r.stream)
				outage = false
			}
			b.reset()
			continue
		case ctx.Err() != nil:
		case IsNoGroup(err) || IsUnblocked(err):
			if r.recreate(ctx) == nil {
				continue
			}
		default:
			r.ready.Store(false)
			if r.cfg.ReadFailed != nil {
				r.cfg.ReadFailed()
			}
			if !outage {
				r.log.Warn("feed read failed; retrying", "stream", r.stream, "err", err)
				outage = true
			}
		}
		if !b.sleep(ctx) {
			break
		}
	}
	r.ready.Store(false)
	return nil
}

// setup creates the group, retrying until Redis answers or ctx ends.
func (r *GroupReader) setup(ctx context.Context) error {
	b := backoff{}
	for {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		start, err := RecreateGroupAtTail(cctx, r.client, r.cfg.Layout, r.cfg.Shard, r.cfg.Group)
		cancel()
		if err == nil {
			r.lastID, r.gen = start.After, start.Generation
			r.ready.Store(true)
			r.log.Info("consumer group created", "stream", r.stream, "group", r.cfg.Group, "after", start.After)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.log.Warn("create consumer group failed; retrying", "stream", r.stream, "err", err)
		if !b.sleep(ctx) {
			return ctx.Err()
		}
	}
}

// recreate answers NOGROUP: Redis lost the group. If the feed is the one
// the group was on (an operator destroyed the group), the group is made
// again after the last id this replica dispatched, not at "$": entries
// written since must not be lost. If Redis lost the feed too (restarted
// empty, FLUSHALL), the group starts at the new feed's beginning, whatever
// its ids: they may well be below the last id dispatched from the old one.
func (r *GroupReader) recreate(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	start, err := RecreateLostGroup(cctx, r.client, r.cfg.Layout, r.cfg.Shard, r.cfg.Group, r.lastID, r.gen)
	if err != nil {
		r.log.Warn("re-create consumer group failed", "stream", r.stream, "err", err)
		return err
	}
	newFeed := start.Generation != r.gen
	r.lastID, r.gen = start.After, start.Generation
	if r.cfg.GroupLost != nil {
		r.cfg.GroupLost()
	}
	r.log.Warn("consumer group was lost; re-created", "stream", r.stream, "group", r.cfg.Group,
		"after", start.After, "new_feed", newFeed)
	return nil
}

func (r *GroupReader) readOnce(ctx context.Context) error {
	res, err := r.client.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group:    r.cfg.Group,
		Consumer: r.cfg.Consumer,
		Streams:  []string{r.stream, ">"},
		Count:    readCount,
		Block:    BlockTime,
		NoAck:    true,
	}).Result()
	if errors.Is(err, redis.Nil) {
		r.ready.Store(true) // the block ran out: nothing new, all is well
		return nil
	}
	if err != nil {
		return fmt.Errorf("xreadgroup %s: %w", r.stream, err)
	}
	r.ready.Store(true)
	for _, s := range res {
		if len(s.Messages) > 0 {
			r.dispatch(s.Messages)
		}
	}
	return nil
}

// dispatch hands one batch to Handle.
func (r *GroupReader) dispatch(msgs []redis.XMessage) {
	r.cfg.Handle(Decode(msgs, r.cfg.Bad))
	r.lastID = msgs[len(msgs)-1].ID
}

// backoff doubles a wait from backoffMin to backoffMax.
type backoff struct{ d time.Duration }

func (b *backoff) reset() { b.d = 0 }

// sleep waits the next interval; false if ctx ended first.
func (b *backoff) sleep(ctx context.Context) bool {
	switch {
	case b.d == 0:
		b.d = backoffMin
	case b.d < backoffMax:
		b.d = min(2*b.d, backoffMax)
	}
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
