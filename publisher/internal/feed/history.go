package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/streams"
)

// historyPage is how many entries one XRANGE of a resume fetches.
const historyPage = 500

// History reads channel history for snapshots and resumes. It is safe for
// concurrent use; every call takes a context that bounds it.
type History struct {
	client redis.UniversalClient
	layout streams.Layout
	poison *poison
}

// NewHistory returns a history reader on client (shared with the replica's
// other short commands).
func NewHistory(client redis.UniversalClient, layout streams.Layout, log *slog.Logger, m *Metrics) *History {
	log = log.With("component", "history")
	return &History{client: client, layout: layout, poison: &poison{log: log, count: m.BadEntries.Inc}}
}

// Latest returns the newest retained event of each channel; a wildcard
// channel stands for every known symbol of its kind. Channels without
// history are left out.
func (h *History) Latest(ctx context.Context, chs []event.Channel) ([]*hub.Message, error) {
	concrete, err := h.expand(ctx, chs)
	if err != nil {
		return nil, err
	}
	if len(concrete) == 0 {
		return nil, nil
	}
	pipe := h.client.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(concrete))
	for i, c := range concrete {
		cmds[i] = pipe.XRevRangeN(ctx, h.layout.History(c), "+", "-", 1)
	}
	// A key of the wrong type fails only its own command; anything else
	// (Redis unreachable, refusing us) fails them all.
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) && !isWrongType(err) {
		return nil, fmt.Errorf("read latest history: %w", err)
	}
	var out []*hub.Message
	for i, cmd := range cmds {
		entries, err := cmd.Result()
		switch {
		case errors.Is(err, redis.Nil):
		case isWrongType(err):
			// Not a stream: written by hand. One bad key must not fail
			// the snapshot of a whole kind.
			h.poison.report(h.layout.History(concrete[i]), err)
		case err != nil:
			return nil, fmt.Errorf("read latest history: %w", err)
		case len(entries) == 1:
			m, err := h.latestGood(ctx, concrete[i], entries[0])
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

// latestScan bounds how far back a snapshot looks, past poison entries,
// for the latest event of a channel.
const latestScan = 16

// latestGood returns the newest entry that decodes, starting at newest and
// looking at most latestScan entries back; nil if none does.
func (h *History) latestGood(ctx context.Context, c event.Channel, newest redis.XMessage) (*hub.Message, error) {
	if e, err := event.FromEntry(newest.ID, newest.Values); err == nil {
		return hub.NewMessage(e), nil
	} else {
		h.poison.report(newest.ID, err)
	}
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

func isWrongType(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE")
}

// After returns the retained events of c after since, and whether the entry
// since names is still in the history (if not, events may have been
// trimmed, or Redis lost its data).
func (h *History) After(ctx context.Context, c event.Channel, since event.ID) (msgs []*hub.Message, found bool, err error) {
	key := h.layout.History(c)
	pipe := h.client.Pipeline()
	exact := pipe.XRangeN(ctx, key, since.String(), since.String(), 1)
	first := pipe.XRangeN(ctx, key, "("+since.String(), "+", historyPage)
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, false, fmt.Errorf("read history %s: %w", key, err)
	}
	found = len(exact.Val()) == 1
	page := first.Val()
	for {
		msgs = append(msgs, decode(page, h.poison)...)
		if len(page) < historyPage {
			return msgs, found, nil
		}
		next := "(" + page[len(page)-1].ID
		if page, err = h.client.XRangeN(ctx, key, next, "+", historyPage).Result(); err != nil {
			return nil, false, fmt.Errorf("read history %s: %w", key, err)
		}
	}
}

// expand replaces each wildcard by the known channels of its kind, from the
// channel sets of every shard, and removes duplicates.
func (h *History) expand(ctx context.Context, chs []event.Channel) ([]event.Channel, error) {
	var wild [event.NumKinds]bool
	anyWild := false
	seen := make(map[event.Channel]bool, len(chs))
	var out []event.Channel
	for _, c := range chs {
		if c.IsWildcard() {
			wild[c.Kind], anyWild = true, true
		}
	}
	for _, c := range chs {
		if !c.IsWildcard() && !wild[c.Kind] && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	if !anyWild {
		return out, nil
	}
	pipe := h.client.Pipeline()
	cmds := make([]*redis.StringSliceCmd, h.layout.Shards)
	for s := range cmds {
		cmds[s] = pipe.SMembers(ctx, h.layout.Channels(s))
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("read channel sets: %w", err)
	}
	var known []event.Channel
	for _, cmd := range cmds {
		for _, name := range cmd.Val() {
			c, err := event.ParseChannel(name)
			if err != nil || c.IsWildcard() || !wild[c.Kind] || seen[c] {
				continue
			}
			seen[c] = true
			known = append(known, c)
		}
	}
	slices.SortFunc(known, func(a, b event.Channel) int { return strings.Compare(a.String(), b.String()) })
	return append(out, known...), nil
}
