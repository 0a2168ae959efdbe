package wsconn

import (
	"os"
	"syscall"
)

// The reader of a connection read by the Poller (poller_linux.go). It
// runs only when the client sent something: the Poller starts it on a
// goroutine of its own, it handles what came (pings, pongs, frames) and
// arms the connection again, or ends it. Its stack lives as long as that
// and no longer; between two client frames the connection holds no
// goroutine. The read deadline is the clock's (clock.go): at it, the
// socket's reading side is shut down, which wakes the reader, which then
// ends the connection as a read timeout.

// startPolled starts the connection on the caller's goroutine, which
// returns at once, and arms it with the Poller.
func (c *Conn) startPolled(preAuthed bool, done func()) {
	c.ready.done = done
	if !c.contain(func() { c.begin(preAuthed) }) {
		c.endPolled(errPanicked)
		return
	}
	if err := c.d.Poller.arm(c); err != nil {
		c.endPolled(err)
	}
}

// startPolledStream arms a hijacked event stream (StartStream) with the
// Poller: its reader runs when the client's connection ends.
func (c *Conn) startPolledStream(done func()) {
	c.ready.done = done
	if err := c.d.Poller.arm(c); err != nil {
		c.endPolled(err)
	}
}

// readable is the reader, started by the Poller.
func (c *Conn) readable() {
	defer c.d.Poller.readerDone()
	for {
		err := c.readReady()
		if err == nil {
			if c.buffered() > 0 {
				continue
			}
			if err = c.d.Poller.arm(c); err == nil {
				return // another reader may run from here on
			}
		}
		c.endPolled(err)
		return
	}
}

// readReady reads and handles what the client sent, if anything: a
// wake-up with nothing to read (the socket's other poller took it, or a
// stale one) arms again.
func (c *Conn) readReady() (err error) {
	if c.ready.timedOut.Load() {
		return os.ErrDeadlineExceeded
	}
	if c.buffered() == 0 && !c.ready.readable() {
		return nil
	}
	read := c.readAvailable
	if c.ws == nil { // a hijacked event stream
		read = c.readStream
	}
	if !c.contain(func() { err = read() }) {
		return errPanicked
	}
	if err != nil && c.ready.timedOut.Load() {
		// Past the read deadline, what the read found (the end of the
		// stream the clock's shutdown made) is the deadline's timeout.
		return os.ErrDeadlineExceeded
	}
	return err
}

// buffered is how many bytes the connection's read buffer holds (none for
// an event stream, which has none).
func (c *Conn) buffered() int {
	if c.br == nil {
		return 0
	}
	return c.br.Buffered()
}

// endPolled ends the connection after its reader's last read.
func (c *Conn) endPolled(err error) {
	c.readFailed(err)
	c.end()
	c.ready.done()
}

// readTimedOut ends the idle wait of a polled connection whose read
// deadline passed (the clock's): the reader wakes and ends it with the
// read's timeout. A reader that runs finds it before it arms again.
func (c *Conn) readTimedOut() {
	if !c.polled() {
		return
	}
	c.ready.timedOut.Store(true)
	c.ready.shut(syscall.SHUT_RD)
}

// shutdown shuts the socket down both ways: a polled connection's reader
// wakes and reads the end of the stream, a blocked write fails. The
// descriptor stays open until the reader ends the connection (end): its
// epoll entry goes with the close, and a closed descriptor would never
// wake the reader.
func (c *Conn) shutdown() {
	c.ready.shut(syscall.SHUT_RDWR)
}
