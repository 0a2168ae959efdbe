package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/shared/streams"
)

// Timing of a reader.
const (
	// BlockTime bounds one XREADGROUP; shutdown waits at most this long for
	// a blocked read, unless the reader's client is closed first.
	BlockTime   = 2 * time.Second
	readCount   = 1000
	backoffMin  = 50 * time.Millisecond
	backoffMax  = 500 * time.Millisecond
	callTimeout = 3 * time.Second
)

// Publisher is where a reader hands what it reads; *hub.Hub implements it.
type Publisher interface {
	Publish(msgs []*hub.Message)
}

// Reader reads one shard's feed with the replica's consumer group and
// publishes each batch to the hub before acknowledging it. It owns its Redis
// client: a blocked read holds a connection, and must not starve the
// replica's other commands.
type Reader struct {
	client   redis.UniversalClient
	stream   string
	group    string
	consumer string
	pub      Publisher
	log      *slog.Logger
	read     prometheus.Counter
	m        *Metrics
	poison   *poison

	ready  atomic.Bool
	lastID string // last id dispatched (or the group's start); owned by Run
}

// NewReader returns a reader of shard's feed for replica. It takes
// ownership of client and closes it when Run returns.
func NewReader(client redis.UniversalClient, layout streams.Layout, shard int, replica string, pub Publisher, log *slog.Logger, m *Metrics) *Reader {
	log = log.With("component", "reader", "shard", shard)
	return &Reader{
		client:   client,
		stream:   layout.Feed(shard),
		group:    streams.GroupName(replica),
		consumer: replica,
		pub:      pub,
		log:      log,
		read:     m.EventsRead.WithLabelValues(strconv.Itoa(shard)),
		m:        m,
		poison:   &poison{log: log, count: m.BadEntries.Inc},
	}
}

// Ready returns nil when the reader's group exists and its last read
// succeeded.
func (r *Reader) Ready() error {
	if !r.ready.Load() {
		return fmt.Errorf("feed %s: not reading", r.stream)
	}
	return nil
}

// Run creates the group afresh after the feed's last entry (destroying any
// stale one of the same name), then reads until ctx ends. Redis errors are
// retried with backoff; Run returns nil at ctx end.
func (r *Reader) Run(ctx context.Context) error {
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
		if err == nil {
			if outage {
				r.log.Info("feed reading again", "stream", r.stream)
				outage = false
			}
			b.reset()
			continue
		}
		if ctx.Err() != nil {
			break
		}
		if streams.IsNoGroup(err) {
			r.recreate(ctx)
			continue
		}
		r.ready.Store(false)
		r.m.ReadErrors.Inc()
		if !outage {
			r.log.Warn("feed read failed; retrying", "stream", r.stream, "err", err)
			outage = true
		}
		if !b.sleep(ctx) {
			break
		}
	}
	r.ready.Store(false)
	return nil
}

// setup creates the group, retrying until Redis answers or ctx ends.
func (r *Reader) setup(ctx context.Context) error {
	b := backoff{}
	for {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		last, err := streams.RecreateGroupAtTail(cctx, r.client, r.stream, r.group)
		cancel()
		if err == nil {
			r.lastID = last
			r.ready.Store(true)
			r.log.Info("consumer group created", "stream", r.stream, "group", r.group, "after", last)
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

// recreate answers NOGROUP: Redis lost the group (restarted empty, or an
// operator destroyed it). The group is made again after the last id this
// replica dispatched, not at "$": entries written since must not be lost.
func (r *Reader) recreate(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if err := streams.CreateGroup(cctx, r.client, r.stream, r.group, r.lastID); err != nil {
		r.log.Warn("re-create consumer group failed", "stream", r.stream, "err", err)
		return
	}
	r.m.GroupsMade.Inc()
	r.log.Warn("consumer group was lost; re-created", "stream", r.stream, "group", r.group, "after", r.lastID)
}

func (r *Reader) readOnce(ctx context.Context) error {
	res, err := r.client.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group:    r.group,
		Consumer: r.consumer,
		Streams:  []string{r.stream, ">"},
		Count:    readCount,
		Block:    BlockTime,
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
		if len(s.Messages) == 0 {
			continue
		}
		msgs := decode(s.Messages, r.poison)
		r.pub.Publish(msgs)
		r.read.Add(float64(len(msgs)))
		ids := make([]string, len(s.Messages))
		for i, xm := range s.Messages {
			ids[i] = xm.ID
		}
		r.lastID = ids[len(ids)-1]
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		err := r.client.XAck(cctx, r.stream, r.group, ids...).Err()
		cancel()
		if err != nil && ctx.Err() == nil {
			// Not fatal: the group's position has moved on regardless, and
			// a pending entry is never read again with ">".
			r.log.Warn("xack failed", "stream", r.stream, "err", err)
		}
	}
	return nil
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

// Close closes the reader's client; for a reader whose Run never ran.
// Closing twice is harmless.
func (r *Reader) Close() { _ = r.client.Close() }
