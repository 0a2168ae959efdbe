package wsconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tickwire/tickwire/publisher/internal/hub"
	"github.com/tickwire/tickwire/shared/auth"
	"github.com/tickwire/tickwire/shared/event"
)

// An event stream (GET /v1/sse, docs/protocol.md) is a Conn without a reader
// of frames (a stream taken from net/http is read only for the end of its
// connection: NewHijackedStream): it is subscribed once, at the start, and
// its writer writes SSE messages (sseWire) instead of WebSocket frames,
// through the same queue, pacing and recoveries. Its resume position (the id of each message carrying
// events) is, per feed shard, the last feed id delivered: one position
// per shard is a complete resume point for any set of that shard's
// channels, because per shard the stream delivers feed events in feed
// order (quotes and bars skipped by conflation are no gap). A resume
// reads each shard's feed after its position (filtered to the stream's
// channels, paced by the queue like any replay) and holds live events
// back meanwhile; the feed's retention bounds it, with a gap beyond.

// Queued frames the writer turns into comment lines: the heartbeat, and
// the first line of a stream, written once it is subscribed (the response
// and its headers go out with it: a client that sees them may rely on the
// subscription).
var (
	ssePing       = []byte(": ping")
	sseSubscribed = []byte(": subscribed")
)

// errBadPosition: a Last-Event-ID that this server did not hand out.
var errBadPosition = errors.New("malformed Last-Event-ID")

// positions is an event stream's resume position: per shard, the last
// feed id delivered. Owned by the writer once the stream runs.
type positions struct {
	ids   []event.ID
	shard func(symbol string) int
}

func (p *positions) seen(msgs []*hub.Message) {
	for _, m := range msgs {
		p.seen1(m)
	}
}

func (p *positions) seen1(m *hub.Message) {
	s := p.shard(m.Event.Channel.Symbol)
	if p.ids[s].Less(m.Event.ID) {
		p.ids[s] = m.Event.ID
	}
}

// String encodes the position: "s0:<id>,s1:<id>,…".
func (p *positions) String() string {
	var b strings.Builder
	for i, id := range p.ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("s" + strconv.Itoa(i) + ":" + id.String())
	}
	return b.String()
}

// ParsePosition decodes a Last-Event-ID for a feed of shards shards.
func ParsePosition(s string, shards int) ([]event.ID, error) {
	parts := strings.Split(s, ",")
	if len(parts) != shards {
		return nil, fmt.Errorf("%w: %d shards, want %d", errBadPosition, len(parts), shards)
	}
	out := make([]event.ID, shards)
	for i, part := range parts {
		id, ok := strings.CutPrefix(part, "s"+strconv.Itoa(i)+":")
		if !ok {
			return nil, fmt.Errorf("%w: part %d", errBadPosition, i)
		}
		var err error
		if out[i], err = event.ParseID(id); err != nil {
			return nil, fmt.Errorf("%w: %v", errBadPosition, err)
		}
	}
	return out, nil
}

// sseWire writes server frames as SSE messages: event is the frame's
// type, data its JSON, and messages carrying events get the position as
// id. Frames SSE does not carry (subscribed, unsubscribed, welcome, pong)
// are left out.
type sseWire struct {
	w      http.ResponseWriter // through net/http (NewStream)
	rc     *http.ResponseController
	conn   net.Conn // or on a connection taken from net/http (NewHijackedStream)
	head   []byte   // the response's head, written with the first message
	shut   func()   // shuts conn down: its reader wakes and ends the stream
	pos    *positions
	addr   string
	done   chan struct{} // closed by close: the handler returns
	closed sync.Once
	buf    []byte
}

var typePrefix = []byte(`{"type":"`)

func frameType(b []byte) string {
	rest, ok := bytes.CutPrefix(b, typePrefix)
	if !ok {
		return ""
	}
	if i := bytes.IndexByte(rest, '"'); i >= 0 {
		return string(rest[:i])
	}
	return ""
}

func (s *sseWire) writeFrame(b []byte, deadline time.Time) error {
	buf := s.buf[:0]
	if len(b) > 0 && b[0] == ':' { // ssePing, sseSubscribed
		buf = append(buf, b...)
		buf = append(buf, "\n\n"...)
	} else {
		typ := frameType(b)
		switch typ {
		case "events", "snapshot", "gap", "error":
		default:
			return nil
		}
		buf = append(buf, "event: "+typ+"\n"...)
		if typ == "events" || typ == "snapshot" {
			buf = append(buf, "id: "+s.pos.String()+"\n"...)
		}
		buf = append(buf, "data: "...)
		// A raw newline (in data the source sent) continues on another
		// data line, which the client joins back with a newline.
		for {
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				break
			}
			buf = append(buf, b[:i]...)
			buf = append(buf, "\ndata: "...)
			b = b[i+1:]
		}
		buf = append(buf, b...)
		buf = append(buf, "\n\n"...)
	}
	var err error
	if s.conn != nil {
		if s.head != nil {
			buf = append(s.head, buf...)
		}
		_ = s.conn.SetWriteDeadline(deadline)
		if _, err = s.conn.Write(buf); err == nil {
			s.head = nil
		}
	} else {
		_ = s.rc.SetWriteDeadline(deadline)
		if _, err = s.w.Write(buf); err == nil {
			err = s.rc.Flush()
		}
	}
	if cap(buf) <= 4*maxEventsFrame {
		s.buf = buf
	}
	return err
}

func (s *sseWire) ping() error { return nil } // queued instead (Conn.ping)

func (s *sseWire) closeFrame(CloseCode, string, time.Time) error { return nil }

func (s *sseWire) abort() { _ = s.setWriteDeadline(time.Now()) }

func (s *sseWire) close() {
	s.closed.Do(func() { close(s.done) })
	_ = s.setWriteDeadline(time.Now())
	if s.shut != nil {
		s.shut()
	}
}

func (s *sseWire) setWriteDeadline(t time.Time) error {
	if s.conn != nil {
		return s.conn.SetWriteDeadline(t)
	}
	return s.rc.SetWriteDeadline(t)
}

func (s *sseWire) remote() string { return s.addr }

// StreamRequest is a validated GET /v1/sse.
type StreamRequest struct {
	Channels []event.Channel
	Snapshot bool
	Throttle time.Duration
	Resume   []event.ID // from Last-Event-ID; nil: a fresh stream
}

// NewStream makes an event stream on w for ident, whose connection the
// caller has counted (Users.Acquire) and whose status 200 and headers it
// has set but not flushed: they go out with the stream's first line, once
// it is subscribed. Serve it with ServeStream.
func NewStream(d *Deps, w http.ResponseWriter, remote string, ident auth.Identity) *Conn {
	pos := &positions{ids: make([]event.ID, d.History.Shards()), shard: d.History.Shard}
	c := &Conn{
		d: d, pos: pos, ident: ident, authed: true, userHeld: true,
		q:          newQueue(d.Config.QueueEvents, d.Config.QueueBytes),
		user:       ident.Subject,
		readerDone: make(chan struct{}),
	}
	close(c.readerDone) // no reader
	out := &sseWire{w: w, pos: pos, addr: remote, done: make(chan struct{})}
	if w != nil {
		out.rc = http.NewResponseController(w)
	}
	c.out = out
	c.w = newLazyWriter(c.writeLoop, c.d.Writers)
	return c
}

// NewHijackedStream makes an event stream on conn, an HTTP/1.1 connection
// taken from net/http (Hijack), whose request asked for it: head is the
// response's status line and headers, which go out with the stream's
// first message, and the body is delimited by the connection's close.
// Nothing of net/http stays with the stream (its buffers, its goroutines),
// and with a Poller no goroutine at all while it has nothing to write.
// The caller has counted its connection (Users.Acquire). Start it with
// StartStream.
func NewHijackedStream(d *Deps, conn net.Conn, head []byte, remote string, ident auth.Identity) *Conn {
	c := NewStream(d, nil, remote, ident)
	out := c.out.(*sseWire)
	out.conn, out.head, out.shut = conn, head, func() { shutConn(conn) }
	_ = conn.SetDeadline(time.Time{}) // net/http's request deadlines are not the stream's
	if d.Poller != nil {
		c.ready = newReadiness(conn)
	}
	return c
}

// StartStream subscribes a stream made by NewHijackedStream and returns:
// the stream ends when its client goes (the Poller, or a goroutine that
// waits in a read, sees the end of its request's connection), when it is
// ended (slow consumer, token expiry, a write that failed) or when GoAway
// is called. done is called once it has ended and its writer has stopped.
func (c *Conn) StartStream(req StreamRequest, done func()) {
	c.beginStream(req)
	if c.polled() {
		c.startPolledStream(done)
		return
	}
	go func() {
		defer done()
		for c.readStream() == nil { // bytes a client should not send are dropped
		}
		c.end()
	}()
}

// shutConn shuts a hijacked stream's connection down: its reader (the
// Poller's, or the goroutine in its read) wakes and ends the stream, and
// a blocked write fails. A connection that is no TCP socket is closed.
func shutConn(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.CloseRead()
		_ = tc.CloseWrite()
		return
	}
	_ = conn.Close()
}

// readStream reads what the client of a hijacked stream sent: the end of
// its connection, or bytes it should not send, which are dropped.
func (c *Conn) readStream() error {
	var b [512]byte
	_, err := c.out.(*sseWire).conn.Read(b[:])
	return err
}

// ServeStream subscribes the stream and writes it until the client goes
// (reqDone), the stream is ended (slow consumer, token expiry, a write
// that failed) or ctx ends (shutdown). It returns after the writer has
// stopped: then the handler may return.
func (c *Conn) ServeStream(ctx context.Context, reqDone <-chan struct{}, req StreamRequest) {
	c.beginStream(req)
	select {
	case <-reqDone:
	case <-ctx.Done():
		c.GoAway()
	case <-c.out.(*sseWire).done:
	}
	c.end()
}

// beginStream starts a stream: the open line, the clock, its position
// (resumed, or the feeds' heads), and its subscription.
func (c *Conn) beginStream(req StreamRequest) {
	c.d.Metrics.Connections.Inc()
	c.lifecycle()
	c.startClock()
	c.armExpiry(c.ident.Expires.Add(c.d.Config.Leeway))
	if req.Resume != nil {
		copy(c.pos.ids, req.Resume)
		c.q.floor, c.q.shardOf = req.Resume, c.d.History.Shard
	} else if err := c.startAtTops(); err != nil {
		c.logger().Warn("event stream: feed heads unavailable", "err", err)
		c.sendError("", CodeInternal, "history is unavailable right now; reconnect")
		c.closeWith(CloseGoingAway, "history unavailable")
	}
	if !c.q.closing() {
		c.subscribeStream(req)
	}
}

// startAtTops sets the position of a fresh stream to the feeds' last ids,
// read before it subscribes: every event after them reaches the stream
// live (or, before its subscription, was not the stream's to deliver).
func (c *Conn) startAtTops() error {
	ctx, cancel := context.WithTimeout(context.Background(), historyTimeout)
	defer cancel()
	tops, err := c.d.History.FeedTops(ctx)
	if err != nil {
		return err
	}
	copy(c.pos.ids, tops)
	return nil
}

// subscribeStream subscribes the stream's channels as a subscribe frame
// would; its errors go out as error messages and end the stream.
func (c *Conn) subscribeStream(req StreamRequest) {
	f := clientFrame{Op: "subscribe", Channels: names(req.Channels), Snapshot: &req.Snapshot}
	if req.Throttle > 0 {
		ms := req.Throttle.Milliseconds()
		f.Throttle = &ms
	}
	c.resume = req.Resume
	c.handleSubscribe(f)
	if c.subs.Len() == 0 { // refused: the error message is queued
		c.closeWith(CloseGoingAway, "subscribe failed")
		return
	}
	c.send(sseSubscribed)
}

// planResume plans the resume of an event stream: the shard feeds after
// the position, filtered to the stream's channels. A shard whose feed no
// longer holds the position's entry is a gap: its events between the
// position and the oldest retained are lost.
func (c *Conn) planResume(ctx context.Context, req request, r *recovery) (map[string]bool, error) {
	want := make(map[event.Channel]bool, len(req.channels))
	for _, ch := range req.channels {
		want[ch] = true
	}
	r.match = func(ch event.Channel) bool {
		return want[ch] || want[event.Channel{Kind: ch.Kind, Symbol: event.Wildcard}]
	}
	var recovered map[string]bool
	for s, id := range req.resume {
		ok, err := c.d.History.FeedRetained(ctx, s, id)
		if err != nil {
			return nil, err
		}
		if !ok && recovered == nil {
			recovered = make(map[string]bool, len(req.channels))
			for _, ch := range req.channels {
				recovered[ch.String()] = false
			}
		}
		r.feeds = append(r.feeds, feedCursor{shard: s, after: id})
	}
	return recovered, nil
}
