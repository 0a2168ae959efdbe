package wsconn

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
)

// Poller waits for the client bytes of every idle connection of a replica
// with one epoll set and one goroutine, so that an idle connection holds
// no goroutine at all: no stack, whose size the runtime picks from the
// average in use and which a goroutine parked in a read keeps for its
// whole life (2 or 4 KiB, the difference between runs). A connection's
// reader runs only when its client sent something (polled.go): the Poller
// starts it on a goroutine of its own, and the reader arms the connection
// again when it is done.
//
// Each connection is registered one-shot: after an event it is disarmed
// until its reader arms it again, so at most one reader of a connection
// runs at a time. The sockets stay registered with the runtime's own
// poller too, which the reads and writes still use, with their deadlines.
// The epoll set itself is a descriptor of the runtime's poller (an epoll
// set is readable while it has events): the Poller's goroutine parks
// there like any reader of a socket and is woken the same way, with no
// thread blocked in epoll_wait.
//
// Safe for concurrent use. The goroutine starts with the first connection
// armed; Stop ends it, ends every connection still registered, and waits
// for their readers.
type Poller struct {
	log *slog.Logger

	mu      sync.Mutex      // guards everything below; held across epoll_ctl only
	set     *os.File        // the epoll set, in the runtime's poller; nil until started
	epfd    int             // its descriptor, for epoll_ctl while not stopped
	armed   map[int32]*Conn // by descriptor: registered and waiting for an event
	stopped bool
	failed  error         // why the Poller cannot serve connections (Err)
	loopEnd chan struct{} // closed when the loop returns; nil until it starts
	readers sync.WaitGroup

	wait func(epfd int, events []syscall.EpollEvent, msec int) (int, error) // syscall.EpollWait; a test makes it fail
}

// NewPoller returns a poller; it starts nothing until a connection is
// armed.
func NewPoller(log *slog.Logger) *Poller {
	return &Poller{log: log, epfd: -1, armed: make(map[int32]*Conn), wait: syscall.EpollWait}
}

// pollEvents are what a connection is armed for: bytes, the client's end
// of the stream, or an error, once.
const pollEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

// start creates the epoll set, hands it to the runtime's poller, and
// starts the loop. p.mu is held; the system calls here run once.
func (p *Poller) start() error {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("%w: epoll_create1: %w", errPollFailed, err)
	}
	// Non-blocking: os.NewFile then registers it with the runtime's poller.
	if err := syscall.SetNonblock(epfd, true); err != nil {
		_ = syscall.Close(epfd)
		return fmt.Errorf("%w: epoll set non-blocking: %w", errPollFailed, err)
	}
	set := os.NewFile(uintptr(epfd), "epoll")
	rc, err := set.SyscallConn()
	if err != nil {
		_ = set.Close()
		return fmt.Errorf("%w: epoll set: %w", errPollFailed, err)
	}
	p.set, p.epfd = set, epfd
	p.loopEnd = make(chan struct{})
	go p.loop(rc)
	return nil
}

// arm registers c (first time) or re-arms it (after an event) for its
// client's next bytes. It fails when the poller is stopped
// (errPollerStopped) or cannot take c (errPollFailed): the caller ends the
// connection. p.mu is held across epoll_ctl, which never blocks: so the
// loop finds c armed when its event comes, and Stop never closes the
// epoll set under a registration.
func (p *Poller) arm(c *Conn) error {
	r := c.ready
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return errPollerStopped
	}
	if p.loopEnd == nil {
		if err := p.start(); err != nil {
			p.failed = err // not ready until a later connection starts it
			return err
		}
		p.failed = nil
	}
	op := syscall.EPOLL_CTL_MOD
	if !r.added {
		op = syscall.EPOLL_CTL_ADD
	}
	ev := syscall.EpollEvent{Events: pollEvents, Fd: r.fd}
	if err := syscall.EpollCtl(p.epfd, op, int(r.fd), &ev); err != nil {
		return fmt.Errorf("%w: epoll_ctl: %w", errPollFailed, err)
	}
	r.added = true
	p.armed[r.fd] = c
	return nil
}

// remove takes c's descriptor out of the epoll set, before it is closed:
// a descriptor number is reused at once, and an entry left behind would
// wake the wrong connection. Called by c's reader, which runs only while
// c is not armed.
func (p *Poller) remove(c *Conn) {
	r := c.ready
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.added && !p.stopped { // stopped: the set is closed, and its entries with it
		_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(r.fd), nil)
	}
	r.added = false
}

// loop waits for events and starts the reader of each connection that has
// one, until Stop closes the set. It takes every event there is before it
// parks again: the runtime's poller wakes it once per change (edge
// triggered).
func (p *Poller) loop(rc syscall.RawConn) {
	defer close(p.loopEnd)
	events := make([]syscall.EpollEvent, 256)
	var werr error
	err := rc.Read(func(fd uintptr) bool {
		for {
			n, err := p.wait(int(fd), events, 0)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				werr = err
				return true
			}
			p.dispatch(events[:n])
			if n < len(events) {
				return false // park until the set has events again
			}
		}
	})
	p.mu.Lock()
	stopped := p.stopped
	p.mu.Unlock()
	if stopped && werr == nil {
		return // Stop closed the set
	}
	// Not expected (EBADF, EFAULT, EINVAL would be bugs here): without
	// the loop no connection would be read again.
	if werr == nil {
		werr = err
	}
	p.log.Error("waiting for clients failed: ending every connection waiting for its client", "err", werr)
	p.mu.Lock()
	p.stopped = true
	p.failed = fmt.Errorf("epoll_wait: %w", werr)
	p.mu.Unlock()
	p.endArmed()
}

// dispatch starts the reader of each connection with an event.
func (p *Poller) dispatch(events []syscall.EpollEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ev := range events {
		c := p.armed[ev.Fd]
		if c == nil {
			continue // stale: its connection was ended by Stop
		}
		delete(p.armed, ev.Fd)
		p.readers.Add(1)
		go c.readable()
	}
}

// endArmed ends every connection still armed, once the poller is
// stopped: their sockets are shut down and their readers started, which
// read the end of the stream and end their connection.
func (p *Poller) endArmed() {
	p.mu.Lock()
	left := make([]*Conn, 0, len(p.armed))
	for fd, c := range p.armed {
		left = append(left, c)
		delete(p.armed, fd)
	}
	p.readers.Add(len(left))
	p.mu.Unlock()
	for _, c := range left {
		c.shutdown()
		go c.readable()
	}
}

// Stop ends the loop, then every connection still armed (endArmed).
// Readers that were running find the poller stopped when they would arm
// again, and end their connection. Stop waits for all of them. Call it
// after the drain: what is left are connections that did not finish in
// time.
func (p *Poller) Stop() {
	p.mu.Lock()
	p.stopped = true
	set, loopEnd := p.set, p.loopEnd
	p.mu.Unlock()
	if set != nil {
		_ = set.Close() // wakes the loop; no epoll_ctl runs once stopped (a second Close does nothing)
	}
	if loopEnd != nil {
		<-loopEnd
		p.endArmed()
	}
	p.readers.Wait()
}

// Err returns why the poller can no longer serve connections, nil while
// it can (or was stopped by Stop): the replica is then not ready.
func (p *Poller) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

// readerDone counts a reader started by the loop or endArmed out.
func (p *Poller) readerDone() { p.readers.Done() }
