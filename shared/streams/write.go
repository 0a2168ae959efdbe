package streams

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/event"
)

// writeLua appends a chunk of one shard's events to the shard's feed and,
// under the same ids, to each channel's history, then trims history by age,
// lets each history expire after the retention, and records the channels.
// One script per shard per chunk: a crash can never leave the feed without
// the history or the reverse.
//
// Redis does not roll a script back when a command fails, so everything
// that can fail runs before the first XADD (GET, SADD), and nothing after it
// can fail the script (pcall, SET): either the whole chunk is written, or
// none of it. A history XADD that fails (the key holds another type, written
// by hand) skips that channel's history; the script reports it and the rest
// of the chunk lands.
//
// Retries are idempotent. Each event carries the writer's sequence number,
// and the shard's writer mark (<p>:{<s>}:writer, "gen/epoch:seq") records the
// last one written by this writer (epoch: one per process). A chunk retried
// after an ambiguous failure (a timeout after Redis ran it) skips the events
// the mark says are written, instead of writing them twice. The mark's
// generation changes only when the mark is lost with the data: readers use
// it to recognise a new feed (groups.go).
//
// Fencing: a collector that lost its lease must not write in the window
// before it notices. Two checks, both in the script, refuse its chunks
// (ErrNotLeader): the lease's term (Fence, Lease.Acquire), on every Redis,
// and, where the lease key shares the shard's server (not on Cluster), the
// lease's holder. Each shard keeps the highest term that wrote to it
// (<p>:{<s>}:fence); a chunk of a lower term is refused, and a new holder
// raises every shard's fence before its first write.
//
//go:embed write.lua
var writeLua string

// MaxScriptEvents bounds the events of one script call, so that no call
// holds Redis for long; larger batches are split.
const MaxScriptEvents = 512

// ErrNotLeader is returned (wrapped) by Write when the lease named in
// WriterConfig is not held by the writer's holder: the refused events were
// not written, and a standby must not write them.
var ErrNotLeader = errors.New("collector lease held by another")

// ErrConcurrentWrite is returned by a Write called while another is in
// progress on the same Writer: sequence order per shard would be lost.
var ErrConcurrentWrite = errors.New("concurrent Write on one streams.Writer")

// WriterConfig sizes the streams a Writer writes.
type WriterConfig struct {
	FeedLen    int64 // approximate MAXLEN of each feed
	HistoryLen int64 // approximate MAXLEN of each channel's history
	// Retention trims history older than this, and lets a history key
	// expire when its channel was quiet this long; 0 keeps all.
	Retention time.Duration
	// ByKind replaces HistoryLen and Retention for the channels of a kind
	// (a chart wants a day of bars, not ten minutes).
	ByKind map[event.Kind]HistoryLimits
	// Lease and Holder fence the writes: a chunk is written only while
	// the string at Lease equals Holder (compared in the script). An empty
	// Holder writes without this check (a single collector). The lease key
	// lies outside the shards' hash slots, so the check needs a Redis that
	// is not a Cluster; NewWriter drops it on a ClusterClient, where the
	// term (Writer.Fence) fences alone.
	Lease, Holder string
	// MinReplicas, if above 0, makes a chunk count as written only once
	// WAIT confirms that this many replicas have it (replicas.go); until
	// then it is unwritten, and retried.
	MinReplicas int
	// ReplicaWait bounds each WAIT; 0 is DefaultReplicaWait.
	ReplicaWait time.Duration
}

// HistoryLimits bound the history of the channels of one kind.
type HistoryLimits struct {
	Len       int64         // approximate MAXLEN
	Retention time.Duration // age limit and expiry of a quiet channel; 0 keeps all
}

// limits returns the history limits of kind k.
func (c WriterConfig) limits(k event.Kind) HistoryLimits {
	if l, ok := c.ByKind[k]; ok {
		return l
	}
	return HistoryLimits{Len: c.HistoryLen, Retention: c.Retention}
}

// Pending is an event on its way to Redis, with the writer's sequence
// number: zero until its first write attempt numbers it, so that a retry
// is recognised (see writeLua).
type Pending struct {
	event.Event
	Seq uint64
}

// Skipped names a channel whose history refused its events in a write (its
// key holds another type, written by hand). The events are in the feed.
type Skipped struct {
	Channel string
	Reason  string // Redis's error
}

// Result is what one Write did.
type Result struct {
	// Written counts the events of the chunks that succeeded: appended by
	// this call, or found appended by an earlier call that failed after
	// Redis ran it (and so were not counted then).
	Written int
	// Unwritten are the events that may not have been written: those of
	// the chunks that failed, and the later chunks of their shards, in
	// order. Empty on success.
	Unwritten []Pending
	// Skipped lists the histories that refused their events.
	Skipped []Skipped
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
	term   atomic.Int64 // lease term the writes carry (Fence); 0: none
	busy   atomic.Bool  // inside Write
	// maintained holds when each history key last had its XTRIM MINID and
	// PEXPIRE sent; owned by Write (one call at a time).
	maintained map[string]time.Time
}

// Pacing of history maintenance (XTRIM MINID and PEXPIRE). Sending both for
// every channel of every chunk cost Redis two commands per channel per
// write, more than the events themselves at low rates; once per period per
// channel keeps the age bound and the expiry within one period of exact.
const (
	maxMaintainEvery = time.Second
	// maxMaintained bounds the map of maintained keys; past it the map is
	// cleared, which costs one round of maintenance.
	maxMaintained = 1 << 16
)

// NewWriter returns a Writer for layout on c, with an epoch of its own.
func NewWriter(c redis.UniversalClient, layout Layout, cfg WriterConfig) *Writer {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	if _, cluster := c.(*redis.ClusterClient); cluster || cfg.Lease == "" {
		cfg.Lease, cfg.Holder = "", ""
	}
	return &Writer{
		c: c, layout: layout, cfg: cfg,
		script:     redis.NewScript(writeLua),
		now:        time.Now,
		epoch:      hex.EncodeToString(b),
		maintained: make(map[string]time.Time),
	}
}

// maintainEvery is the least time between two maintenances of one history
// key: a tenth of its retention, at most maxMaintainEvery.
func maintainEvery(retention time.Duration) time.Duration {
	return min(retention/10, maxMaintainEvery)
}

// maintainDue reports whether history key is due its maintenance at now,
// and if so records it as done.
func (w *Writer) maintainDue(key string, now time.Time, retention time.Duration) bool {
	if retention <= 0 {
		return false // nothing to trim by age, no expiry
	}
	if last, ok := w.maintained[key]; ok && now.Sub(last) < maintainEvery(retention) && !now.Before(last) {
		return false
	}
	if len(w.maintained) >= maxMaintained {
		clear(w.maintained)
	}
	w.maintained[key] = now
	return true
}

// Fenced reports whether the writer's writes are fenced by a lease.
func (w *Writer) Fenced() bool { return w.cfg.Holder != "" }

// chunk is one script call: events of one shard.
type chunk struct {
	shard  int
	events []Pending
}

// Write appends events. It numbers the events that have no Seq yet (in
// place, in the caller's slice). Handing Result.Unwritten back to Write
// later, before newer events, never duplicates an event, even when a failed
// call had in fact reached Redis. The error is the first failure; it wraps
// ErrNotLeader if the fence refused a chunk.
func (w *Writer) Write(ctx context.Context, events []Pending) (res Result, err error) {
	if !w.busy.CompareAndSwap(false, true) {
		return Result{Unwritten: events}, ErrConcurrentWrite
	}
	defer w.busy.Store(false)
	for i := range events {
		if events[i].Seq == 0 {
			events[i].Seq = w.seq.Add(1)
		}
	}
	shards := w.split(events)
	var now time.Time // only read when some kind has a retention
	if w.ages() {
		now = w.now()
	}
	lim := w.kindArgs(now)
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
		if rerr := w.round(ctx, shards, idx, round, lim, now, failed, &res); rerr != nil && err == nil {
			err = rerr
		}
	}
	for i, s := range shards {
		if !failed[i] {
			continue
		}
		for r := range s {
			if s[r].events != nil { // written chunks are set to nil
				res.Unwritten = append(res.Unwritten, s[r].events...)
			}
		}
	}
	return res, err
}

// round sends chunk r of the shards idx, marks the written ones nil and the
// failed shards in failed, and adds what was written to res. It returns the
// first error.
func (w *Writer) round(ctx context.Context, shards [][]chunk, idx []int, r int, lim [event.NumKinds][3]any, now time.Time,
	failed []bool, res *Result) error {
	var first error
	fail := func(i int, err error) {
		failed[i] = true
		if first == nil {
			c := &shards[i][r]
			first = fmt.Errorf("write shard %d (%d events): %w", c.shard, len(c.events), err)
		}
	}
	for _, g := range w.byConn(ctx, shards, idx, r) {
		if g.err != nil {
			for _, i := range g.idx {
				fail(i, g.err)
			}
			continue
		}
		keyss := make([][]string, len(g.idx))
		argss := make([][]any, len(g.idx))
		for j, i := range g.idx {
			keyss[j], argss[j] = w.scriptArgs(shards[i][r], lim, now)
		}
		replies, errs := w.send(ctx, g.c, keyss, argss)
		for j, i := range g.idx {
			c := &shards[i][r]
			cerr := errs[j]
			if cerr == nil {
				cerr = res.add(replies[j], len(c.events))
			}
			if cerr != nil {
				fail(i, cerr)
				continue
			}
			c.events = nil
		}
	}
	return first
}

// send runs the write script once per chunk in one pipeline on c, and
// returns each chunk's reply or error. A chunk Redis has no script for
// (restarted, SCRIPT FLUSH) is sent again with the script's body.
func (w *Writer) send(ctx context.Context, c redis.Cmdable, keyss [][]string, argss [][]any) ([]any, []error) {
	replies := make([]any, len(keyss))
	errs := make([]error, len(keyss))
	all := make([]int, len(keyss))
	for j := range all {
		all[j] = j
	}
	again := w.sendSome(ctx, c, all, keyss, argss, replies, errs, false)
	if len(again) > 0 {
		w.sendSome(ctx, c, again, keyss, argss, replies, errs, true)
	}
	return replies, errs
}

// sendSome sends the chunks js (by EVALSHA, or EVAL if body) in one
// pipeline, followed by WAIT when replicas are required, and fills their
// replies and errors. It returns the chunks that answered NOSCRIPT.
func (w *Writer) sendSome(ctx context.Context, c redis.Cmdable, js []int, keyss [][]string, argss [][]any, replies []any, errs []error, body bool) []int {
	pipe := c.Pipeline()
	cmds := make([]*redis.Cmd, len(js))
	for k, j := range js {
		if body {
			cmds[k] = w.script.Eval(ctx, pipe, keyss[j], argss[j]...)
		} else {
			cmds[k] = w.script.EvalSha(ctx, pipe, keyss[j], argss[j]...)
		}
	}
	var wait *redis.IntCmd
	if w.cfg.MinReplicas > 0 {
		// Pipeliner has no Wait method; the pipeline's read deadline (the
		// client's read timeout) exceeds replicaWait.
		wait = redis.NewIntCmd(ctx, "wait", w.cfg.MinReplicas, w.replicaWait().Milliseconds())
		_ = pipe.Process(ctx, wait)
	}
	_, _ = pipe.Exec(ctx) // errors are read per command below
	var noScript []int
	for k, j := range js {
		replies[j], errs[j] = cmds[k].Result()
		switch {
		case !body && IsNoScript(errs[j]):
			noScript = append(noScript, j)
		case errs[j] == nil && wait != nil && !refused(replies[j]):
			errs[j] = w.replicated(wait)
		}
	}
	return noScript
}

// add records the reply of a chunk of n events: {appended, last id, {ch,
// err, ...}} or {-1}.
func (res *Result) add(reply any, n int) error {
	vals, ok := reply.([]any)
	if !ok || len(vals) == 0 {
		return fmt.Errorf("write script answered %v", reply)
	}
	appended, ok := vals[0].(int64)
	switch {
	case !ok:
		return fmt.Errorf("write script answered %v", reply)
	case appended < 0:
		return ErrNotLeader
	}
	res.Written += n
	if len(vals) < 3 {
		return nil
	}
	skipped, _ := vals[2].([]any)
	for k := 0; k+1 < len(skipped); k += 2 {
		ch, _ := skipped[k].(string)
		why, _ := skipped[k+1].(string)
		res.Skipped = append(res.Skipped, Skipped{Channel: ch, Reason: why})
	}
	return nil
}

// split groups events by shard, keeping their order, in chunks of at most
// MaxScriptEvents.
func (w *Writer) split(events []Pending) [][]chunk {
	if len(events) == 0 {
		return nil
	}
	if w.layout.Shards == 1 {
		return [][]chunk{chunks(0, events)}
	}
	byShard := make(map[int][]Pending)
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

func chunks(shard int, evs []Pending) []chunk {
	var out []chunk
	for len(evs) > 0 {
		n := min(len(evs), MaxScriptEvents)
		out = append(out, chunk{shard: shard, events: evs[:n:n]})
		evs = evs[n:]
	}
	return out
}

// ages reports whether the history of some kind is trimmed by age.
func (w *Writer) ages() bool {
	if w.cfg.Retention > 0 {
		return true
	}
	for _, l := range w.cfg.ByKind {
		if l.Retention > 0 {
			return true
		}
	}
	return false
}

// kindArgs returns, per kind, the MAXLEN, MINID and TTL arguments of
// writeLua for a history of that kind, MINID as of now.
func (w *Writer) kindArgs(now time.Time) [event.NumKinds][3]any {
	var out [event.NumKinds][3]any
	for k := range event.NumKinds {
		l := w.cfg.limits(k)
		minID, ttl := "0", "0"
		if l.Retention > 0 {
			minID = strconv.FormatInt(now.Add(-l.Retention).UnixMilli(), 10)
			ttl = strconv.FormatInt(max(l.Retention.Milliseconds(), 1), 10)
		}
		out[k] = [3]any{l.Len, minID, ttl}
	}
	return out
}

// scriptArgs returns the KEYS and ARGV of writeLua for c; lim holds the
// history limits per kind (kindArgs), and now decides which histories are
// due their trim by age and expiry (a history not due gets "0" for both).
func (w *Writer) scriptArgs(c chunk, lim [event.NumKinds][3]any, now time.Time) ([]string, []any) {
	keys := []string{w.layout.Feed(c.shard), w.layout.Channels(c.shard), w.layout.WriterMark(c.shard), w.layout.Fence(c.shard)}
	index := make(map[event.Channel]int)
	var limits []any
	evArgs := make([]any, 0, 5*len(c.events))
	for i := range c.events {
		e := &c.events[i]
		k, ok := index[e.Channel]
		if !ok {
			key := w.layout.History(e.Channel)
			keys = append(keys, key)
			k = len(keys) // Lua indexes from 1
			index[e.Channel] = k
			l := lim[e.Channel.Kind]
			if !w.maintainDue(key, now, w.cfg.limits(e.Channel.Kind).Retention) {
				l[1], l[2] = "0", "0" // MAXLEN always; age and expiry when due
			}
			limits = append(limits, l[0], l[1], l[2])
		}
		evArgs = append(evArgs, k, e.Seq, e.Channel.String(), e.TS, string(e.Data))
	}
	// A new mark's generation: unique, as the epoch is and seq only grows.
	gen := w.epoch + "." + strconv.FormatUint(c.events[0].Seq, 10)
	term := ""
	if t := w.term.Load(); t > 0 {
		term = strconv.FormatInt(t, 10)
	}
	args := make([]any, 0, 6+len(limits)+len(evArgs))
	args = append(args, w.cfg.FeedLen, w.epoch, w.cfg.Holder, term, gen, len(index))
	args = append(args, limits...)
	args = append(args, evArgs...)
	if w.cfg.Holder != "" {
		keys = append(keys, w.cfg.Lease) // last: the script reads KEYS[#KEYS]
	}
	return keys, args
}

// PendingOf wraps events for a first Write.
func PendingOf(events []event.Event) []Pending {
	out := make([]Pending, len(events))
	for i, e := range events {
		out[i] = Pending{Event: e}
	}
	return out
}
