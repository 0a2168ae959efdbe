// Package status builds the report of `publisher status`: who writes, how
// full and how fresh each feed is, and how each replica reads it, from
// Redis alone. It reads what the collector and the replicas leave there
// (the lease, the feeds, <p>:replicas, each replica's hash, XINFO GROUPS
// and CONSUMERS) and changes nothing. Collect is safe for concurrent use;
// a Report is a value.
package status

import (
	"time"

	"github.com/tickwire/tickwire/publisher/internal/feed"
	"github.com/tickwire/tickwire/shared/config"
)

// Config is what `publisher status` reads from the environment: the
// replicas' own settings, so that it looks where they write.
type Config struct {
	config.Common
	StallAfter time.Duration `envconfig:"PUBLISHER_STALL_AFTER" default:"5s" desc:"a replica whose lag grows while its readers make no progress this long is stalled"`
}

// States of a replica.
const (
	StateOK      = "ok"
	StateBehind  = "behind"  // an entry waits longer than StallAfter, but the reader reads: slow
	StateStalled = "stalled" // an entry waits longer than StallAfter, and the reader has not read for as long
	StateDown    = "down"    // no heartbeat within DownAfter, or a group missing
)

// DownAfter is how old a heartbeat may be before its replica counts as
// down: three missed beats.
const DownAfter = 3 * feed.HeartbeatInterval

// Report is the state of one tickwire deployment at Time (Redis's clock).
type Report struct {
	Time      time.Time `json:"time"`
	Prefix    string    `json:"prefix"`
	Collector Collector `json:"collector"`
	Feeds     []Feed    `json:"feeds"`
	Replicas  []Replica `json:"replicas"`
	// Problems lists what makes Healthy false, one sentence each.
	Problems []string `json:"problems"`
}

// Healthy reports whether nothing is stalled or down: the exit code of
// `publisher status` is 0 exactly then.
func (r *Report) Healthy() bool { return len(r.Problems) == 0 }

// Collector is the holder of the collector lease.
type Collector struct {
	Holder string   `json:"holder"` // "" when no collector holds the lease
	TTL    Duration `json:"ttl"`    // what is left of the lease
}

// Feed is one shard's feed stream.
type Feed struct {
	Shard  int    `json:"shard"`
	Key    string `json:"key"`
	Length int64  `json:"length"`
	LastID string `json:"last_id"` // "" when empty
	// LastAge is how long ago the newest entry was written (its id's time).
	LastAge Duration `json:"last_age"`
}

// Replica is one publisher replica, from its heartbeat and its groups.
type Replica struct {
	ID        string   `json:"id"`
	Heartbeat Duration `json:"heartbeat_age"` // since the last heartbeat; -1 when none
	Conns     int64    `json:"conns"`         // -1 when not published
	Version   string   `json:"version,omitempty"`
	State     string   `json:"state"`
	Reason    string   `json:"reason,omitempty"`
	Shards    []Group  `json:"shards"`
}

// Group is a replica's consumer group on one shard's feed.
type Group struct {
	Shard   int   `json:"shard"`
	Exists  bool  `json:"exists"`
	Lag     int64 `json:"lag"` // entries not yet read; -1 when Redis cannot tell
	Pending int64 `json:"pending"`
	// Idle is the time since the group's reader last read (XINFO CONSUMERS
	// idle); -1 when it never read.
	Idle Duration `json:"idle"`
	// Waiting is how long the oldest unread entry has waited; 0 when none.
	Waiting Duration `json:"waiting"`
	State   string   `json:"state"`
}

// Duration is a time.Duration that is a string in JSON ("1.5s").
type Duration time.Duration

// MarshalText writes the duration as time.Duration prints it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads what MarshalText wrote.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}
