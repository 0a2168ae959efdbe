package wsconn

import (
	"errors"
	"time"
)

// idleLinger is how long a writer with nothing to write waits for more
// before its goroutine ends; under load it never ends.
const idleLinger = 2 * time.Second

// writeLoop is the connection's only writer of data frames, run by its
// lazyWriter. It reads history pages of recoveries as the queue has room,
// writes all that is queued (consecutive events as one events frame), and
// ends after writing a close frame, failing to write, or finding nothing
// to do for idleLinger.
func (c *Conn) writeLoop() {
	var buf []byte
	for {
		wait := c.fill()
		items, code, text, due := c.q.take(time.Now())
		if len(items) == 0 && code == 0 {
			switch {
			case wait > 0 || due > 0: // the user's read budget, or a paced window
				c.w.wait(minPositive(wait, due))
				continue
			case c.q.pending():
				continue
			case c.w.wait(idleLinger):
				continue
			case c.w.retire(c.q.pending):
				continue
			}
			return
		}
		var err error
		buf, err = c.writeItems(items, buf)
		c.q.recycle(items)
		if c.aborted.Load() {
			c.finish(CloseSlowConsumer, "slow consumer: resume with since")
			return
		}
		if err != nil {
			c.writeFailed(err)
			return
		}
		if code != 0 {
			c.finish(code, text)
			return
		}
	}
}

// writeItems writes control frames as they are and runs of events as
// events frames of at most about maxEventsFrame bytes. buf is scratch
// space, returned for reuse.
func (c *Conn) writeItems(items []item, buf []byte) ([]byte, error) {
	for i := 0; i < len(items); {
		if c.aborted.Load() {
			return buf, errAborted
		}
		if items[i].msg == nil {
			if c.pos != nil {
				c.pos.seen(items[i].batch)
			}
			if err := c.write(items[i].frame); err != nil {
				return buf, err
			}
			if items[i].paced {
				c.d.Metrics.Delivered.Add(float64(items[i].events))
				c.stats.delivered.Add(int64(items[i].events))
			}
			i++
			continue
		}
		buf = append(buf[:0], eventsHead...)
		n := 0
		var newest int64
		for ; i < len(items) && items[i].msg != nil && len(buf) < maxEventsFrame; i++ {
			if n > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, items[i].msg.Wire...)
			newest = max(newest, items[i].msg.Event.TS)
			if c.pos != nil {
				c.pos.seen1(items[i].msg)
			}
			n++
		}
		buf = append(buf, framesTail...)
		if err := c.write(buf); err != nil {
			return buf, err
		}
		c.d.Metrics.Delivered.Add(float64(n))
		c.stats.delivered.Add(int64(n))
		c.d.Metrics.observeLag(newest)
	}
	if cap(buf) > 4*maxEventsFrame {
		buf = nil // a rare huge batch should not stay with the connection
	}
	return buf, nil
}

func (c *Conn) write(b []byte) error {
	err := c.out.writeFrame(b)
	c.stats.writes.Add(1)
	return err
}

// errAborted stops a write of a connection closed as a slow consumer.
var errAborted = errors.New("slow consumer")

// finish sends the close frame for code (unless the client is gone), waits
// a moment for the client's reply, and closes the socket.
func (c *Conn) finish(code CloseCode, text string) {
	if code == closeGone {
		return
	}
	c.d.Metrics.Closes.WithLabelValues(code.String()).Inc()
	wait := writeWait
	if code == CloseSlowConsumer {
		// The close frame queues behind the data the client did not read;
		// it gets a short try, then the connection is dropped.
		wait = closeGrace
		c.log.Info("closing slow consumer")
	}
	if err := c.out.closeFrame(code, text, time.Now().Add(wait)); err != nil {
		c.writeFailed(err)
		return
	}
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-c.readerDone:
	case <-t.C:
	}
	c.out.close() // unblocks the reader if the client never answered
}

// writeFailed ends a connection whose client cannot be written to.
func (c *Conn) writeFailed(err error) {
	c.log.Debug("connection write failed", "err", err)
	c.out.close()
}

// minPositive is the smaller of a and b that is above 0.
func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 || (b > 0 && b < a) {
		return b
	}
	return a
}
