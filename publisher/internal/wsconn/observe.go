package wsconn

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// What an operator sees of one connection: a log line when it opens and
// one when it closes, refusals counted and logged (rate-limited) through
// Deps.Refused, and a writer that stops making progress counted and closed.

// connStats is what the close line reports and the writer check compares.
// The atomics are written by the writer and the reader; the check* fields
// belong to the clock's heartbeat (clock.go), the only caller of
// stalledWriter.
type connStats struct {
	start     time.Time
	delivered atomic.Int64 // events written to the client
	writes    atomic.Int64 // frames written by the writer
	clientEnd atomic.Value // error that ended the reader (for the client's close code)

	checkWrites int64 // writes at the previous heartbeat
	checkQueued bool  // events were queued at the previous heartbeat
}

// lifecycle logs the open line now, and returns what logs the close line;
// Serve defers it. The writer check runs on the clock (clock.go).
func (c *Conn) lifecycle() func() {
	c.stats.start = time.Now()
	attrs := []any{"remote", c.out.remote()}
	if c.ident.Subject != "" {
		attrs = append(attrs, "user", c.ident.Subject)
	}
	c.d.Log.Info("connection opened", attrs...)
	return c.logClose
}

// logClose logs the close line: who closed, with what code and reason, how
// long the connection lived and how many events it was sent.
func (c *Conn) logClose() {
	c.q.mu.Lock()
	code, text := c.q.closeCode, c.q.closeText
	c.q.mu.Unlock()
	by := "server"
	switch {
	case code == closeGone && text != "": // closed without a close frame
		code = 0
	case code == closeGone: // the server asked no close: the client left
		by, code, text = "client", 0, ""
		var ce *websocket.CloseError
		if err, _ := c.stats.clientEnd.Load().(error); errors.As(err, &ce) {
			code, text = CloseCode(ce.Code), ce.Text
		} else if err != nil {
			text = err.Error()
		}
	}
	c.d.Log.Info("connection closed",
		"user", c.ident.Subject, "remote", c.out.remote(),
		"duration", time.Since(c.stats.start).Round(time.Millisecond),
		"closed_by", by, "close_code", int(code), "close_reason", text,
		"events_delivered", c.stats.delivered.Load())
}

// readEnded records the error that ended the reader, for the close line.
func (c *Conn) readEnded(err error) {
	c.stats.clientEnd.CompareAndSwap(nil, err)
}

// refused counts and logs a connection refused before it was served.
func (c *Conn) refused(reason string, attrs ...any) {
	if c.d.Refused == nil {
		return
	}
	c.d.Refused(reason, append([]any{"remote", c.out.remote()}, attrs...)...)
}

// stalledWriter is the heartbeat's check of the writer: events were queued
// at the previous heartbeat and still are, and no frame was written in
// between. Such a connection is counted and closed (its socket, which
// unblocks a writer stuck in I/O); the client resumes with since.
func (c *Conn) stalledWriter() bool {
	w := c.stats.writes.Load()
	queued := c.q.queuedEvents()
	stalled := queued && c.stats.checkQueued && w == c.stats.checkWrites
	c.stats.checkWrites, c.stats.checkQueued = w, queued
	if !stalled {
		return false
	}
	c.d.Metrics.Stalls.Inc()
	c.logger().Warn("writer made no progress for a heartbeat with events queued; closing", "remote", c.out.remote(), "heartbeat", c.d.Config.Heartbeat)
	c.closeWith(closeGone, "writer stalled")
	c.out.close()
	return true
}

// queuedEvents reports whether anything waits for the writer.
func (q *queue) queuedEvents() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) > 0
}

// initMetrics registers the series added for operators and starts the
// labelled ones at zero, so that every family exists from the start.
func initMetrics(m *Metrics, reg prometheus.Registerer) {
	m.Stalls = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tickwire_publisher_writer_stalls_total", Help: "Connections closed because their writer made no progress for a heartbeat while events were queued.",
	})
	m.Panics = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tickwire_publisher_connection_panics_total", Help: "Connections closed (1001) because handling them panicked: a bug; one ERROR line with the stack each.",
	})
	reg.MustRegister(m.Stalls, m.Panics)
	for _, code := range []string{CodeBadRequest, CodeUnauthorized, CodeTokenExpired, CodeForbidden,
		CodeInvalidChannel, CodeTooManyChannels, CodeRateLimited, CodeInternal} {
		m.Errors.WithLabelValues(code)
	}
	for _, code := range []CloseCode{CloseNormal, CloseGoingAway, CloseTooBig, CloseProtocol,
		CloseUnauthorized, CloseSlowConsumer, CloseTooManyConns, CloseRateLimited} {
		m.Closes.WithLabelValues(code.String())
	}
}

// logger is the connection's logger: with the user once authenticated.
// Built when a line is logged, not kept: most connections log nothing
// between their open and close lines.
func (c *Conn) logger() *slog.Logger {
	if c.user == "" {
		return c.d.Log
	}
	return c.d.Log.With("user", c.user)
}
