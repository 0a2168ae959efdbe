package wsconn

import (
	"fmt"
	"log/slog"
	"sync"
	"syscall"
)

// Poller waits for the client bytes of every idle connection of a replica
// with one epoll instance and one goroutine, so that an idle connection
// holds no goroutine at all: no stack, whose size the runtime picks from
// the average in use and which a goroutine parked in a read keeps for its
// whole life (2 or 4 KiB, the difference between runs). A connection's
// reader runs only when its client sent something (polled.go): the poller
// starts it on a goroutine of its own, and the reader arms the connection
// again when it is done.
//
// Each connection is registered one-shot: after an event it is disarmed
// until its reader arms it again, so at most one reader of a connection
// runs at a time. The sockets stay registered with the runtime's own
// poller too, which the reads and writes still use, with their deadlines.
//
// Safe for concurrent use. The goroutine starts with the first connection
// armed; Stop ends it, ends every connection still registered, and waits
// for their readers.
type Poller struct {
	log *slog.Logger

	mu      sync.Mutex // guards everything below; held across epoll_ctl only (arm)
	epfd    int        // -1 until the loop starts
	wakeR   int        // read end of the pipe that wakes the loop to stop
	wakeW   int
	armed   map[int32]*Conn // by descriptor: registered and waiting for an event
	stopped bool
	failed  error         // why the loop ended on its own (Err)
	loopEnd chan struct{} // closed when the loop returns; nil until it starts
	readers sync.WaitGroup
	// closeOnce closes the descriptors, once every reader ended.
	closeOnce sync.Once
}

// NewPoller returns a poller; it starts nothing until a connection is
// armed.
func NewPoller(log *slog.Logger) *Poller {
	return &Poller{log: log, epfd: -1, armed: make(map[int32]*Conn)}
}

// pollEvents are what a connection is armed for: bytes, the client's end
// of the stream, or an error, once.
const pollEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

// start creates the epoll instance and the pipe that stops the loop, and
// starts the loop. p.mu is held; the system calls here run once.
func (p *Poller) start() error {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("%w: epoll_create1: %w", errPollFailed, err)
	}
	var pipe [2]int
	if err := syscall.Pipe2(pipe[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		_ = syscall.Close(epfd)
		return fmt.Errorf("%w: pipe2: %w", errPollFailed, err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(pipe[0])}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, pipe[0], &ev); err != nil {
		_ = syscall.Close(epfd)
		_ = syscall.Close(pipe[0])
		_ = syscall.Close(pipe[1])
		return fmt.Errorf("%w: epoll_ctl add pipe: %w", errPollFailed, err)
	}
	p.epfd, p.wakeR, p.wakeW = epfd, pipe[0], pipe[1]
	p.loopEnd = make(chan struct{})
	go p.loop(epfd, pipe[0])
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
	if r.added {
		_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(r.fd), nil)
		r.added = false
	}
}

// loop waits for events and starts the reader of each connection that has
// one. It returns when the stop pipe is readable.
func (p *Poller) loop(epfd, wake int) {
	defer close(p.loopEnd)
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			// Not expected (EBADF, EFAULT, EINVAL would be bugs here):
			// without the loop no connection would be read again.
			p.log.Error("epoll_wait failed: ending every connection waiting for its client", "err", err)
			p.mu.Lock()
			p.stopped = true
			p.failed = fmt.Errorf("epoll_wait: %w", err)
			p.mu.Unlock()
			p.endArmed()
			return
		}
		p.mu.Lock()
		for _, ev := range events[:n] {
			if int(ev.Fd) == wake {
				p.mu.Unlock()
				return
			}
			c := p.armed[ev.Fd]
			if c == nil {
				continue // stale: its connection was ended by Stop
			}
			delete(p.armed, ev.Fd)
			p.readers.Add(1)
			go c.readable()
		}
		p.mu.Unlock()
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
	loopEnd := p.loopEnd
	p.mu.Unlock()
	if loopEnd != nil {
		p.closeOnce.Do(func() {
			_, _ = syscall.Write(p.wakeW, []byte{0})
			<-loopEnd
			p.endArmed()
			p.readers.Wait()
			_ = syscall.Close(p.epfd)
			_ = syscall.Close(p.wakeR)
			_ = syscall.Close(p.wakeW)
		})
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
