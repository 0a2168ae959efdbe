// Package tail prints the events of some channels from Redis as they
// arrive: `publisher tail CHANNEL…`. It reads each shard's feed with plain
// XREAD (no consumer group, so it changes nothing and costs the replicas
// nothing) and, for --last, the channels' history. Run is called once per
// tail; it owns the goroutines it starts (one reader per shard, one
// printer) and stops them before it returns.
package tail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/streams"
)

// ErrUsage is returned (wrapped) for options that make no sense together.
var ErrUsage = errors.New("usage")

// Options say what to print and how.
type Options struct {
	Channels []event.Channel // concrete (trade:AAPL) or KIND:*
	Last     int             // print the last N events of the channels first
	Since    string          // print every event after this id still in the feed first
	JSON     bool            // one protocol EVENT object a line, instead of a readable line
	// Block bounds one XREAD; Run returns at most this long after ctx ends.
	// 0 means 500 ms.
	Block time.Duration
	// Notes receives what is not an event: trimmed events, skipped entries.
	Notes io.Writer
	// Started, if set, is called once the start of each feed is fixed:
	// every event written after that call is printed.
	Started func()
}

// queueLen bounds the lines between the readers and the printer; a slow
// terminal holds the readers back, which is what a tail should do.
const queueLen = 256

// Run prints the matching events to w until ctx ends (then it returns nil)
// or Redis fails.
func Run(ctx context.Context, c redis.UniversalClient, layout streams.Layout, o Options, w io.Writer) error {
	if len(o.Channels) == 0 {
		return fmt.Errorf("%w: name at least one channel (trade:AAPL, quote:*)", ErrUsage)
	}
	if o.Last > 0 && o.Since != "" {
		return fmt.Errorf("%w: --last and --since exclude each other", ErrUsage)
	}
	if o.Block <= 0 {
		o.Block = 500 * time.Millisecond
	}
	if o.Notes == nil {
		o.Notes = io.Discard
	}
	m := newMatcher(o.Channels)
	starts, err := startIDs(ctx, c, layout, m, o)
	if err != nil {
		return err
	}
	if o.Started != nil {
		o.Started()
	}
	if o.Last > 0 {
		if err := printLast(ctx, c, layout, m, starts, o, w); err != nil {
			return err
		}
	}
	lines := make(chan []byte, queueLen)
	g, gctx := errgroup.WithContext(ctx)
	for shard, start := range starts {
		g.Go(func() error { return follow(gctx, c, layout.Feed(shard), start, m, o, lines) })
	}
	printed := make(chan error, 1)
	go func() { printed <- printLines(w, lines) }()
	err = g.Wait()
	close(lines)
	if perr := <-printed; err == nil {
		err = perr
	}
	if ctx.Err() != nil {
		return nil // Ctrl-C: a clean end
	}
	return err
}

// printLines writes each line until lines is closed. After a write error it
// keeps draining, so that no reader blocks on a dead terminal.
func printLines(w io.Writer, lines <-chan []byte) error {
	var err error
	for l := range lines {
		if err == nil {
			_, err = w.Write(l)
		}
	}
	return err
}

// startIDs returns, per shard that holds a matching channel, the id after
// which to follow its feed: --since, or the feed's newest entry now.
func startIDs(ctx context.Context, c redis.UniversalClient, layout streams.Layout, m *matcher, o Options) (map[int]string, error) {
	starts := map[int]string{}
	for _, shard := range m.shards(layout) {
		if o.Since != "" {
			if _, err := event.ParseID(o.Since); err != nil {
				return nil, fmt.Errorf("%w: --since %q: want a stream id such as 1764288000123-0", ErrUsage, o.Since)
			}
			starts[shard] = o.Since
			if err := noteTrimmed(ctx, c, layout.Feed(shard), o); err != nil {
				return nil, err
			}
			continue
		}
		last, err := c.XRevRangeN(ctx, layout.Feed(shard), "+", "-", 1).Result()
		if err != nil {
			return nil, fmt.Errorf("xrevrange %s: %w", layout.Feed(shard), err)
		}
		starts[shard] = "0-0"
		if len(last) > 0 {
			starts[shard] = last[0].ID
		}
	}
	return starts, nil
}

// noteTrimmed tells when --since names an id older than the feed's oldest
// entry: events in between are gone from the feed.
func noteTrimmed(ctx context.Context, c redis.UniversalClient, feed string, o Options) error {
	first, err := c.XRangeN(ctx, feed, "-", "+", 1).Result()
	if err != nil {
		return fmt.Errorf("xrange %s: %w", feed, err)
	}
	if len(first) == 0 {
		return nil
	}
	since, _ := event.ParseID(o.Since)
	oldest, err := event.ParseID(first[0].ID)
	if err == nil && since.Less(oldest) {
		fmt.Fprintf(o.Notes, "note: %s starts at %s; events between %s and it were trimmed\n", feed, first[0].ID, o.Since)
	}
	return nil
}

// follow reads feed after start with XREAD BLOCK and queues the matching
// events as lines, until ctx ends.
func follow(ctx context.Context, c redis.UniversalClient, feed, start string, m *matcher, o Options, lines chan<- []byte) error {
	last := start
	for ctx.Err() == nil {
		res, err := c.XRead(ctx, &redis.XReadArgs{Streams: []string{feed, last}, Count: 1000, Block: o.Block}).Result()
		if errors.Is(err, redis.Nil) {
			continue // nothing within Block
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("xread %s: %w", feed, err)
		}
		for _, s := range res {
			for _, msg := range s.Messages {
				last = msg.ID
				line, ok := m.line(msg, o)
				if !ok {
					continue
				}
				select {
				case lines <- line:
				case <-ctx.Done():
					return nil
				}
			}
		}
	}
	return nil
}
