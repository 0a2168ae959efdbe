// Package streams is tickwire's Redis contract, both directions: the key
// layout and a symbol's shard, the write script (write.lua) and the writer
// mark, consumer groups (group.lua) and the group reader, entry decoding,
// the channel-set janitor, the collector lease, and the classes of Redis
// errors (errors.go).
//
// Concurrency: a Layout is a value and safe for concurrent use. A Writer's
// Write is called from one goroutine at a time. GroupReader.Run and
// Janitor.Run run on the caller's goroutine until their context ends;
// GroupReader.Ready and Close, and Lease's methods, are safe for concurrent
// use.
package streams

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/tickwire/tickwire/shared/event"
)

// Layout is the key layout of one deployment: a prefix and a shard count.
// Every key of a shard carries the shard number as a Redis Cluster hash tag,
// so one script may touch all of them.
type Layout struct {
	Prefix string
	Shards int
}

// NewLayout checks prefix and shard count.
func NewLayout(prefix string, shards int) (Layout, error) {
	if prefix == "" {
		return Layout{}, fmt.Errorf("stream prefix is empty")
	}
	if strings.ContainsAny(prefix, "{}") {
		// Braces would be read as the Cluster hash tag instead of the
		// shard's, and the lease's term key could not share its slot.
		return Layout{}, fmt.Errorf("stream prefix %q: must not contain { or }", prefix)
	}
	if shards < 1 || shards > 1024 {
		return Layout{}, fmt.Errorf("stream shards %d: want 1 to 1024", shards)
	}
	return Layout{Prefix: prefix, Shards: shards}, nil
}

// Shard returns the shard of a symbol: fnv32a(symbol) % Shards.
func (l Layout) Shard(symbol string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(symbol))
	return int(h.Sum32() % uint32(l.Shards))
}

func (l Layout) shardPrefix(shard int) string {
	return l.Prefix + ":{" + strconv.Itoa(shard) + "}:"
}

// Feed is the stream of every event of a shard: <p>:{<s>}:feed.
func (l Layout) Feed(shard int) string { return l.shardPrefix(shard) + "feed" }

// History is a channel's history stream: <p>:{<s>}:hist:<channel>.
func (l Layout) History(ch event.Channel) string {
	return l.shardPrefix(l.Shard(ch.Symbol)) + "hist:" + ch.String()
}

// Channels is the set of a shard's channels that have history.
func (l Layout) Channels(shard int) string { return l.shardPrefix(shard) + "channels" }

// WriterMark records the last event a collector wrote to a shard
// ("<generation>/<epoch>:<seq>", write.lua), so a retried write skips what is already there.
func (l Layout) WriterMark(shard int) string { return l.shardPrefix(shard) + "writer" }

// Fence holds the highest lease term that wrote to a shard (write.lua): a
// collector whose term is lower has lost the lease, and its writes are
// refused. Kept in the shard's slot, so the fence holds on Redis Cluster.
func (l Layout) Fence(shard int) string { return l.shardPrefix(shard) + "fence" }

// Replicas is the sorted set of publisher replicas and their heartbeats.
func (l Layout) Replicas() string { return l.Prefix + ":replicas" }

// Leader is the lease of the active collector.
func (l Layout) Leader() string { return l.Prefix + ":collector:leader" }

// LeaderTerm counts the collector lease's terms: {<p>:collector:leader}:term.
// Its hash tag is the lease key itself, so on Redis Cluster both live in
// one slot and the lease script updates them together.
func (l Layout) LeaderTerm() string { return TermKey(l.Leader()) }

// TermKey is the term counter of the lease at key.
func TermKey(lease string) string { return "{" + lease + "}:term" }

// Feeds returns the feed key of every shard, in shard order.
func (l Layout) Feeds() []string {
	keys := make([]string, l.Shards)
	for s := range keys {
		keys[s] = l.Feed(s)
	}
	return keys
}
