package wsconn

import (
	"sync"
	"sync/atomic"
	"time"
)

// clock is a connection's one timer. Every heartbeat it checks the writer
// (stalledWriter) and sends a ping; at the token's expiry (with the
// leeway) it ends the connection with token_expired. One timer, not one
// per duty: an idle connection keeps each timer for its whole life.
// Safe for concurrent use: the reader renews the expiry while the timer
// runs.
type clock struct {
	mu      sync.Mutex
	t       *time.Timer
	beat    time.Time // when the next heartbeat is due
	expires time.Time // when the token expires; zero: no expiry armed
	stopped bool

	// A ping waits behind a write that blocks (gorilla's write lock),
	// up to writeWait: a heartbeat that finds one still waiting sends
	// none. The writer check does not wait for it.
	pinging atomic.Bool
}

// startClock arms the connection's clock for its first heartbeat.
func (c *Conn) startClock() {
	k := &c.clk
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	k.beat = now.Add(c.d.Config.Heartbeat)
	k.t = time.AfterFunc(k.next().Sub(now), c.tick)
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
	k.expires = exp
	k.arm(time.Now())
}

// next is when the timer must fire next. k.mu is held.
func (k *clock) next() time.Time {
	if !k.expires.IsZero() && k.expires.Before(k.beat) {
		return k.expires
	}
	return k.beat
}

// arm sets the timer for next, if it runs. k.mu is held.
func (k *clock) arm(now time.Time) {
	if k.t != nil && !k.stopped {
		k.t.Reset(k.next().Sub(now))
	}
}

// due reports what is due at now: the expiry (then cleared) and the
// heartbeat (then moved on by hb). The timer is armed again at once,
// unless the heartbeat is due: then only after its writer check, so that
// checks never overlap (they compare one heartbeat with the one before).
func (k *clock) due(now time.Time, hb time.Duration) (expired, beat bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped {
		return false, false
	}
	if !k.expires.IsZero() && !now.Before(k.expires) {
		expired, k.expires = true, time.Time{}
	}
	if !now.Before(k.beat) {
		beat, k.beat = true, now.Add(hb)
	}
	if !beat {
		k.arm(now)
	}
	return expired, beat
}

// tick runs on the timer's goroutine: the expiry, then the heartbeat.
func (c *Conn) tick() {
	expired, beat := c.clk.due(time.Now(), c.d.Config.Heartbeat)
	if expired {
		c.expired()
	}
	if !beat {
		return
	}
	stalled := c.q.closing() || c.stalledWriter()
	c.clk.mu.Lock()
	c.clk.arm(time.Now())
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
