package feed

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/streams"
)

// callTimeout bounds the replica's short Redis commands (heartbeats,
// reaping).
const callTimeout = 3 * time.Second

// Publisher is where a reader hands what it reads; *hub.Hub implements it.
type Publisher interface {
	Publish(msgs []*hub.Message)
}

// Reader reads one shard's feed with the replica's consumer group
// (streams.GroupReader, which reads with NOACK) and publishes each batch to
// the hub. Run is called once; Ready and Close may be called from any
// goroutine.
type Reader struct {
	*streams.GroupReader
	pub  Publisher
	read prometheus.Counter
}

// NewReader returns a reader of shard's feed for replica. It takes
// ownership of client and closes it when Run returns.
func NewReader(client redis.UniversalClient, layout streams.Layout, shard int, replica string, pub Publisher, log *slog.Logger, m *Metrics) *Reader {
	log = log.With("component", "reader", "shard", shard)
	bad := &streams.BadEntries{Log: log, Count: m.BadEntries.Inc}
	r := &Reader{pub: pub, read: m.EventsRead.WithLabelValues(strconv.Itoa(shard))}
	r.GroupReader = streams.NewGroupReader(client, streams.GroupReaderConfig{
		Layout:     layout,
		Shard:      shard,
		Group:      streams.GroupName(replica),
		Consumer:   replica,
		Handle:     r.publish,
		Bad:        bad.Report,
		ReadFailed: m.ReadErrors.Inc,
		GroupLost:  m.GroupsMade.Inc,
		Log:        log,
	})
	return r
}

// Run reads until ctx ends; see streams.GroupReader.Run.
func (r *Reader) Run(ctx context.Context) error { return r.GroupReader.Run(ctx) }

// publish hands one batch to the hub.
func (r *Reader) publish(events []event.Event) {
	msgs := make([]*hub.Message, len(events))
	for i, e := range events {
		msgs[i] = hub.NewMessage(e)
	}
	r.pub.Publish(msgs)
	r.read.Add(float64(len(msgs)))
}
