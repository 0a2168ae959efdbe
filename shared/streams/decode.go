package streams

import (
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/event"
)

// Decode turns stream entries into events, skipping entries that do not
// follow the layout (written by hand, or by something else); each skipped
// entry is handed to bad, which may be nil.
func Decode(entries []redis.XMessage, bad func(id string, err error)) []event.Event {
	out := make([]event.Event, 0, len(entries))
	for _, xm := range entries {
		e, err := event.FromEntry(xm.ID, xm.Values)
		if err != nil {
			if bad != nil {
				bad(xm.ID, err)
			}
			continue
		}
		out = append(out, e)
	}
	return out
}

// BadEntries counts and logs entries that do not decode, logging at most
// one line a second so that a stream full of them cannot flood the log.
// Report is safe for concurrent use.
type BadEntries struct {
	Log   *slog.Logger
	Count func() // metric increment; may be nil

	mu         sync.Mutex
	lastLog    time.Time
	suppressed int
}

// Report counts one bad entry and logs it unless a line was logged within
// the last second.
func (p *BadEntries) Report(id string, err error) {
	if p.Count != nil {
		p.Count()
	}
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
	p.Log.Warn("skipped bad stream entry", "id", id, "err", err, "also_skipped", suppressed)
}
