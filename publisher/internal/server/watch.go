package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/publisher/internal/feed"
	"github.com/tickwire/tickwire/publisher/internal/monitor"
	"github.com/tickwire/tickwire/shared/streams"
)

// option changes how New builds a replica. Only tests use one: to put a
// stage of their own between the feed readers and the hub.
type option func(*options)

type options struct {
	// stage wraps the hub as a shard's reader sees it.
	stage func(shard int, next feed.Publisher) feed.Publisher
}

// withFeedStage puts stage between each shard's reader and the hub (inside
// the monitor's tap, so a stage that blocks shows as a stall).
func withFeedStage(stage func(shard int, next feed.Publisher) feed.Publisher) option {
	return func(o *options) { o.stage = stage }
}

// watch builds the replica's stall monitor and refusal counter.
func (s *Server) watch(layout streams.Layout, client redis.UniversalClient, reg prometheus.Registerer, opts []option) {
	for _, o := range opts {
		o(&s.opts)
	}
	s.mon = monitor.New(monitor.Config{
		Client: client, Layout: layout, Group: streams.GroupName(s.cfg.ReplicaID),
		StallAfter: s.cfg.StallAfter, Log: s.log,
	}, reg)
	s.refusals = monitor.NewRefusals(reg, s.log)
}

// feedStage is what shard's reader publishes to: the hub, behind the
// monitor's tap.
func (s *Server) feedStage(shard int) feed.Publisher {
	var next feed.Publisher = s.hub
	if s.opts.stage != nil {
		next = s.opts.stage(shard, next)
	}
	return s.mon.Tap(shard, next)
}

// refuse counts and logs (rate-limited) a refused upgrade.
func (s *Server) refuse(r *http.Request, reason string, err error) {
	attrs := []any{"remote", r.RemoteAddr}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	s.refusals.Refuse(reason, attrs...)
}

// refuseUpgrade names why the upgrader refused r.
func (s *Server) refuseUpgrade(r *http.Request, err error) {
	reason := monitor.RefusedBadHandshake
	if !s.upgrader.CheckOrigin(r) {
		reason = monitor.RefusedForbiddenOrigin
	}
	s.refuse(r, reason, err)
}
