package wsconn

import (
	"net"
	"syscall"
	"unsafe"
)

// readiness waits until a socket has bytes to read (or is at its end, or
// failed), without reading any: the waiting goroutine parks in the
// runtime's poller a few frames deep, and its stack stays at the
// runtime's smallest (2 KiB) if nothing deeper runs on it (conn.go).
type readiness struct{ rc syscall.RawConn }

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
	return &readiness{rc: rc}
}

// wait returns once a read would not block, or with the error of the
// wait: the read deadline passed (a timeout, as a read's), or the socket
// was closed. The kernel is asked first (a peek of one byte), so bytes
// that arrived before the wait are never waited for again, and a stale
// wake-up of the poller is not taken for data.
func (r *readiness) wait() error {
	return r.rc.Read(peeked)
}

// peeked reports whether a read of fd would not block. A raw system call,
// not syscall.Recvfrom: MSG_DONTWAIT never blocks, and the frames of the
// wrapper and of entering and leaving a blocking call would take the
// stack past 2 KiB.
func peeked(fd uintptr) bool {
	var b [1]byte
	for {
		_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // nothing yet: wait for the poller
		}
		return true // bytes, the end of the stream, or an error: the read says which
	}
}
