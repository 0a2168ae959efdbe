package monitor

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/tickwire/tickwire/shared/auth"
)

// Reasons a connection is refused, the labels of
// tickwire_publisher_connections_refused_total. Each starts at zero.
const (
	RefusedUnauthorized    = "unauthorized"     // no token, or an invalid one
	RefusedTokenExpired    = "token_expired"    // the token's exp has passed
	RefusedAuthTimeout     = "auth_timeout"     // no auth frame within PUBLISHER_AUTH_TIMEOUT
	RefusedForbiddenOrigin = "forbidden_origin" // a browser Origin not allowed
	RefusedBadHandshake    = "bad_handshake"    // not a valid WebSocket upgrade
	RefusedFull            = "full"             // PUBLISHER_MAX_CONNS reached
	RefusedUserLimit       = "user_limit"       // PUBLISHER_MAX_CONNS_PER_USER reached
	RefusedDraining        = "draining"         // the replica is shutting down
)

// RefusedReasons lists every reason, in the order of the table in
// docs/metrics.md.
var RefusedReasons = []string{
	RefusedUnauthorized, RefusedTokenExpired, RefusedAuthTimeout, RefusedForbiddenOrigin,
	RefusedBadHandshake, RefusedFull, RefusedUserLimit, RefusedDraining,
}

// Refusal log rate: at most refusalBurst lines at once and refusalRate a
// second after that; the lines left out are counted in the next one.
const (
	refusalRate  = 5
	refusalBurst = 10
)

// Refusals counts refused connections by reason and logs them at INFO,
// rate-limited so that a flood of bad clients cannot flood the log. Safe
// for concurrent use.
type Refusals struct {
	total *prometheus.CounterVec
	log   *slog.Logger
	lim   *rate.Limiter

	mu      sync.Mutex
	dropped int // lines left out since the last one logged
}

// NewRefusals registers tickwire_publisher_connections_refused_total on reg
// with every reason at zero.
func NewRefusals(reg prometheus.Registerer, log *slog.Logger) *Refusals {
	r := &Refusals{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickwire_publisher_connections_refused_total", Help: "Connections refused before they were served, by reason.",
		}, []string{"reason"}),
		log: log.With("component", "refusals"),
		lim: rate.NewLimiter(refusalRate, refusalBurst),
	}
	for _, reason := range RefusedReasons {
		r.total.WithLabelValues(reason)
	}
	reg.MustRegister(r.total)
	return r
}

// Refuse counts a refusal and logs it (unless over the log rate) with
// attrs, e.g. "remote", addr, "err", err.
func (r *Refusals) Refuse(reason string, attrs ...any) {
	r.total.WithLabelValues(reason).Inc()
	r.mu.Lock()
	if !r.lim.AllowN(time.Now(), 1) {
		r.dropped++
		r.mu.Unlock()
		return
	}
	dropped := r.dropped
	r.dropped = 0
	r.mu.Unlock()
	if dropped > 0 {
		attrs = append(attrs, "refusals_not_logged", dropped)
	}
	r.log.Info("connection refused", append([]any{"reason", reason}, attrs...)...)
}

// AuthReason names the refusal for a token verification error.
func AuthReason(err error) string {
	if errors.Is(err, auth.ErrTokenExpired) {
		return RefusedTokenExpired
	}
	return RefusedUnauthorized
}
