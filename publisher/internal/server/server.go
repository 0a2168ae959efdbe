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
	"github.com/tickwire/tickwire/publisher/internal/web"
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

	// shutdown ends when draining starts: connections send 1001.
	shutdown    context.Context
	shutdownNow context.CancelFunc

	mu       sync.Mutex // guards draining and the Add side of active
	draining bool
	nconns   int
	active   sync.WaitGroup // connections being served
}

// ClientFactory makes a Redis client with a name for CLIENT LIST.
type ClientFactory func(o config.ClientOptions) (redis.UniversalClient, error)

// New builds a replica. It creates one Redis client for short commands and
// one per feed shard for the blocking reads; it dials nothing yet.
func New(cfg Config, log *slog.Logger, reg *prometheus.Registry, newClient ClientFactory) (*Server, error) {
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
	}
	s.shutdown, s.shutdownNow = context.WithCancel(context.Background())
	for shard := 0; shard < layout.Shards; shard++ {
		rc, err := newClient(config.ClientOptions{Name: fmt.Sprintf("tickwire-reader-%s-%d", cfg.ReplicaID, shard), PoolSize: 2})
		if err != nil {
			s.closeClients()
			return nil, err
		}
		s.readers = append(s.readers, feed.NewReader(rc, layout, shard, cfg.ReplicaID, s.hub, log, fm))
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
		History:  feed.NewHistory(client, layout, log, fm),
		Verifier: verifier,
		Users:    s.users,
		Metrics:  wsconn.NewMetrics(reg),
		Log:      log.With("component", "conn"),
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: 5 * time.Second,
		ReadBufferSize:   512, // client frames are small; larger ones take more reads
		WriteBufferSize:  16 << 10,
		// Idle connections hold no write buffer: it is taken from the pool
		// only while a frame is being written.
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     originChecker(cfg.AllowedOrigins),
	}
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

// Handler serves the WebSocket endpoint, health, metrics and the demo page.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/stream", s.serveStream)
	obs.Mount(mux, s.reg, s.Ready)
	mux.Handle("GET /", web.Handler())
	return mux
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
	return nil
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
	<-gctx.Done()
	s.drain()
	err := g.Wait()
	tctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
	defer cancel()
	if terr := s.live.Teardown(tctx); terr != nil {
		s.log.Warn("could not remove this replica's groups; a live replica will reap them", "err", terr)
	}
	s.closeClients()
	return err
}

// drain stops accepting, sends 1001 to every client and waits for the
// connections, at most DrainTimeout.
func (s *Server) drain() {
	s.mu.Lock()
	s.draining = true
	n := s.nconns
	s.mu.Unlock()
	s.shutdownNow()
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
	s.mu.Lock()
	switch {
	case s.draining:
		s.mu.Unlock()
		obs.WriteJSON(w, http.StatusServiceUnavailable, httpError{"unavailable", "replica is shutting down; connect to another"})
		return
	case s.nconns >= s.cfg.MaxConns:
		s.mu.Unlock()
		obs.WriteJSON(w, http.StatusServiceUnavailable, httpError{"unavailable", "replica is at its connection limit; connect to another"})
		return
	}
	s.nconns++
	s.active.Add(1)
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		s.nconns--
		s.mu.Unlock()
		s.active.Done()
	}

	var ident *auth.Identity
	if token := requestToken(r); token != "" {
		id, err := s.deps.Verifier.Verify(token)
		if err != nil {
			release()
			s.deps.Metrics.Errors.WithLabelValues(wsconn.CodeUnauthorized).Inc()
			obs.WriteJSON(w, http.StatusUnauthorized, httpError{wsconn.CodeUnauthorized, err.Error()})
			return
		}
		ident = &id
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		release()
		return // the upgrader has answered (400 or 403)
	}
	// Serve the connection on a goroutine of its own, owned by the Server
	// (drain waits for it), and let this handler return: net/http then
	// frees the request and its buffers, which an idle connection would
	// otherwise hold for its whole life.
	c := wsconn.New(s.deps, ws, ident)
	go func() {
		defer release()
		c.Serve(s.shutdown, ident != nil)
	}()
}

type httpError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// requestToken takes the token from the Authorization header or, for
// browsers, the access_token query parameter.
func requestToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, t, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(t)
		}
		return strings.TrimSpace(h) // let verification say what is wrong
	}
	return r.URL.Query().Get("access_token")
}

// originChecker allows requests without Origin (not browsers), and browser
// origins by the PUBLISHER_ALLOWED_ORIGINS list, or only the request's own
// host when the list is empty.
func originChecker(allowed []string) func(*http.Request) bool {
	any := false
	set := make(map[string]bool, len(allowed))
	for _, o := range allowed {
		if o == "*" {
			any = true
		}
		set[strings.ToLower(strings.TrimSuffix(o, "/"))] = true
	}
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		if origin == "" || any {
			return true
		}
		if len(allowed) == 0 {
			_, host, ok := strings.Cut(origin, "://")
			return ok && strings.EqualFold(host, r.Host)
		}
		return set[strings.ToLower(origin)]
	}
}
