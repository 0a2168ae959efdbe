// Package feed connects a publisher replica to Redis: it runs the replica's
// group readers (streams.GroupReader) into the hub, reads channel history
// for snapshots and resumes, and keeps the replica's heartbeat.
package feed

import (
	"log/slog"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/shared/streams"
)

// decode turns stream entries into messages (streams.Decode), reporting the
// entries that do not decode to p.
func decode(entries []redis.XMessage, p *poison) []*hub.Message {
	events := streams.Decode(entries, p.report)
	msgs := make([]*hub.Message, len(events))
	for i, e := range events {
		msgs[i] = hub.NewMessage(e)
	}
	return msgs
}

// poison counts and logs bad entries, rate-limited (streams.BadEntries).
type poison struct {
	log   *slog.Logger
	count func() // metric increment

	once sync.Once
	bad  streams.BadEntries
}

func (p *poison) report(id string, err error) {
	p.once.Do(func() { p.bad.Log, p.bad.Count = p.log, p.count })
	p.bad.Report(id, err)
}
