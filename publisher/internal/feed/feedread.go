package feed

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/shared/event"
)

// Reads of the shard feeds themselves, for the resume of an event stream
// (GET /v1/sse): one feed id per shard is a complete resume point for any
// set of that shard's channels, and the feed's trimming bounds it.

// Shards is the number of feed shards.
func (h *History) Shards() int { return h.layout.Shards }

// Shard returns the shard of a symbol.
func (h *History) Shard(symbol string) int { return h.layout.Shard(symbol) }

// FeedTops returns the last id of every shard's feed (0-0 for an empty one).
func (h *History) FeedTops(ctx context.Context) ([]event.ID, error) {
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	defer h.slots.Release()
	shards := make([]int, h.layout.Shards)
	for i := range shards {
		shards[i] = i
	}
	tops, err := h.tops(ctx, shards)
	if err != nil {
		return nil, err
	}
	out := make([]event.ID, len(shards))
	for s, id := range tops {
		if id == "+" {
			continue
		}
		if out[s], err = event.ParseID(id); err != nil {
			return nil, fmt.Errorf("feed head %q: %w", id, err)
		}
	}
	return out, nil
}

// FeedRetained reports whether the feed of shard still holds the entry id
// (0-0, the position before any entry, counts as held).
func (h *History) FeedRetained(ctx context.Context, shard int, id event.ID) (bool, error) {
	if id == (event.ID{}) {
		return true, nil
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.slots.Release()
	s := id.String()
	got, err := h.client.XRangeN(ctx, h.layout.Feed(shard), s, s, 1).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("read feed entry: %w", err)
	}
	return len(got) == 1, nil
}

// FeedAfter returns up to n events of shard's feed after the id after;
// next is where to go on, done is true when the feed has nothing more.
// Entries that do not decode are skipped but still advance next.
func (h *History) FeedAfter(ctx context.Context, shard int, after event.ID, n int) (msgs []*hub.Message, next event.ID, done bool, err error) {
	if err := h.acquire(ctx); err != nil {
		return nil, after, false, err
	}
	defer h.slots.Release()
	entries, err := h.client.XRangeN(ctx, h.layout.Feed(shard), "("+after.String(), "+", int64(n)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, after, false, fmt.Errorf("read feed: %w", err)
	}
	if len(entries) == 0 {
		return nil, after, true, nil
	}
	next, err = event.ParseID(entries[len(entries)-1].ID)
	if err != nil {
		return nil, after, false, fmt.Errorf("feed entry id: %w", err)
	}
	return decode(entries, h.poison), next, len(entries) < n, nil
}
