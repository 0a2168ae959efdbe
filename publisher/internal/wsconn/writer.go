package wsconn

import (
	"errors"
	"time"
)

// busyGap decides whether the writer's goroutine stays after a write that
// emptied the queue: only when the previous write was less than busyGap
// before, and then for at most busyGap. A connection that receives a frame
// now and then (a quiet channel, a few events a second) keeps no writer
// goroutine, stack or frame buffer between its frames; one that receives
// many frames a second keeps its writer and does not pay a goroutine start
// per frame.
const busyGap = 50 * time.Millisecond

// writeLoop is the connection's only writer of data frames, run by its
// lazyWriter. It reads history pages of recoveries as the queue has room,
// writes all that is queued (consecutive events as one events frame), and
// ends after writing a close frame, failing to write, or finding nothing
// to do (at once, or after busyGap when frames come fast).
func (c *Conn) writeLoop() {
	var buf []byte
	wrote := false // the last pass wrote: the clock need not be read to know the write was recent
	for {
		wait := c.fill()
		items, code, text, due := c.q.take(time.Now)
		if len(items) == 0 && code == 0 {
			switch {
			case wait > 0 || due > 0: // the user's read budget, or a paced window
				c.w.wait(minPositive(wait, due))
				wrote = false
				continue
			case c.q.pending():
				continue
			case c.busy(wrote) && c.w.wait(busyGap):
				wrote = false
				continue
			}
			c.q.release()
			if c.w.retire(c.q.pending) {
				continue
			}
			return
		}
		var err error
		buf, err = c.writeItems(items, buf)
		c.q.recycle(items)
		wrote = true
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
		if w := items[i].whole; w != nil {
			if c.pos != nil {
				c.pos.seen(w.batch)
			}
			if _, err := c.write(w.frame); err != nil {
				return buf, err
			}
			if w.events > 0 {
				c.d.Metrics.Delivered.Add(float64(w.events))
				c.stats.delivered.Add(int64(w.events))
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
		now, err := c.write(buf)
		if err != nil {
			return buf, err
		}
		c.d.Metrics.Delivered.Add(float64(n))
		c.stats.delivered.Add(int64(n))
		c.d.Metrics.observeLag(newest, now)
	}
	if cap(buf) > 4*maxEventsFrame {
		buf = nil // a rare huge batch should not stay with the connection
	}
	return buf, nil
}

// write writes one frame, and returns when it began: one clock read per
// frame serves the write's deadline, the writer's pace (lastWrite, gap:
// from the start of one write to the next) and the lag of its events.
func (c *Conn) write(b []byte) (time.Time, error) {
	now := time.Now()
	err := c.out.writeFrame(b, now.Add(writeWait))
	c.stats.writes.Add(1)
	c.gap, c.lastWrite = now.Sub(c.lastWrite), now
	return now, err
}

// busy reports whether frames come fast: the last two writes were less
// than busyGap apart, and the last one was less than busyGap ago, which
// the caller knows without the clock when it has just written (recent).
// A busy writer's wait for its next frame skips the clock read that way.
func (c *Conn) busy(recent bool) bool {
	return c.gap < busyGap && (recent || time.Since(c.lastWrite) < busyGap)
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
		c.logger().Info("closing slow consumer")
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
	c.logger().Debug("connection write failed", "err", err)
	c.out.close()
}

// minPositive is the smaller of a and b that is above 0.
func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 || (b > 0 && b < a) {
		return b
	}
	return a
}
