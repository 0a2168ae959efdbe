package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/streams"
)

// Bounds of history reads.
const (
	// ConcurrentReads is how many history reads of a replica may run at
	// once; the others wait for a slot (bounded by their context).
	ConcurrentReads = 8
	// expandTTL is how long a kind's list of known channels is reused:
	// a loop of KIND:* subscribes costs Redis one SMEMBERS per shard a
	// second, not one per subscribe.
	expandTTL = time.Second
	// latestScan bounds how far back a snapshot looks, past poison
	// entries, for the latest event of a channel.
	latestScan = 16
)

// History reads channel history for snapshots and resumes, page by page:
// callers ask for as much as they can take. It is safe for concurrent use;
// every call takes a context that bounds it, and at most ConcurrentReads
// calls of a replica read Redis at once.
//
// Reads stop at the feed: an entry of a channel's history whose id is
// above the last id of its shard's feed was not written by the collector
// (the write script adds each event to the feed and to history under the
// same id, so a written entry is never above the feed's last id). Such an
// entry (written by hand, "from the future") is neither replayed nor
// snapshotted: it would raise the connection's per-channel id floor above
// every live event to come and silence the channel.
type History struct {
	client redis.UniversalClient
	layout streams.Layout
	poison *poison
	slots  *hub.Semaphore

	mu    sync.Mutex
	known [event.NumKinds]knownChannels
}

type knownChannels struct {
	at  time.Time
	chs []event.Channel // sorted; shared read-only
}

// NewHistory returns a history reader on client (shared with the replica's
// other short commands). slots is the replica's bound on concurrent history
// reads (of ConcurrentReads slots), shared with its other readers of
// history (GET /v1/history).
func NewHistory(client redis.UniversalClient, layout streams.Layout, slots *hub.Semaphore, log *slog.Logger, m *Metrics) *History {
	log = log.With("component", "history")
	return &History{
		client: client, layout: layout,
		poison: &poison{log: log, count: m.BadEntries.Inc},
		slots:  slots,
	}
}

func (h *History) acquire(ctx context.Context) error {
	if err := h.slots.Acquire(ctx); err != nil {
		return fmt.Errorf("wait for a history read slot: %w", err)
	}
	return nil
}

// Found reports, per channel of since, whether the entry its id names is
// still in the channel's history. A history key of the wrong type answers
// false, like a trimmed history.
func (h *History) Found(ctx context.Context, since map[event.Channel]event.ID) (map[event.Channel]bool, error) {
	if len(since) == 0 {
		return nil, nil
	}
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	defer h.slots.Release()
	pipe := h.client.Pipeline()
	cmds := make(map[event.Channel]*redis.XMessageSliceCmd, len(since))
	for c, id := range since {
		cmds[c] = pipe.XRangeN(ctx, h.layout.History(c), id.String(), id.String(), 1)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) && !streams.IsWrongType(err) {
		return nil, fmt.Errorf("read history: %w", err)
	}
	out := make(map[event.Channel]bool, len(since))
	for c, cmd := range cmds {
		entries, err := cmd.Result()
		switch {
		case err == nil, errors.Is(err, redis.Nil):
			out[c] = len(entries) == 1
		case streams.IsWrongType(err):
			h.poison.report(h.layout.History(c), err)
			out[c] = false
		default:
			return nil, fmt.Errorf("read history: %w", err)
		}
	}
	return out, nil
}

// Latest returns the newest retained event of each concrete channel of
// chs, not above its shard's feed. Channels without history, or whose key
// is not a stream, are left out.
func (h *History) Latest(ctx context.Context, chs []event.Channel) ([]*hub.Message, error) {
	if len(chs) == 0 {
		return nil, nil
	}
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	defer h.slots.Release()
	shards := make([]int, len(chs))
	for i, c := range chs {
		shards[i] = h.layout.Shard(c.Symbol)
	}
	tops, err := h.tops(ctx, shards)
	if err != nil {
		return nil, err
	}
	pipe := h.client.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(chs))
	for i, c := range chs {
		cmds[i] = pipe.XRevRangeN(ctx, h.layout.History(c), tops[shards[i]], "-", 1)
	}
	// A key of the wrong type fails only its own command; anything else
	// (Redis unreachable, refusing us) fails them all.
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) && !streams.IsWrongType(err) {
		return nil, fmt.Errorf("read latest history: %w", err)
	}
	var out []*hub.Message
	for i, cmd := range cmds {
		entries, err := cmd.Result()
		switch {
		case errors.Is(err, redis.Nil):
		case streams.IsWrongType(err):
			// Not a stream: written by hand. One bad key must not fail
			// the snapshot of a whole kind.
			h.poison.report(h.layout.History(chs[i]), err)
		case err != nil:
			return nil, fmt.Errorf("read latest history: %w", err)
		case len(entries) == 1:
			m, err := h.latestGood(ctx, chs[i], entries[0])
			if err != nil {
				return nil, err
			}
			if m != nil {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// latestGood returns the newest entry that decodes, starting at newest and
// looking at most latestScan entries back; nil if none does.
func (h *History) latestGood(ctx context.Context, c event.Channel, newest redis.XMessage) (*hub.Message, error) {
	e, err := event.FromEntry(newest.ID, newest.Values)
	if err == nil {
		return hub.NewMessage(e), nil
	}
	h.poison.report(newest.ID, err)
	older, err := h.client.XRevRangeN(ctx, h.layout.History(c), "("+newest.ID, "-", latestScan).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read latest history: %w", err)
	}
	for _, xm := range older {
		e, err := event.FromEntry(xm.ID, xm.Values)
		if err == nil {
			return hub.NewMessage(e), nil
		}
		h.poison.report(xm.ID, err)
	}
	return nil, nil
}

// tops returns, for each shard in shards, the upper bound of a history
// read: the last id of the shard's feed, or "+" when the feed is empty.
func (h *History) tops(ctx context.Context, shards []int) (map[int]string, error) {
	cmds := make(map[int]*redis.XMessageSliceCmd)
	pipe := h.client.Pipeline()
	for _, s := range shards {
		if cmds[s] == nil {
			cmds[s] = pipe.XRevRangeN(ctx, h.layout.Feed(s), "+", "-", 1)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read feed heads: %w", err)
	}
	out := make(map[int]string, len(cmds))
	for s, cmd := range cmds {
		out[s] = "+"
		if v := cmd.Val(); len(v) == 1 {
			out[s] = v[0].ID
		}
	}
	return out, nil
}

// After returns up to n retained events of c after the id after, not above
// its shard's feed; next is the id to continue from, and done is true when
// nothing more is retained (then next is meaningless). Entries that do
// not decode are skipped but still advance next. A history key of the
// wrong type reads as empty.
func (h *History) After(ctx context.Context, c event.Channel, after event.ID, n int) (msgs []*hub.Message, next event.ID, done bool, err error) {
	if err := h.acquire(ctx); err != nil {
		return nil, after, false, err
	}
	defer h.slots.Release()
	shard := h.layout.Shard(c.Symbol)
	tops, err := h.tops(ctx, []int{shard})
	if err != nil {
		return nil, after, false, err
	}
	key := h.layout.History(c)
	page, err := h.client.XRangeN(ctx, key, "("+after.String(), tops[shard], int64(n)).Result()
	switch {
	case streams.IsWrongType(err):
		h.poison.report(key, err)
		return nil, after, true, nil
	case err != nil && !errors.Is(err, redis.Nil):
		return nil, after, false, fmt.Errorf("read history %s: %w", key, err)
	}
	next = after
	if len(page) > 0 {
		if id, err := event.ParseID(page[len(page)-1].ID); err == nil {
			next = id
		}
	}
	return decode(page, h.poison), next, len(page) < n, nil
}

// Expand replaces each wildcard of chs by the known channels of its kind,
// from the channel sets of every shard (reused for up to expandTTL), and
// removes duplicates. Concrete channels come first, in their order, then
// the known ones sorted.
func (h *History) Expand(ctx context.Context, chs []event.Channel) ([]event.Channel, error) {
	var wild [event.NumKinds]bool
	anyWild := false
	for _, c := range chs {
		if c.IsWildcard() {
			wild[c.Kind], anyWild = true, true
		}
	}
	seen := make(map[event.Channel]bool, len(chs))
	var out []event.Channel
	for _, c := range chs {
		if !c.IsWildcard() && !wild[c.Kind] && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	if !anyWild {
		return out, nil
	}
	known, err := h.knownOf(ctx, wild)
	if err != nil {
		return nil, err
	}
	for k, on := range wild {
		if on {
			out = append(out, known[k]...)
		}
	}
	return out, nil
}

// knownOf returns the known channels of the kinds in want (slices shared
// read-only), from the cache or else from the channel sets.
func (h *History) knownOf(ctx context.Context, want [event.NumKinds]bool) ([event.NumKinds][]event.Channel, error) {
	var out [event.NumKinds][]event.Channel
	now := time.Now()
	h.mu.Lock()
	fresh := true
	for k, on := range want {
		if on && now.Sub(h.known[k].at) > expandTTL {
			fresh = false
		}
		out[k] = h.known[k].chs
	}
	h.mu.Unlock()
	if fresh {
		return out, nil
	}
	if err := h.acquire(ctx); err != nil {
		return out, err
	}
	defer h.slots.Release()
	pipe := h.client.Pipeline()
	cmds := make([]*redis.StringSliceCmd, h.layout.Shards)
	for s := range cmds {
		cmds[s] = pipe.SMembers(ctx, h.layout.Channels(s))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return out, fmt.Errorf("read channel sets: %w", err)
	}
	var all [event.NumKinds][]event.Channel
	for _, cmd := range cmds {
		for _, name := range cmd.Val() {
			c, err := event.ParseChannel(name)
			if err != nil || c.IsWildcard() {
				continue
			}
			all[c.Kind] = append(all[c.Kind], c)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := range all {
		slices.SortFunc(all[k], func(a, b event.Channel) int { return strings.Compare(a.String(), b.String()) })
		all[k] = slices.Compact(all[k])
		h.known[k] = knownChannels{at: now, chs: all[k]}
	}
	return all, nil
}
