package streams

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/event"
)

// writeScript appends a batch of one shard's events to the shard's feed and,
// under the same ids, to each channel's history, then trims history by age
// and records the channels. One script per shard per batch: a crash can
// never leave the feed without the history or the reverse.
//
// Redis does not roll a script back when a command fails, so everything
// that can fail runs before the first XADD (SADD), and nothing after it can
// fail the script (pcall): either the whole batch is written, or none of it.
//
// KEYS: feed, channel set, history keys of the batch.
// ARGV: feed MAXLEN, history MAXLEN, history MINID ("0": none), then per
// event: index into KEYS of its history, ch, ts, data.
//
// The history XADD uses pcall: should a history stream already hold a
// larger id (an operator deleted the feed, or the clock went back) the event
// still reaches the feed, and readers drop it by id order.
const writeScript = `
local feed, chans = KEYS[1], KEYS[2]
local feedLen, histLen, minID = ARGV[1], ARGV[2], ARGV[3]
local touched, names, n, last = {}, {}, 0, ''
for i = 4, #ARGV, 4 do
  local k = tonumber(ARGV[i])
  if not touched[k] then
    touched[k] = true
    names[#names+1] = ARGV[i+1]
  end
end
redis.call('SADD', chans, unpack(names))
for i = 4, #ARGV, 4 do
  local k, ch, ts, data = tonumber(ARGV[i]), ARGV[i+1], ARGV[i+2], ARGV[i+3]
  last = redis.call('XADD', feed, 'MAXLEN', '~', feedLen, '*', 'ch', ch, 'ts', ts, 'data', data)
  redis.pcall('XADD', KEYS[k], 'MAXLEN', '~', histLen, last, 'ch', ch, 'ts', ts, 'data', data)
  n = n + 1
end
if minID ~= '0' then
  for k in pairs(touched) do redis.pcall('XTRIM', KEYS[k], 'MINID', '~', minID) end
end
return {n, last}
`

// MaxScriptEvents bounds the events of one script call, so that no call
// holds Redis for long; larger batches are split.
const MaxScriptEvents = 512

// WriterConfig sizes the streams a Writer writes.
type WriterConfig struct {
	FeedLen    int64         // approximate MAXLEN of each feed
	HistoryLen int64         // approximate MAXLEN of each channel's history
	Retention  time.Duration // history older than this is trimmed; 0 keeps all
}

// Writer appends events with the write script. It is safe for concurrent
// use, though the collector calls it from one goroutine.
type Writer struct {
	c      redis.UniversalClient
	layout Layout
	cfg    WriterConfig
	script *redis.Script
	now    func() time.Time
}

// NewWriter returns a Writer for layout on c.
func NewWriter(c redis.UniversalClient, layout Layout, cfg WriterConfig) *Writer {
	return &Writer{c: c, layout: layout, cfg: cfg, script: redis.NewScript(writeScript), now: time.Now}
}

// chunk is one script call: events of one shard.
type chunk struct {
	shard  int
	events []event.Event
}

// Write appends events. It returns the events that were not written (those
// of the chunks that failed, in their original order per channel) with the
// first error; on success unwritten is empty. Events that were written are
// never returned, so retrying unwritten never duplicates.
func (w *Writer) Write(ctx context.Context, events []event.Event) (unwritten []event.Event, err error) {
	chunks := w.split(events)
	if len(chunks) == 0 {
		return nil, nil
	}
	minID := "0"
	if w.cfg.Retention > 0 {
		minID = strconv.FormatInt(w.now().Add(-w.cfg.Retention).UnixMilli(), 10)
	}
	pipe := w.c.Pipeline()
	cmds := make([]*redis.Cmd, len(chunks))
	argss := make([][]any, len(chunks))
	keyss := make([][]string, len(chunks))
	for i, ch := range chunks {
		keyss[i], argss[i] = w.scriptArgs(ch, minID)
		cmds[i] = w.script.EvalSha(ctx, pipe, keyss[i], argss[i]...)
	}
	_, _ = pipe.Exec(ctx) // errors are read per command below
	for i, cmd := range cmds {
		cerr := cmd.Err()
		if cerr != nil && isNoScript(cerr) {
			// Redis restarted or flushed its scripts: send the body.
			cerr = w.script.Eval(ctx, w.c, keyss[i], argss[i]...).Err()
		}
		if cerr != nil {
			unwritten = append(unwritten, chunks[i].events...)
			if err == nil {
				err = fmt.Errorf("write shard %d (%d events): %w", chunks[i].shard, len(chunks[i].events), cerr)
			}
		}
	}
	return unwritten, err
}

// split groups events by shard, keeping their order, in chunks of at most
// MaxScriptEvents.
func (w *Writer) split(events []event.Event) []chunk {
	if w.layout.Shards == 1 {
		var out []chunk
		for len(events) > 0 {
			n := min(len(events), MaxScriptEvents)
			out = append(out, chunk{shard: 0, events: events[:n:n]})
			events = events[n:]
		}
		return out
	}
	byShard := make(map[int][]event.Event)
	var order []int
	for _, e := range events {
		s := w.layout.Shard(e.Channel.Symbol)
		if _, ok := byShard[s]; !ok {
			order = append(order, s)
		}
		byShard[s] = append(byShard[s], e)
	}
	var out []chunk
	for _, s := range order {
		evs := byShard[s]
		for len(evs) > 0 {
			n := min(len(evs), MaxScriptEvents)
			out = append(out, chunk{shard: s, events: evs[:n:n]})
			evs = evs[n:]
		}
	}
	return out
}

func (w *Writer) scriptArgs(c chunk, minID string) ([]string, []any) {
	keys := []string{w.layout.Feed(c.shard), w.layout.Channels(c.shard)}
	index := make(map[event.Channel]int)
	args := make([]any, 0, 3+4*len(c.events))
	args = append(args, w.cfg.FeedLen, w.cfg.HistoryLen, minID)
	for i := range c.events {
		e := &c.events[i]
		k, ok := index[e.Channel]
		if !ok {
			keys = append(keys, w.layout.History(e.Channel))
			k = len(keys) // Lua indexes from 1
			index[e.Channel] = k
		}
		args = append(args, k, e.Channel.String(), e.TS, string(e.Data))
	}
	return keys, args
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
