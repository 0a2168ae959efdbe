// Package feed connects a publisher replica to Redis: it owns the replica's
// consumer groups, reads each shard's feed into the hub, reads channel
// history for snapshots and resumes, and keeps the replica's heartbeat.
package feed

import (
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/shared/event"
)

// decode turns stream entries into messages, skipping entries that do not
// follow the layout (written by hand, or by something else). Skipped entries
// are counted and reported through p.
func decode(entries []redis.XMessage, p *poison) []*hub.Message {
	msgs := make([]*hub.Message, 0, len(entries))
	for _, xm := range entries {
		e, err := event.FromEntry(xm.ID, xm.Values)
		if err != nil {
			p.report(xm.ID, err)
			continue
		}
		msgs = append(msgs, hub.NewMessage(e))
	}
	return msgs
}

// poison counts and logs bad entries, logging at most one line a second so
// a stream full of them cannot flood the log.
type poison struct {
	log   *slog.Logger
	count func() // metric increment

	mu         sync.Mutex
	lastLog    time.Time
	suppressed int
}

func (p *poison) report(id string, err error) {
	p.count()
	p.mu.Lock()
	now := time.Now()
	if now.Sub(p.lastLog) < time.Second {
		p.suppressed++
		p.mu.Unlock()
		return
	}
	suppressed := p.suppressed
	p.suppressed = 0
	p.lastLog = now
	p.mu.Unlock()
	p.log.Warn("skipped bad stream entry", "id", id, "err", err, "also_skipped", suppressed)
}
