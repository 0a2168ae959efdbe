package pipeline

import (
	"log/slog"

	"github.com/tickwire/tickwire/collector/internal/source"
	"github.com/tickwire/tickwire/shared/event"
)

// Encode returns the edge where events leave the stages for Redis: each
// event's typed data is encoded to JSON there, once, and the event passed
// to add (the batcher's Add), which keeps and retries the bytes. An event
// whose data cannot be encoded (no source or stage here makes one) is
// logged and left out. The returned function is safe for concurrent use
// if add is.
func Encode(add func(event.Event), log *slog.Logger) func(source.Event) {
	return func(e source.Event) {
		out, err := e.Encode()
		if err != nil {
			log.Error("event left out", "err", err)
			return
		}
		add(out)
	}
}
