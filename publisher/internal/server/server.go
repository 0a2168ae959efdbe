package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/tickwire/tickwire/publisher/internal/feed"
	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/publisher/internal/monitor"
	"github.com/tickwire/tickwire/publisher/internal/wsconn"
	"github.com/tickwire/tickwire/shared/auth"
	"github.com/tickwire/tickwire/shared/config"
	"github.com/tickwire/tickwire/shared/obs"
)

// teardownTimeout bounds the removal of this replica's groups at exit.
const teardownTimeout = 3 * time.Second

// Server is one publisher replica. Build it with New, serve Handler over
// HTTP, and call Run once; Run drains the connections when its context ends.
type Server struct {
	cfg      Config
	log      *slog.Logger
	reg      *prometheus.Registry
	client   redis.UniversalClient // short commands: history, heartbeats
	hub      *hub.Hub
	readers  []*feed.Reader
	live     *feed.Liveness
	deps     *wsconn.Deps
	upgrader websocket.Upgrader
	users    *users
	mon      *monitor.Monitor  // stall watchdog (watch.go)
	refusals *monitor.Refusals // refused connections
	opts     options
	history  *historyService // GET /v1/history
	// reads bounds the replica's concurrent history reads, shared by
	// subscribes (feed.History) and GET /v1/history.
	reads *hub.Semaphore

	// shutdown ends when draining starts: event streams end (WebSocket
	// connections are told by beginDrain).
	shutdown    context.Context
	shutdownNow context.CancelFunc

	mu       sync.Mutex // guards draining, conns and the Add side of active
	draining bool
	nconns   int
	active   sync.WaitGroup // connections being served
	// conns are the WebSocket connections served, told to go away when
	// draining starts: a map entry each, where a context hook per
	// connection took ten times the memory.
	conns map[*wsconn.Conn]struct{}
}

// ClientFactory makes a Redis client with a name for CLIENT LIST.
type ClientFactory func(o config.ClientOptions) (redis.UniversalClient, error)

// New builds a replica. It creates one Redis client for short commands and
// one per feed shard for the blocking reads; it dials nothing yet.
func New(cfg Config, log *slog.Logger, reg *prometheus.Registry, newClient ClientFactory, opts ...option) (*Server, error) {
	layout, err := cfg.Layout()
	if err != nil {
		return nil, err
	}
	verifier, err := auth.NewVerifier(cfg.AuthConfig())
	if err != nil {
		return nil, fmt.Errorf("token verifier: %w", err)
	}
	client, err := newClient(config.ClientOptions{Name: "tickwire-publisher-" + cfg.ReplicaID})
	if err != nil {
		return nil, err
	}
	fm := feed.NewMetrics(reg)
	s := &Server{
		cfg:    cfg,
		log:    log,
		reg:    reg,
		client: client,
		hub:    hub.New(),
		live:   feed.NewLiveness(client, layout, cfg.ReplicaID, cfg.ReplicaTTL, log, fm),
		users:  newUsers(cfg.MaxConnsPerUser),
		conns:  make(map[*wsconn.Conn]struct{}),
		reads:  hub.NewSemaphore(feed.ConcurrentReads),
	}
	s.shutdown, s.shutdownNow = context.WithCancel(context.Background())
	s.watch(layout, client, reg, opts)
	for shard := 0; shard < layout.Shards; shard++ {
		rc, err := newClient(config.ClientOptions{Name: fmt.Sprintf("tickwire-reader-%s-%d", cfg.ReplicaID, shard), PoolSize: 2})
		if err != nil {
			s.closeClients()
			return nil, err
		}
		s.readers = append(s.readers, feed.NewReader(rc, layout, shard, cfg.ReplicaID, s.feedStage(shard), log, fm))
	}
	s.deps = &wsconn.Deps{
		Config: wsconn.Config{
			Replica:     cfg.ReplicaID,
			AuthTimeout: cfg.AuthTimeout,
			Heartbeat:   cfg.Heartbeat,
			MaxChannels: cfg.MaxChannels,
			RateLimit:   cfg.RateLimit,
			RateBurst:   cfg.RateBurst,
			Leeway:      cfg.JWTLeeway,
			QueueEvents: cfg.QueueEvents,
			QueueBytes:  cfg.QueueBytes,
		},
		Hub:      s.hub,
		History:  feed.NewHistory(client, layout, s.reads, log, fm),
		Verifier: verifier,
		Users:    s.users,
		Metrics:  wsconn.NewMetrics(reg),
		Log:      log.With("component", "conn"),
		Refused:  s.refusals.Refuse,
		Writers:  wsconn.NewWriterPool(wsconn.DefaultPoolIdle),
		Poller:   wsconn.NewPoller(log.With("component", "poller")),
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: 5 * time.Second,
		// Client frames are small; larger ones take more reads. Each
		// connection keeps this buffer for its whole life.
		ReadBufferSize:  288,
		WriteBufferSize: 16 << 10,
		// Idle connections hold no write buffer: it is taken from the pool
		// only while a frame is being written.
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     originChecker(cfg.AllowedOrigins),
		// permessage-deflate, without context takeover (gorilla's only
		// mode): each frame is compressed on its own, so no per-connection
		// compression state outlives a write.
		EnableCompression: cfg.Compression,
	}
	s.history = newHistoryService(client, layout, s.reads, verifier.Verify, s.upgrader.CheckOrigin, log)
	s.registerGauges()
	s.live.CountConns(func() int { s.mu.Lock(); defer s.mu.Unlock(); return s.nconns }) // published with the heartbeat
	return s, nil
}

func (s *Server) registerGauges() {
	s.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tickwire_publisher_subscriptions", Help: "Subscriptions held by this replica's connections (a KIND:* counts once).",
		}, func() float64 { _, n := s.hub.Stats(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tickwire_publisher_ready", Help: "1 when /readyz answers 200.",
		}, func() float64 {
			if s.Ready() != nil {
				return 0
			}
			return 1
		}),
	)
}

// Ready returns nil when every shard's reader is reading and the replica is
// not draining.
func (s *Server) Ready() error {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		return errors.New("draining")
	}
	for _, r := range s.readers {
		if err := r.Ready(); err != nil {
			return err
		}
	}
	if err := s.deps.Poller.Err(); err != nil {
		return fmt.Errorf("cannot read clients: %w", err)
	}
	return s.mon.Ready()
}

// Run reads the feeds and keeps the heartbeat until ctx ends, then drains:
// new upgrades are refused, every client gets close 1001, connections get
// DrainTimeout to finish, and the replica's groups are destroyed. It closes
// the Redis clients before it returns.
func (s *Server) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, r := range s.readers {
		g.Go(func() error { return r.Run(gctx) })
	}
	g.Go(func() error { return s.live.Run(gctx) })
	g.Go(func() error { return s.mon.Run(gctx) })
	<-gctx.Done()
	s.drain()
	err := g.Wait()
	s.deps.Poller.Stop()  // after the drain: ends the connections left over
	s.deps.Writers.Stop() // then their writers have stopped too
	tctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
	defer cancel()
	if terr := s.live.Teardown(tctx); terr != nil {
		s.log.Warn("could not remove this replica's groups; a live replica will reap them", "err", terr)
	}
	s.closeClients()
	return err
}

// beginDrain refuses new upgrades and sends 1001 to every client. It does
// not wait, and may be called more than once: the HTTP server's Shutdown
// calls it, and so does Run when its context ends.
func (s *Server) beginDrain() {
	s.mu.Lock()
	s.draining = true
	conns := make([]*wsconn.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.shutdownNow()
	for _, c := range conns {
		c.GoAway()
	}
}

// track adds c to the connections told to go away when draining starts,
// and returns what removes it. A connection upgraded after the drain began
// is told at once.
func (s *Server) track(c *wsconn.Conn) (untrack func()) {
	s.mu.Lock()
	draining := s.draining
	if !draining {
		s.conns[c] = struct{}{}
	}
	s.mu.Unlock()
	if draining {
		c.GoAway()
	}
	return func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}
}

// drain begins the drain and waits for the connections, at most
// DrainTimeout.
func (s *Server) drain() {
	s.beginDrain()
	s.mu.Lock()
	n := s.nconns
	s.mu.Unlock()
	s.log.Info("draining", "connections", n, "timeout", s.cfg.DrainTimeout)
	done := make(chan struct{})
	go func() {
		s.active.Wait()
		close(done)
	}()
	t := time.NewTimer(s.cfg.DrainTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("drain timed out; connections left to the HTTP server's close")
	}
}

func (s *Server) closeClients() {
	_ = s.client.Close()
	// Readers close their own clients when their Run ends; close those
	// that never ran.
	for _, r := range s.readers {
		r.Close()
	}
}

// serveStream upgrades a request to the client protocol and serves it.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	release, ok := s.acquireConn(w, r)
	if !ok {
		return
	}
	ident, tokenErr, refused := s.verifyUpgrade(w, r)
	if refused {
		release()
		return
	}
	ws, br, err := wsconn.Upgrade(&s.upgrader, w, r)
	if err != nil {
		release()
		s.refuseUpgrade(r, err)
		return // the upgrader has answered (400 or 403)
	}
	// Start the connection and let this handler return: net/http then
	// frees the request and its buffers, which an idle connection would
	// otherwise hold for its whole life. From here the connection is the
	// Server's (the drain waits for its release): read by the Poller, or
	// on a goroutine of its own where there is none.
	if tokenErr != nil {
		go func() {
			defer release()
			s.refuseUpgraded(ws, tokenErrorCode(tokenErr), tokenErr.Error())
		}()
		return
	}
	c := wsconn.New(s.deps, ws, br, ident)
	untrack := s.track(c)
	c.Start(ident != nil, func() { // the drain tells it to go (track)
		untrack()
		release()
	})
}

// acquireConn counts one more connection and returns the function that
// counts it out, or answers 503 when the replica drains or is full.
func (s *Server) acquireConn(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	s.mu.Lock()
	switch {
	case s.draining:
		s.mu.Unlock()
		s.refuse(r, monitor.RefusedDraining, nil)
		obs.WriteJSON(w, http.StatusServiceUnavailable, httpError{"unavailable", "replica is shutting down; connect to another"})
		return nil, false
	case s.nconns >= s.cfg.MaxConns:
		s.mu.Unlock()
		s.refuse(r, monitor.RefusedFull, nil)
		obs.WriteJSON(w, http.StatusServiceUnavailable, httpError{"unavailable", "replica is at its connection limit; connect to another"})
		return nil, false
	}
	s.nconns++
	s.active.Add(1)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.nconns--
		s.mu.Unlock()
		s.active.Done()
	}, true
}

// verifyUpgrade verifies the token of an upgrade request, if it has one.
// A failed token in the Authorization header (or on a request that is no
// WebSocket upgrade) is answered here with HTTP 401: refused. A failed
// access_token is returned as tokenErr, to be refused after the upgrade,
// because a browser cannot read an HTTP status on a WebSocket.
func (s *Server) verifyUpgrade(w http.ResponseWriter, r *http.Request) (ident *auth.Identity, tokenErr error, refused bool) {
	tok, fromHeader := requestToken(r)
	if tok == "" {
		return nil, nil, false
	}
	id, err := s.deps.Verifier.Verify(tok)
	switch {
	case err == nil:
		return &id, nil, false
	}
	s.refuse(r, monitor.AuthReason(err), err)
	switch {
	case fromHeader || !websocket.IsWebSocketUpgrade(r):
		code := tokenErrorCode(err)
		s.deps.Metrics.Errors.WithLabelValues(code).Inc()
		obs.WriteJSON(w, http.StatusUnauthorized, httpError{code, err.Error()})
		return nil, nil, true
	default:
		return nil, err, false
	}
}

type httpError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// requestToken takes the token from the Authorization header or, for
// browsers, the access_token query parameter, and says which.
func requestToken(r *http.Request) (token string, fromHeader bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, t, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(t), true
		}
		return strings.TrimSpace(h), true // let verification say what is wrong
	}
	return r.URL.Query().Get("access_token"), false
}

// tokenErrorCode is the protocol's code for a refused token: token_expired
// when expiry is its only fault, so the client fetches a fresh one.
func tokenErrorCode(err error) string {
	if errors.Is(err, auth.ErrTokenExpired) {
		return wsconn.CodeTokenExpired
	}
	return wsconn.CodeUnauthorized
}
