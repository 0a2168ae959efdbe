package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/config"
	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/obs"
	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/shared/streams"
	"github.com/tickwire/tickwire/testkit/tape"
	"github.com/tickwire/tickwire/testkit/wsclient"
)

// The whole path on a Redis Cluster of three masters with four shards:
// every shard's keys share a slot (hash tags), the write script runs per
// shard, and two replicas deliver the same events, snapshot and resume
// included.
func TestRedisCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	common := config.Common{
		RedisURL:          "redis://" + cl.Addrs()[0] + "/0",
		RedisClusterAddrs: cl.Addrs(),
		StreamPrefix:      "cl",
		StreamShards:      4,
		LogLevel:          "info",
		LogFormat:         "text",
	}
	layout, err := common.Layout()
	if err != nil {
		t.Fatal(err)
	}
	wc, err := common.NewRedis(config.ClientOptions{Name: "test-writer"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wc.Close() })
	w := streams.NewWriter(wc, layout, streams.WriterConfig{FeedLen: 10000, HistoryLen: 1000})
	symbols := []string{"AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "JPM"}
	write := func(round int) {
		var evs []streams.Pending
		for i, s := range symbols {
			data, _ := json.Marshal(event.Trade{Price: float64(100*round + i), Size: 1})
			evs = append(evs, streams.Pending{Event: event.Event{Channel: event.Channel{Kind: event.KindTrade, Symbol: s}, TS: time.Now().UnixMilli(), Data: data}})
		}
		if _, err := w.Write(context.Background(), evs); err != nil {
			t.Fatalf("write to the cluster: %v", err)
		}
	}
	write(0)

	e := &env{t: t, common: common, layout: layout}
	var replicas []*replica
	for _, id := range []string{"pub-1", "pub-2"} {
		cfg := e.config(id)
		log := slog.New(slog.NewTextHandler(testWriter{t}, nil)).With("replica", id)
		srv, err := New(cfg, log, obs.NewRegistry(), cfg.NewRedis)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &replica{srv: srv, http: httptest.NewServer(srv.Handler()), cancel: cancel, done: make(chan error, 1)}
		go func() { r.done <- srv.Run(ctx) }()
		t.Cleanup(r.stop)
		waitReady(t, r)
		replicas = append(replicas, r)
	}
	tapes := make([]*tape.Tape, 2)
	clients := make([]*client, 2)
	for i, r := range replicas {
		c := dialAuthed(t, r, fmt.Sprintf("user-%d", i))
		c.Subscribe(map[string]any{"channels": []string{"trade:*"}})
		snap := c.Read()
		if snap.Type != "snapshot" || len(snap.Events) != len(symbols) {
			t.Fatalf("replica %d: got %+v, want a snapshot of %d symbols across the shards", i+1, snap, len(symbols))
		}
		tapes[i], clients[i] = tape.New(t), c
		wsclient.Record(tapes[i], snap.Events)
	}
	for round := 1; round <= 5; round++ {
		write(round)
	}
	for i, c := range clients {
		for _, s := range symbols {
			c.collect(tapes[i], "trade:"+s, 6)
		}
	}
	for _, s := range symbols {
		if !slices.Equal(tapes[0].IDs("trade:"+s), tapes[1].IDs("trade:"+s)) {
			t.Fatalf("trade:%s: replicas disagree", s)
		}
	}
	// Resume on the cluster: history of one channel after its first id.
	first := tapes[0].IDs("trade:NVDA")[0]
	c := dialAuthed(t, replicas[1], "resumer")
	sub := c.Subscribe(map[string]any{"channels": []string{"trade:NVDA"}, "since": map[string]string{"trade:NVDA": first}})
	if !sub.Recovered["trade:NVDA"] {
		t.Fatalf("subscribed %+v, want recovered", sub)
	}
	rt := tape.New(t)
	c.collect(rt, "trade:NVDA", 5)
	if !slices.Equal(rt.IDs("trade:NVDA"), tapes[0].IDs("trade:NVDA")[1:]) {
		t.Fatalf("resume replayed %v, want %v", rt.IDs("trade:NVDA"), tapes[0].IDs("trade:NVDA")[1:])
	}
}
