package obs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tickwire/tickwire/shared/buildinfo"
)

// NewRegistry returns a Prometheus registry with the Go runtime and process
// collectors and tickwire_build_info registered.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildinfo.Collector())
	return reg
}

// Mount registers /healthz, /readyz and /metrics on mux. ready returns nil
// when the process can do its work, or an error that says why not; /readyz
// answers 503 with that reason.
func Mount(mux *http.ServeMux, reg *prometheus.Registry, ready func() error) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
}

// WriteJSON writes v as a JSON response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteJSON writes v as a JSON response with status; for handlers of other
// packages that answer the same way.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }

// Bounds of an HTTP connection, the defaults of ServerLimits.
const (
	// DefaultReadHeaderTimeout bounds reading a request's headers.
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultReadTimeout bounds reading a whole request. A handler that
	// hijacks the connection must clear the deadline it leaves
	// (gorilla/websocket's Upgrade does).
	DefaultReadTimeout = 10 * time.Second
	// DefaultIdleTimeout is how long a keep-alive connection may wait for
	// its next request before the server closes it.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultMaxHeaderBytes bounds a request's headers: a JWT fits many
	// times over; net/http's own default is 1 MB.
	DefaultMaxHeaderBytes = 32 << 10
)

// ServerLimits bound what one HTTP connection may hold; a zero field takes
// its default above.
type ServerLimits struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
}

// withDefaults fills the zero fields.
func (l ServerLimits) withDefaults() ServerLimits {
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = DefaultReadTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return l
}

// NewServer returns an HTTP server for h whose connections are bounded by
// lim: without an idle timeout, every idle keep-alive connection would
// keep its goroutine and socket for ever. The server's own errors (bad
// handshakes, accept retries) go to log at debug level.
func NewServer(h http.Handler, log *slog.Logger, lim ServerLimits) *http.Server {
	lim = lim.withDefaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// Serve serves srv on ln until ctx ends, then shuts it down, letting
// requests in progress finish within drain. It returns nil after a clean
// shutdown, and the error otherwise.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, drain time.Duration) error {
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("http serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-served // Serve returns as soon as Shutdown closes the listener
	if err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}
