package server

import (
	"errors"
	"log"
	"net/http"
	"time"

	"github.com/tickwire/tickwire/publisher/internal/web"
	"github.com/tickwire/tickwire/shared/obs"
)

// HTTPLimits bound what one HTTP connection may hold. They are not read
// from the environment: the defaults suit every deployment so far, and
// tests shorten them.
type HTTPLimits struct {
	// ReadHeaderTimeout bounds the reading of a request's headers, on
	// every route: a client dribbling headers is cut.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no request for that
	// long. WebSockets are hijacked and not affected.
	IdleTimeout time.Duration
	// ReadTimeout and WriteTimeout bound a whole request and its response
	// on the plain routes (health, metrics, the demo page), never on the
	// WebSocket (or a future streaming) route.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// MaxHeaderBytes caps the request line and headers; an access_token in
	// the query string must fit.
	MaxHeaderBytes int
}

// DefaultHTTPLimits are the limits of a running publisher.
func DefaultHTTPLimits() HTTPLimits {
	return HTTPLimits{
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second, // a large /metrics to a slow scraper
		MaxHeaderBytes:    64 << 10,         // tokens with long channels claims
	}
}

// Validate reports a limit that is not positive.
func (l HTTPLimits) Validate() error {
	if l.ReadHeaderTimeout <= 0 || l.IdleTimeout <= 0 || l.ReadTimeout <= 0 || l.WriteTimeout <= 0 || l.MaxHeaderBytes <= 0 {
		return errors.New("HTTP limits must all be positive")
	}
	return nil
}

// HTTPServer returns the replica's HTTP server: Handler with the
// connection limits, and a Shutdown that starts the drain (every WebSocket
// gets 1001), which http.Server cannot do itself for hijacked connections.
// errLog receives net/http's own messages.
func (s *Server) HTTPServer(errLog *log.Logger) *http.Server {
	l := s.cfg.HTTP
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ErrorLog:          errLog,
	}
	hs.RegisterOnShutdown(s.beginDrain)
	return hs
}

// Handler serves the WebSocket endpoint, health, metrics and the demo page.
// Plain routes get read and write deadlines; the WebSocket route gets none
// (the upgrader and the connection set their own).
func (s *Server) Handler() http.Handler {
	plain := http.NewServeMux()
	obs.Mount(plain, s.reg, s.Ready)
	plain.Handle("GET /", web.Handler())
	plain.Handle("GET /tickwire.js", withCORS(web.Handler(), s.upgrader.CheckOrigin))
	plain.Handle("GET /v1/history", s.history)
	plain.Handle("OPTIONS /v1/history", s.history)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/stream", s.serveStream)
	// An event stream lives long: no deadlines of the plain routes.
	mux.Handle("GET /v1/sse", withCORS(http.HandlerFunc(s.serveSSE), s.upgrader.CheckOrigin))
	mux.Handle("/", withDeadlines(plain, s.cfg.HTTP.ReadTimeout, s.cfg.HTTP.WriteTimeout))
	return mux
}

// withDeadlines bounds the reading of a request (body included) and the
// writing of its response: http.Server's ReadTimeout and WriteTimeout
// would cut long-lived streams too, so they are set per route.
func withDeadlines(h http.Handler, read, write time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		now := time.Now()
		// Errors mean the writer cannot take deadlines (only in tests that
		// wrap it); the server's other limits still hold.
		_ = rc.SetReadDeadline(now.Add(read))
		_ = rc.SetWriteDeadline(now.Add(write))
		h.ServeHTTP(w, r)
	})
}
