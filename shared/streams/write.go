package streams

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/event"
)

// writeScript appends a chunk of one shard's events to the shard's feed and,
// under the same ids, to each channel's history, then trims history by age
// and records the channels. One script per shard per chunk: a crash can
// never leave the feed without the history or the reverse.
//
// Redis does not roll a script back when a command fails, so everything
// that can fail runs before the first XADD (GET, SADD), and nothing after it
// can fail the script (pcall, SET): either the whole chunk is written, or
// none of it.
//
// Retries are idempotent. Each event carries the writer's sequence number,
// and the shard's writer mark (<p>:{<s>}:writer, "epoch:seq") records the
// last one written by this writer (epoch: one per process). A chunk retried
// after an ambiguous failure (a timeout after Redis ran it) skips the events
// the mark says are written, instead of writing them twice.
//
// KEYS: feed, channel set, writer mark, history keys of the chunk.
// ARGV: feed MAXLEN, history MAXLEN, history MINID ("0": none), epoch, then
// per event: index into KEYS of its history, seq, ch, ts, data.
const writeScript = `
local feed, chans, mark = KEYS[1], KEYS[2], KEYS[3]
local feedLen, histLen, minID, epoch = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local done = -1
local prev = redis.call('GET', mark)
if prev then
  local e, s = string.match(prev, '^(.+):(%d+)$')
  if e == epoch then done = tonumber(s) end
end
local touched, names, n, last, lastSeq = {}, {}, 0, '', nil
for i = 5, #ARGV, 5 do
  local k = tonumber(ARGV[i])
  if tonumber(ARGV[i+1]) > done and not touched[k] then
    touched[k] = true
    names[#names+1] = ARGV[i+2]
  end
end
if #names == 0 then return {0, ''} end
redis.call('SADD', chans, unpack(names))
for i = 5, #ARGV, 5 do
  local k, seq, ch, ts, data = tonumber(ARGV[i]), ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4]
  if tonumber(seq) > done then
    last = redis.call('XADD', feed, 'MAXLEN', '~', feedLen, '*', 'ch', ch, 'ts', ts, 'data', data)
    redis.pcall('XADD', KEYS[k], 'MAXLEN', '~', histLen, last, 'ch', ch, 'ts', ts, 'data', data)
    lastSeq = seq
    n = n + 1
  end
end
redis.call('SET', mark, epoch .. ':' .. lastSeq)
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

// Writer appends events with the write script. Write is meant to be called
// from one goroutine at a time (the collector's batcher): the idempotence of
// retries relies on each shard's events being written in sequence order.
type Writer struct {
	c      redis.UniversalClient
	layout Layout
	cfg    WriterConfig
	script *redis.Script
	now    func() time.Time
	epoch  string
	seq    atomic.Uint64
	busy   atomic.Bool // inside Write
}

// ErrConcurrentWrite is returned by a Write called while another is in
// progress on the same Writer: sequence order per shard would be lost.
var ErrConcurrentWrite = errors.New("concurrent Write on one streams.Writer")

// NewWriter returns a Writer for layout on c, with an epoch of its own.
func NewWriter(c redis.UniversalClient, layout Layout, cfg WriterConfig) *Writer {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return &Writer{
		c: c, layout: layout, cfg: cfg,
		script: redis.NewScript(writeScript),
		now:    time.Now,
		epoch:  hex.EncodeToString(b),
	}
}

// chunk is one script call: events of one shard.
type chunk struct {
	shard  int
	events []event.Event
}

// Write appends events. It numbers the events that have no Seq yet (in
// place, in the caller's slice). It returns the events that may not have
// been written (those of the chunks that failed, and the later chunks of
// their shards, in order) with the first error; on success unwritten is
// empty. Handing unwritten back to Write later, before newer events, never
// duplicates an event, even when a failed call had in fact reached Redis.
func (w *Writer) Write(ctx context.Context, events []event.Event) (unwritten []event.Event, err error) {
	if !w.busy.CompareAndSwap(false, true) {
		return events, ErrConcurrentWrite
	}
	defer w.busy.Store(false)
	for i := range events {
		if events[i].Seq == 0 {
			events[i].Seq = w.seq.Add(1)
		}
	}
	shards := w.split(events)
	minID := "0"
	if w.cfg.Retention > 0 {
		minID = strconv.FormatInt(w.now().Add(-w.cfg.Retention).UnixMilli(), 10)
	}
	failed := make([]bool, len(shards))
	// Round r sends chunk r of every shard that has not failed, in one
	// pipeline: a shard's chunks go in order, and none after one fails.
	for round := 0; ; round++ {
		var idx []int
		for i, s := range shards {
			if !failed[i] && round < len(s) {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			break
		}
		if rerr := w.round(ctx, shards, idx, round, minID, failed); rerr != nil && err == nil {
			err = rerr
		}
	}
	for i, s := range shards {
		if !failed[i] {
			continue
		}
		for r := range s {
			if s[r].events != nil { // written chunks are set to nil
				unwritten = append(unwritten, s[r].events...)
			}
		}
	}
	return unwritten, err
}

// round sends chunk r of the shards idx and marks the written ones nil and
// the failed shards in failed. It returns the first error.
func (w *Writer) round(ctx context.Context, shards [][]chunk, idx []int, r int, minID string, failed []bool) error {
	pipe := w.c.Pipeline()
	cmds := make([]*redis.Cmd, len(idx))
	argss := make([][]any, len(idx))
	keyss := make([][]string, len(idx))
	for j, i := range idx {
		keyss[j], argss[j] = w.scriptArgs(shards[i][r], minID)
		cmds[j] = w.script.EvalSha(ctx, pipe, keyss[j], argss[j]...)
	}
	_, _ = pipe.Exec(ctx) // errors are read per command below
	var first error
	for j, i := range idx {
		cerr := cmds[j].Err()
		if cerr != nil && isNoScript(cerr) {
			// Redis restarted or flushed its scripts: send the body.
			cerr = w.script.Eval(ctx, w.c, keyss[j], argss[j]...).Err()
		}
		c := &shards[i][r]
		if cerr != nil {
			failed[i] = true
			if first == nil {
				first = fmt.Errorf("write shard %d (%d events): %w", c.shard, len(c.events), cerr)
			}
			continue
		}
		c.events = nil
	}
	return first
}

// split groups events by shard, keeping their order, in chunks of at most
// MaxScriptEvents.
func (w *Writer) split(events []event.Event) [][]chunk {
	if len(events) == 0 {
		return nil
	}
	if w.layout.Shards == 1 {
		return [][]chunk{chunks(0, events)}
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
	out := make([][]chunk, len(order))
	for i, s := range order {
		out[i] = chunks(s, byShard[s])
	}
	return out
}

func chunks(shard int, evs []event.Event) []chunk {
	var out []chunk
	for len(evs) > 0 {
		n := min(len(evs), MaxScriptEvents)
		out = append(out, chunk{shard: shard, events: evs[:n:n]})
		evs = evs[n:]
	}
	return out
}

func (w *Writer) scriptArgs(c chunk, minID string) ([]string, []any) {
	keys := []string{w.layout.Feed(c.shard), w.layout.Channels(c.shard), w.layout.WriterMark(c.shard)}
	index := make(map[event.Channel]int)
	args := make([]any, 0, 4+5*len(c.events))
	args = append(args, w.cfg.FeedLen, w.cfg.HistoryLen, minID, w.epoch)
	for i := range c.events {
		e := &c.events[i]
		k, ok := index[e.Channel]
		if !ok {
			keys = append(keys, w.layout.History(e.Channel))
			k = len(keys) // Lua indexes from 1
			index[e.Channel] = k
		}
		args = append(args, k, e.Seq, e.Channel.String(), e.TS, string(e.Data))
	}
	return keys, args
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
