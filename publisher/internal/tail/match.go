package tail

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/streams"
)

// matcher says which events the tail wants. It is read-only after
// newMatcher, so the readers share it.
type matcher struct {
	exact map[event.Channel]bool
	kinds [event.NumKinds]bool
}

func newMatcher(chs []event.Channel) *matcher {
	m := &matcher{exact: map[event.Channel]bool{}}
	for _, ch := range chs {
		if ch.IsWildcard() {
			m.kinds[ch.Kind] = true
		} else {
			m.exact[ch] = true
		}
	}
	return m
}

func (m *matcher) match(ch event.Channel) bool { return m.kinds[ch.Kind] || m.exact[ch] }

// shards are the shards that may hold a matching channel: all of them for
// KIND:*, the channels' own shards otherwise.
func (m *matcher) shards(layout streams.Layout) []int {
	var out []int
	if slices.Contains(m.kinds[:], true) {
		for s := 0; s < layout.Shards; s++ {
			out = append(out, s)
		}
		return out
	}
	for ch := range m.exact {
		if s := layout.Shard(ch.Symbol); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// line decodes a stream entry and formats it, when it is a matching event.
// Entries that do not follow the layout are skipped with a note.
func (m *matcher) line(msg redis.XMessage, o Options) ([]byte, bool) {
	e, err := event.FromEntry(msg.ID, msg.Values)
	if err != nil {
		fmt.Fprintf(o.Notes, "note: skipped entry: %v\n", err)
		return nil, false
	}
	if !m.match(e.Channel) {
		return nil, false
	}
	return format(&e, o.JSON), true
}

// format is one line: the protocol's EVENT object with JSON, else event
// time (UTC), channel, id and data.
func format(e *event.Event, asJSON bool) []byte {
	if asJSON {
		return append(e.AppendWire(nil), '\n')
	}
	b := time.UnixMilli(e.TS).UTC().AppendFormat(nil, "2006-01-02T15:04:05.000Z")
	b = append(b, "  "...)
	b = append(b, e.Channel.String()...)
	b = append(b, "  "...)
	b = append(b, e.ID.String()...)
	b = append(b, "  "...)
	b = append(b, e.Data...)
	return append(b, '\n')
}

// printLast prints the last o.Last matching events up to each shard's start
// id, oldest first, from the channels' history streams.
func printLast(ctx context.Context, c redis.UniversalClient, layout streams.Layout, m *matcher, starts map[int]string, o Options, w io.Writer) error {
	chans, err := m.historyChannels(ctx, c, layout)
	if err != nil {
		return err
	}
	var evs []event.Event
	for _, ch := range chans {
		key := layout.History(ch)
		msgs, err := c.XRevRangeN(ctx, key, starts[layout.Shard(ch.Symbol)], "-", int64(o.Last)).Result()
		if err != nil {
			return fmt.Errorf("xrevrange %s: %w", key, err)
		}
		for _, msg := range msgs {
			if e, err := event.FromEntry(msg.ID, msg.Values); err == nil {
				evs = append(evs, e)
			}
		}
	}
	// Across shards ids do not order events (each shard's chunk of a batch
	// gets its ids in turn): event time first, then id.
	slices.SortFunc(evs, func(a, b event.Event) int {
		if a.TS != b.TS {
			return cmp.Compare(a.TS, b.TS)
		}
		if a.ID.Less(b.ID) {
			return -1
		}
		if b.ID.Less(a.ID) {
			return 1
		}
		return 0
	})
	if len(evs) > o.Last {
		evs = evs[len(evs)-o.Last:]
	}
	for i := range evs {
		if _, err := w.Write(format(&evs[i], o.JSON)); err != nil {
			return err
		}
	}
	return nil
}

// historyChannels lists the concrete channels whose history --last reads:
// the named ones, and for KIND:* every channel of that kind in the shards'
// channel sets.
func (m *matcher) historyChannels(ctx context.Context, c redis.UniversalClient, layout streams.Layout) ([]event.Channel, error) {
	var out []event.Channel
	for ch := range m.exact {
		out = append(out, ch)
	}
	if !slices.Contains(m.kinds[:], true) {
		return out, nil
	}
	for s := 0; s < layout.Shards; s++ {
		names, err := c.SMembers(ctx, layout.Channels(s)).Result()
		if err != nil {
			return nil, fmt.Errorf("smembers %s: %w", layout.Channels(s), err)
		}
		for _, name := range names {
			ch, err := event.ParseChannel(name)
			if err == nil && !ch.IsWildcard() && m.kinds[ch.Kind] && !m.exact[ch] {
				out = append(out, ch)
			}
		}
	}
	return out, nil
}
