package wsconn

import (
	"net"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// readiness is what a connection read by the Poller needs of its socket:
// the descriptor the epoll set knows it by, a look at whether a read
// would block, and a shutdown that wakes its idle wait.
type readiness struct {
	rc       syscall.RawConn
	fd       int32
	added    bool        // in the Poller's epoll set; the reader's
	timedOut atomic.Bool // the read deadline passed (the clock)
	done     func()      // called once the connection has ended (Start)
}

// newReadiness returns the readiness of conn, or nil when conn is not a
// socket of this process (TLS, a pipe in tests).
func newReadiness(conn net.Conn) *readiness {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &readiness{rc: rc, fd: -1}
	if err := rc.Control(func(fd uintptr) { r.fd = int32(fd) }); err != nil || r.fd < 0 {
		return nil
	}
	return r
}

// readable reports whether a read would not block: bytes, the end of the
// stream, or an error (which the read then reports). The kernel is asked
// (a peek of one byte), so a stale wake-up is not taken for data.
func (r *readiness) readable() bool {
	ok := true
	_ = r.rc.Control(func(fd uintptr) { ok = peeked(fd) }) // an error: closed, the read says so
	return ok
}

// shut shuts the socket down (syscall.SHUT_RD, SHUT_RDWR): its idle wait
// wakes, and its reads find the end of the stream. Through the runtime's
// descriptor, so never on a descriptor closed (and reused) meanwhile.
func (r *readiness) shut(how int) {
	_ = r.rc.Control(func(fd uintptr) { _ = syscall.Shutdown(int(fd), how) })
}

// peeked reports whether a read of fd would not block. A raw system call:
// MSG_DONTWAIT never blocks.
func peeked(fd uintptr) bool {
	var b [1]byte
	for {
		_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		return true
	}
}
