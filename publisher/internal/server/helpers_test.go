package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/auth"
	"github.com/tickwire/tickwire/shared/config"
	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/obs"
	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/shared/streams"
	"github.com/tickwire/tickwire/testkit/tape"
	"github.com/tickwire/tickwire/testkit/wsclient"
)

const testSecret = "test-secret-for-publisher-tests"

var prefixSeq atomic.Int64

// env is one Redis with a unique key prefix, and a writer for it.
type env struct {
	t      testing.TB
	redis  *redistest.Server
	rdb    *redis.Client
	common config.Common
	layout streams.Layout
	writer *streams.Writer
}

func newEnv(t *testing.T, shards int) *env {
	t.Helper()
	return newEnvWith(t, shards, redistest.Options{})
}

func newEnvB(b *testing.B) *env { return newEnvWith(b, 1, redistest.Options{}) }

func (e *env) startReplicaB(b *testing.B) *replica {
	return e.startReplica("bench", func(c *Config) { c.LogLevel = "warn" })
}

func tokenB(b *testing.B, sub string) string {
	tok, err := auth.Mint(testSecret, sub, time.Hour, nil, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

func newEnvWith(t testing.TB, shards int, opts redistest.Options) *env {
	t.Helper()
	srv := redistest.Start(t, opts)
	prefix := fmt.Sprintf("t%d", prefixSeq.Add(1))
	common := config.Common{RedisURL: srv.URL(), StreamPrefix: prefix, StreamShards: shards, LogLevel: "debug", LogFormat: "text"}
	layout, err := common.Layout()
	if err != nil {
		t.Fatal(err)
	}
	rdb := srv.Client()
	w := streams.NewWriter(rdb, layout, streams.WriterConfig{FeedLen: 10000, HistoryLen: 1000})
	return &env{t: t, redis: srv, rdb: rdb, common: common, layout: layout, writer: w}
}

// write appends events for channel ch with the given trade prices.
func (e *env) write(ch string, prices ...float64) {
	e.t.Helper()
	c, err := event.ParseChannel(ch)
	if err != nil {
		e.t.Fatal(err)
	}
	evs := make([]streams.Pending, len(prices))
	for i, p := range prices {
		data, _ := json.Marshal(event.Trade{Price: p, Size: 1})
		evs[i] = streams.Pending{Event: event.Event{Channel: c, TS: time.Now().UnixMilli(), Data: data}}
	}
	if _, err := e.writer.Write(context.Background(), evs); err != nil {
		e.t.Fatalf("write events: %v", err)
	}
}

// replica is an in-process publisher.
type replica struct {
	srv    *Server
	http   *httptest.Server
	cancel context.CancelFunc
	done   chan error
}

func (e *env) config(id string) Config {
	return Config{
		Common:          e.common,
		JWTSecret:       testSecret,
		JWTLeeway:       5 * time.Second,
		ReplicaID:       id,
		AuthTimeout:     5 * time.Second,
		Heartbeat:       20 * time.Second,
		MaxChannels:     1000,
		MaxConnsPerUser: 10,
		MaxConns:        10000,
		RateLimit:       50,
		RateBurst:       100,
		ReplicaTTL:      5 * time.Minute,
		QueueEvents:     8192,
		QueueBytes:      4 << 20,
		DrainTimeout:    10 * time.Second,
		HTTP:            DefaultHTTPLimits(),
		StallAfter:      5 * time.Second,
	}
}

// startReplica runs a replica until the test ends; mod may change its
// configuration first.
func (e *env) startReplica(id string, mod func(*Config)) *replica {
	e.t.Helper()
	cfg := e.config(id)
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		e.t.Fatal(err)
	}
	var out io.Writer = testWriter{e.t}
	level := slog.LevelInfo
	if _, bench := e.t.(*testing.B); bench {
		out, level = os.Stderr, slog.LevelWarn // a benchmark's log is only shown at its end
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
	srv, err := New(cfg, log.With("replica", id), obs.NewRegistry(), cfg.NewRedis)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// The replica's own http.Server, limits and shutdown hook included,
	// behind httptest's listener.
	hs := httptest.NewUnstartedServer(nil)
	hs.Config = srv.HTTPServer(stdlog.New(testWriter{e.t}, "http: ", 0))
	hs.Start()
	r := &replica{srv: srv, http: hs, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Run(ctx) }()
	e.t.Cleanup(r.stop)
	waitReady(e.t, r)
	return r
}

// stop drains the replica and waits for it, as SIGTERM would.
func (r *replica) stop() {
	r.cancel()
	<-r.done
	r.http.Close()
	r.done <- nil // a second stop returns at once
}

func waitReady(t testing.TB, r *replica) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.srv.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("replica not ready: %v", r.srv.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// token mints a token for sub that expires ttl from now; a ttl of zero or
// less mints one issued a minute before it expired (Mint refuses such a ttl).
func token(t *testing.T, sub string, ttl time.Duration, channels ...string) string {
	t.Helper()
	now := time.Now()
	if ttl <= 0 {
		now, ttl = now.Add(ttl-time.Minute), time.Minute
	}
	tok, err := auth.Mint(testSecret, sub, ttl, channels, now)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// frame and wireEvent are the kit's: any server frame, one event of it.
type (
	frame     = wsclient.Frame
	wireEvent = wsclient.Event
)

// client is the kit's WebSocket client; methods in this package's files add
// what only these tests need (raw reads, pings, a pump).
type client struct {
	*wsclient.Client
	t  *testing.T
	ws *websocket.Conn
}

// newClient wraps a connection the test dialed itself.
func newClient(t *testing.T, ws *websocket.Conn) *client {
	return &client{Client: wsclient.New(t, ws), t: t, ws: ws}
}

func wsURL(r *replica, query string) string {
	u := "ws" + strings.TrimPrefix(r.http.URL, "http") + "/v1/stream"
	if query != "" {
		u += "?" + query
	}
	return u
}

// dial connects with a token in the query string ("" for none).
func dial(t *testing.T, r *replica, tok string) *client {
	t.Helper()
	q := ""
	if tok != "" {
		q = "access_token=" + tok
	}
	kc := wsclient.Dial(t, wsURL(r, q), nil)
	return &client{Client: kc, t: t, ws: kc.WS}
}

// dialAuthed connects with a token for sub and reads the welcome.
func dialAuthed(t *testing.T, r *replica, sub string) *client {
	t.Helper()
	c := dial(t, r, token(t, sub, time.Hour))
	if f := c.Read(); f.Type != "welcome" {
		t.Fatalf("first frame %+v, want welcome", f)
	}
	return c
}

// collect reads events frames into the tape until ch has n events; a
// connection that ends first fails the test.
func (c *client) collect(tp *tape.Tape, ch string, n int) {
	c.t.Helper()
	if err := c.Collect(tp, ch, n); err != nil {
		c.t.Fatalf("read: %v", err)
	}
}

func httpStatus(t *testing.T, url string, hdr http.Header) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func websocketDial(url string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	return websocket.DefaultDialer.Dial(url, hdr)
}

func redisZ(member string, at time.Time) redis.Z {
	return redis.Z{Member: member, Score: float64(at.UnixMilli())}
}
