package wsconn

import (
	"sync"
	"sync/atomic"
	"time"
)

// clock is a connection's one timer. Every heartbeat it checks the writer
// (stalledWriter) and sends a ping; at the token's expiry (with the
// leeway) it ends the connection with token_expired; for a connection
// read by the Poller, whose idle wait has no deadline of its own, it ends
// the wait at the read deadline (polled.go). One timer, not one per duty:
// an idle connection keeps each timer for its whole life. Times are
// monotonic nanoseconds (mono): a time.Time is three words, and every
// idle connection holds these.
// Safe for concurrent use: the reader renews the expiry and the read
// deadline while the timer runs.
type clock struct {
	mu      sync.Mutex
	t       *time.Timer
	beat    int64 // when the next heartbeat is due
	expires int64 // when the token expires; 0: no expiry armed
	readBy  int64 // the read deadline of a polled connection; 0: none
	stopped bool

	// A ping waits behind a write that blocks (gorilla's write lock),
	// up to writeWait: a heartbeat that finds one still waiting sends
	// none. The writer check does not wait for it.
	pinging atomic.Bool
}

// epoch is the origin of mono: its reading of the monotonic clock.
var epoch = time.Now()

// mono returns t as monotonic nanoseconds since epoch (at least 1, so
// that 0 means none).
func mono(t time.Time) int64 { return max(int64(t.Sub(epoch)), 1) }

// startClock arms the connection's clock for its first heartbeat.
func (c *Conn) startClock() {
	k := &c.clk
	k.mu.Lock()
	defer k.mu.Unlock()
	now := mono(time.Now())
	k.beat = now + int64(c.d.Config.Heartbeat)
	k.t = time.AfterFunc(time.Duration(k.next()-now), c.tick)
}

// stopClock stops the clock for good.
func (c *Conn) stopClock() {
	k := &c.clk
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopped = true
	if k.t != nil {
		k.t.Stop()
	}
}

// armExpiry sets (or renews) when the token expires.
func (c *Conn) armExpiry(exp time.Time) {
	k := &c.clk
	k.mu.Lock()
	defer k.mu.Unlock()
	k.expires = mono(exp)
	k.arm(mono(time.Now()))
}

// armReadBy sets (or moves) the read deadline the clock enforces. A
// later deadline leaves the timer alone: it fires at the earlier one,
// finds the deadline moved, and is armed for it then (due), so a client
// frame costs no timer change.
func (c *Conn) armReadBy(t time.Time) {
	k := &c.clk
	k.mu.Lock()
	defer k.mu.Unlock()
	earlier := k.readBy == 0 || mono(t) < k.readBy
	k.readBy = mono(t)
	if earlier {
		k.arm(mono(time.Now()))
	}
}

// next is when the timer must fire next. k.mu is held.
func (k *clock) next() int64 {
	n := k.beat
	if k.expires != 0 && k.expires < n {
		n = k.expires
	}
	if k.readBy != 0 && k.readBy < n {
		n = k.readBy
	}
	return n
}

// arm sets the timer for next, if it runs. k.mu is held.
func (k *clock) arm(now int64) {
	if k.t != nil && !k.stopped {
		k.t.Reset(time.Duration(k.next() - now))
	}
}

// due reports what is due at now: the expiry (then cleared), the read
// deadline (then cleared) and the heartbeat (then moved on by hb). The
// timer is armed again at once, unless the heartbeat is due: then only
// after its writer check, so that checks never overlap (they compare one
// heartbeat with the one before).
func (k *clock) due(now int64, hb time.Duration) (expired, late, beat bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped {
		return false, false, false
	}
	if k.expires != 0 && now >= k.expires {
		expired, k.expires = true, 0
	}
	if k.readBy != 0 && now >= k.readBy {
		late, k.readBy = true, 0
	}
	if now >= k.beat {
		beat, k.beat = true, now+int64(hb)
	}
	if !beat {
		k.arm(now)
	}
	return expired, late, beat
}

// tick runs on the timer's goroutine: the expiry, then the heartbeat.
func (c *Conn) tick() {
	expired, late, beat := c.clk.due(mono(time.Now()), c.d.Config.Heartbeat)
	if expired {
		c.expired()
	}
	if late {
		c.readTimedOut()
	}
	if !beat {
		return
	}
	stalled := c.q.closing() || c.stalledWriter()
	c.clk.mu.Lock()
	c.clk.arm(mono(time.Now()))
	c.clk.mu.Unlock()
	if stalled || !c.clk.pinging.CompareAndSwap(false, true) {
		return
	}
	defer c.clk.pinging.Store(false)
	c.ping()
}

// ping sends a WebSocket ping (WriteControl may run beside the writer),
// or an event stream's comment; a connection that cannot take a ping is
// closed.
func (c *Conn) ping() {
	if c.pos != nil { // an event stream: the comment goes through the writer
		c.send(ssePing)
		return
	}
	if err := c.out.ping(); err != nil {
		c.writeFailed(err)
	}
}

func (c *Conn) expired() {
	c.sendError("", CodeTokenExpired, "token expired: send a fresh auth frame before exp")
	c.closeWith(CloseUnauthorized, "token expired")
}
