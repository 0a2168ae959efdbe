// Package wsconn serves one WebSocket connection of the client protocol:
// authentication, subscriptions with snapshot and resume, the bounded
// outbound queue and its writer, heartbeats and limits.
//
// An idle connection runs no goroutine on Linux: the replica's Poller
// waits for the client bytes of all of them (one epoll set), and starts a
// connection's reader only when its client sent something; the reader
// handles what came and arms the connection again (polled.go). A writer
// goroutine runs while there is something to write (lazy.go, writer.go).
// Elsewhere (or without a Poller) the caller of Serve is the reader, and
// each client frame is handled on a short-lived goroutine (aside). Serve
// returns, and Start's done runs, only after all have stopped.
package wsconn

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/publisher/internal/monitor"
	"github.com/tickwire/tickwire/shared/auth"
	"github.com/tickwire/tickwire/shared/event"
)

// Timing and size constants of a connection.
const (
	// MaxFrameSize is the largest client frame; a larger one closes 1009.
	MaxFrameSize = 64 << 10
	// writeWait bounds every write; a client that does not take a frame in
	// that time is gone or hopeless.
	writeWait = 10 * time.Second
	// closeGrace is how long the writer waits for the client's close reply.
	closeGrace = time.Second
	// historyTimeout bounds the history reads of one subscribe.
	historyTimeout = 5 * time.Second
	// maxEventsFrame splits a long queue into frames of about this size.
	maxEventsFrame = 256 << 10
	// maxViolations malformed frames close the connection with 4000.
	maxViolations = 10
	// rateGrace is how long a client may stay over the frame rate.
	rateGrace = 3 * time.Second
)

// Config is the per-connection part of the publisher's configuration.
type Config struct {
	Replica     string
	AuthTimeout time.Duration
	Heartbeat   time.Duration
	MaxChannels int
	RateLimit   float64 // client frames per second
	RateBurst   int
	Leeway      time.Duration // JWT_LEEWAY: a token is in force until exp+Leeway
	QueueEvents int           // hard limit of queued events per connection
	QueueBytes  int           // hard limit of queued event bytes per connection
}

// History reads what a subscribe needs from the channels' history, page
// by page (feed.History is the implementation).
type History interface {
	// Found reports, per channel, whether the entry since names is retained.
	Found(ctx context.Context, since map[event.Channel]event.ID) (map[event.Channel]bool, error)
	// Expand replaces wildcards by the known channels of their kind.
	Expand(ctx context.Context, chs []event.Channel) ([]event.Channel, error)
	// Latest returns the newest retained event of each concrete channel.
	Latest(ctx context.Context, chs []event.Channel) ([]*hub.Message, error)
	// After returns up to n events of c after the id after; next is where
	// to go on, done is true when nothing more is retained.
	After(ctx context.Context, c event.Channel, after event.ID, n int) (msgs []*hub.Message, next event.ID, done bool, err error)

	// For event streams (sse.go): the shards of the feed, their last ids,
	// whether a feed still holds an entry, and its events after an id.
	Shards() int
	Shard(symbol string) int
	FeedTops(ctx context.Context) ([]event.ID, error)
	FeedRetained(ctx context.Context, shard int, id event.ID) (bool, error)
	FeedAfter(ctx context.Context, shard int, after event.ID, n int) (msgs []*hub.Message, next event.ID, done bool, err error)
}

// Users counts connections per user; Acquire fails when the user has too
// many. Implementations are safe for concurrent use.
type Users interface {
	Acquire(sub string) bool
	Release(sub string)
}

// Deps are what every connection of a replica shares.
type Deps struct {
	Config   Config
	Hub      *hub.Hub
	History  History
	Verifier *auth.Verifier
	Users    Users
	Metrics  *Metrics
	Log      *slog.Logger
	// Refused (if set) counts and logs a refused connection (observe.go).
	Refused func(reason string, attrs ...any)
	// Writers (if set) runs the connections' writers (pool.go); its owner
	// stops it once the connections are served.
	Writers *WriterPool
	// Poller (if set, on Linux) waits for the client bytes of the idle
	// connections (poller_linux.go); its owner stops it after the drain.
	Poller *Poller
}

// Conn is one client connection. Its queue is filled by the hub; everything
// else is owned by the reader goroutine unless noted.
type Conn struct {
	d      *Deps
	ws     *websocket.Conn // nil for an event stream (sse.go)
	br     *bufio.Reader   // ws's read buffer (Upgrade); nil if not known
	ready  *readiness      // the socket, for the Poller; nil: read on a goroutine (Serve)
	out    wire            // where the writer writes
	pos    *positions      // an event stream's resume position (sse.go); nil on a WebSocket
	resume []event.ID      // an event stream's Last-Event-ID, for its subscribe
	q      *queue
	user   string // the subject, once authenticated; set before anything is queued

	ident    auth.Identity
	authed   bool
	userHeld bool    // Users.Acquire succeeded
	bad      int32   // malformed frames so far (beside the bools: Conn fits 512 bytes)
	subs     hub.Set // concrete and KIND:*
	limiter  *rate.Limiter
	overRate time.Time // when the client went over the rate; zero if not
	lastDrop time.Time // when a frame was last dropped by the rate limit
	lastRate time.Time // when rate_limited was last sent

	clk clock // heartbeat and token expiry (clock.go)

	w       *lazyWriter
	aborted atomic.Bool // overflowed: the writer stops between frames

	// Owned by the writer: a history page paid from the user's budget of
	// reads, which may be read not before notBefore.
	prepaid   bool
	notBefore time.Time
	// Owned by whichever writer goroutine runs: when it last wrote, and
	// the time between its last two writes (writer.go: busy).
	lastWrite time.Time
	gap       time.Duration

	readerDone chan struct{}
	stats      connStats // for the close line and the writer check (observe.go)
}

// New wraps an upgraded WebSocket. br is its read buffer, as Upgrade
// returns it; with nil, an idle reader waits in gorilla's read (deeper, on
// a second goroutine). ident is the identity verified at the upgrade, or
// nil when the client must send an auth frame.
func New(d *Deps, ws *websocket.Conn, br *bufio.Reader, ident *auth.Identity) *Conn {
	c := &Conn{
		d:          d,
		ws:         ws,
		br:         br,
		out:        wsWire{ws},
		q:          newQueue(d.Config.QueueEvents, d.Config.QueueBytes),
		limiter:    rate.NewLimiter(rate.Limit(d.Config.RateLimit), d.Config.RateBurst),
		readerDone: make(chan struct{}),
	}
	if ident != nil {
		c.ident = *ident
	}
	if br != nil && d.Poller != nil {
		if c.ready = newReadiness(ws.NetConn()); c.ready != nil {
			c.out = polledWire{c}
		}
	}
	c.w = newLazyWriter(c.writeLoop, c.d.Writers)
	return c
}

// Deliver implements hub.Subscriber: it queues m without blocking.
func (c *Conn) Deliver(m *hub.Message) bool {
	wake, overflowed := c.q.deliver(m)
	if overflowed {
		c.abort()
	}
	return wake
}

// Wake implements hub.Subscriber: the writer takes what was delivered.
func (c *Conn) Wake() {
	c.q.wakeUp()
	c.w.kick()
}

// abort cuts short a write blocked on a client that stopped reading: the
// queue overflowed. Setting a deadline is not I/O; the writer sees the
// abort between frames and closes 4008.
func (c *Conn) abort() {
	c.aborted.Store(true)
	c.out.abort()
	c.w.kick()
}

// send queues a control frame for the writer.
func (c *Conn) send(b []byte) {
	c.q.frame(b)
	c.w.kick()
}

// GoAway closes the connection with 1001 (the server is going away), after
// what is queued. Safe to call from any goroutine, before Serve too.
func (c *Conn) GoAway() {
	c.closeWith(CloseGoingAway, "server going away: reconnect and resume")
}

// closeWith asks the writer to send what is queued, then close with code.
func (c *Conn) closeWith(code CloseCode, text string) {
	c.q.close(code, text)
	c.w.kick()
}

// sendError queues an error frame and counts it. A bad_request is a
// violation: the tenth closes the connection with 4000, after the frame.
func (c *Conn) sendError(id, code, msg string, channels ...string) {
	c.d.Metrics.Errors.WithLabelValues(code).Inc()
	c.send(encode(errorFrame{Type: "error", ID: id, Code: code, Message: msg, Channels: channels}))
	if code != CodeBadRequest {
		return
	}
	c.bad++
	if c.bad >= maxViolations {
		c.closeWith(CloseProtocol, "too many malformed frames")
	}
}

// Serve runs the connection until the client leaves, the connection is
// closed for a reason of the protocol, or ctx ends or GoAway is called
// (then the client gets close 1001). It blocks until the connection has
// ended and its writer has stopped. With a Poller the caller only waits;
// without, its goroutine is the reader.
func (c *Conn) Serve(ctx context.Context, preAuthed bool) {
	stop := func() bool { return false }
	if ctx.Done() != nil { // a context that can end costs a hook per connection
		stop = context.AfterFunc(ctx, c.GoAway)
	}
	defer stop()
	if c.polled() {
		ended := make(chan struct{})
		c.startPolled(preAuthed, func() { close(ended) })
		<-ended
		return
	}
	c.serveHere(preAuthed)
}

// Start serves the connection as Serve does, without waiting: with a
// Poller, nothing runs for it until its client sends something; without,
// on a goroutine of its own. done is called once the connection has ended
// and its writer has stopped.
func (c *Conn) Start(preAuthed bool, done func()) {
	if c.polled() {
		c.startPolled(preAuthed, done)
		return
	}
	go func() {
		defer done()
		c.serveHere(preAuthed)
	}()
}

// polled reports whether the connection is read by the Poller: on Linux,
// with a Poller, over a socket, and with its read buffer (Upgrade).
func (c *Conn) polled() bool { return c.ready != nil }

// serveHere serves the connection with the calling goroutine as the
// reader: it reads in gorilla itself and handles each frame aside.
func (c *Conn) serveHere(preAuthed bool) {
	if !c.aside(func() { c.begin(preAuthed) }) {
		c.readFailed(errPanicked)
	} else {
		c.readLoop()
	}
	c.end()
}

// begin starts a connection: the open line, the clock, the auth of a
// token given at the upgrade, the first read deadline.
func (c *Conn) begin(preAuthed bool) {
	c.d.Metrics.Connections.Inc()
	c.lifecycle()
	c.ws.SetReadLimit(MaxFrameSize)
	c.startClock()
	if preAuthed {
		c.admit(c.ident, "")
	}
	c.startReading()
}

// end ends a connection once its reader has (a WebSocket), or once its
// client has gone or it was ended (an event stream): the writer sends
// what is left and stops, and everything the connection held is let go.
func (c *Conn) end() {
	if c.ws == nil {
		// An event stream: its wire is closed first, so that a write
		// blocked on the client fails and the writer stops at once. It
		// has no reader of frames: readerDone was closed from the start.
		c.out.close()
	} else {
		close(c.readerDone)
	}
	c.closeWith(closeGone, "")
	c.w.stop()
	c.stopClock()
	if c.polled() {
		c.d.Poller.remove(c) // before the close: the descriptor is reused at once
	}
	if c.ws != nil {
		_ = c.ws.Close()
	} else if s, ok := c.out.(*sseWire); ok && s.conn != nil {
		_ = s.conn.Close()
	}
	c.d.Hub.Remove(c)
	if c.userHeld {
		c.d.Users.Release(c.ident.Subject)
	}
	c.logClose()
	c.d.Metrics.Connections.Dec()
}

// readLoop reads and handles client frames until the connection ends,
// reading in gorilla itself (a second goroutine blocked in the read would
// cost more) and handling each frame aside.
func (c *Conn) readLoop() {
	for {
		if err := c.readFrame(c.aside); err != nil {
			c.readFailed(err)
			return
		}
	}
}

// run runs f, here.
func run(f func()) bool { f(); return true }

// startReading sets the first read deadline and the pong handler.
func (c *Conn) startReading() {
	hb := c.d.Config.Heartbeat
	if !c.authed {
		c.setReadDeadline(time.Now().Add(c.d.Config.AuthTimeout))
	} else {
		c.setReadDeadline(time.Now().Add(2 * hb))
	}
	c.ws.SetPongHandler(func(string) error { return c.pong() })
}

// pong takes the client's answer to a ping: it is alive for two more
// heartbeats.
func (c *Conn) pong() error {
	if c.authed {
		c.setReadDeadline(time.Now().Add(2 * c.d.Config.Heartbeat))
	}
	return nil
}

// setReadDeadline sets the deadline of the client's next bytes: on the
// socket, for a read under way, and on the clock for a polled
// connection's idle wait (polled.go).
func (c *Conn) setReadDeadline(t time.Time) {
	_ = c.ws.SetReadDeadline(t)
	if c.polled() {
		c.armReadBy(t)
	}
}

// readAvailable reads what the Poller found: the client's pings and
// pongs, and a frame if one follows them. The pongs that answer the
// heartbeat arrive between messages, alone: handled by gorilla, which
// goes on to wait for a data message, they would leave this goroutine
// blocked in gorilla's read, deep, until the client's next message.
func (c *Conn) readAvailable() error {
	for {
		ok, err := c.control()
		if err != nil {
			return err
		}
		if !ok {
			return c.readFrame(run)
		}
		if c.br.Buffered() == 0 {
			return nil // back to the Poller
		}
	}
}

// readFrame reads one client frame (with the control frames before it)
// and has handle run its handling. It returns the read's error.
func (c *Conn) readFrame(handle func(func()) bool) error {
	mt, data, err := c.ws.ReadMessage()
	if err != nil {
		return err
	}
	if c.q.closing() {
		return nil // drain until the client answers our close
	}
	if c.authed {
		c.setReadDeadline(time.Now().Add(2 * c.d.Config.Heartbeat))
	}
	if !handle(func() { c.frame(mt, data) }) {
		return errPanicked
	}
	return nil
}

// frame handles one client frame of type mt.
func (c *Conn) frame(mt int, data []byte) {
	c.d.Metrics.FramesIn.Inc()
	if !c.allow() {
		return
	}
	if mt != websocket.TextMessage {
		c.violation("", "binary frames are not accepted: send JSON text frames")
		return
	}
	c.handle(data)
}

// aside runs f, a part of the reader's work, on a goroutine of its own and
// waits for it. The reader's stack is what an idle connection keeps:
// handling a frame (JSON, history reads for a subscribe) needs a deep
// stack, and a stack that grew stays grown until a GC finds it mostly
// unused, which a goroutine blocked in a read rarely is (under a quarter).
// The short-lived goroutine takes that depth and frees it when it ends.
// The reader waits: frames are handled one at a time and in order, and f
// may use what the reader owns. It reports what contain reports.
func (c *Conn) aside(f func()) (ok bool) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		ok = c.contain(f)
	}()
	<-done
	return ok
}

// contain runs f and reports whether it returned. A panic in f is a bug
// in the handling of this connection. Its reader runs on a goroutine of
// the Server's or the Poller's, not net/http's, so nothing above would
// recover it and the whole replica would end: contain recovers it, logs
// it with its stack, and reports false; the caller ends this connection
// alone (errPanicked).
func (c *Conn) contain(f func()) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			c.logger().Error("panic while serving a connection: closing it", "panic", p, "stack", string(debug.Stack()))
			c.d.Metrics.Panics.Inc()
			return
		}
		ok = true
	}()
	f()
	return true
}

// Errors that end a connection's reader other than its reads'.
var (
	// errPanicked: the handling of a frame panicked (contain).
	errPanicked = errors.New("connection handling panicked")
	// errPollerStopped: the Poller stopped, after the replica's drain.
	errPollerStopped = errors.New("poller stopped")
	// errPollFailed: the Poller could not take the connection.
	errPollFailed = errors.New("cannot wait for the client's bytes")
)

// readFailed decides what a read error means. A timeout before auth is
// the auth timeout; after auth it means the client answered no ping.
func (c *Conn) readFailed(err error) {
	c.readEnded(err)
	if c.q.closing() {
		return
	}
	if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() && !c.authed {
		c.refused(monitor.RefusedAuthTimeout)
		c.sendError("", CodeUnauthorized, "no auth frame within "+c.d.Config.AuthTimeout.String())
		c.closeWith(CloseUnauthorized, "authentication timeout")
		return
	}
	if websocket.IsCloseError(err, int(CloseTooBig)) || err == websocket.ErrReadLimit {
		c.closeWith(CloseTooBig, "frame too big")
		return
	}
	if errors.Is(err, errPanicked) {
		// Logged where it was recovered. Going away: the client reconnects
		// and resumes, on this replica or another.
		c.closeWith(CloseGoingAway, "internal error")
		return
	}
	if errors.Is(err, errPollFailed) {
		c.logger().Error("cannot wait for the client's bytes: closing the connection", "err", err)
		c.closeWith(CloseGoingAway, "internal error")
		return
	}
	if errors.Is(err, errPollerStopped) {
		c.GoAway() // past the drain: the client reconnects elsewhere
		return
	}
	c.logger().Debug("connection read ended", "err", err)
}

// allow applies the frame rate limit: frames over it are dropped, with at
// most one rate_limited error a second; a client over it for longer than
// rateGrace is closed with 4029.
func (c *Conn) allow() bool {
	now := time.Now()
	if c.limiter.AllowN(now, 1) {
		return true
	}
	c.d.Metrics.RateLimited.Inc()
	// The limiter refills: a client flooding without pause still gets a
	// frame through now and then. It is back under the limit only when
	// nothing was dropped for a second.
	if c.overRate.IsZero() || now.Sub(c.lastDrop) > time.Second {
		c.overRate = now
	}
	c.lastDrop = now
	if now.Sub(c.overRate) > rateGrace {
		c.sendError("", CodeRateLimited, "over the frame rate limit for too long")
		c.closeWith(CloseRateLimited, "rate limited")
		return false
	}
	if now.Sub(c.lastRate) >= time.Second {
		c.lastRate = now
		c.sendError("", CodeRateLimited, "frame dropped: over the frame rate limit")
	}
	return false
}

// violation answers a malformed frame with bad_request; the tenth closes the
// connection with 4000. Before auth it is refused like any non-auth frame.
func (c *Conn) violation(id, msg string) {
	if !c.authed {
		c.refuse(id, "authenticate first: "+msg)
		return
	}
	c.sendError(id, CodeBadRequest, msg)
}

// refuse answers an unauthenticated client with unauthorized and 4001.
func (c *Conn) refuse(id, msg string) {
	c.refused(monitor.RefusedUnauthorized, "why", msg)
	c.sendError(id, CodeUnauthorized, msg)
	c.closeWith(CloseUnauthorized, "unauthorized")
}
