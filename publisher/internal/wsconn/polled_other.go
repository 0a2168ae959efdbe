//go:build !linux

package wsconn

import (
	"log/slog"
	"net"
)

// Without epoll, each connection is read on a goroutine of its own (the
// caller of Serve, or Start's), which reads in gorilla itself.

type readiness struct{}

func newReadiness(net.Conn) *readiness { return nil }

// Poller is Linux's (poller_linux.go); elsewhere NewPoller returns nil and
// no connection is polled.
type Poller struct{}

// NewPoller returns nil: there is no epoll here.
func NewPoller(*slog.Logger) *Poller { return nil }

// Stop does nothing: a nil Poller has nothing to stop.
func (*Poller) Stop() {}

// Err returns nil: a nil Poller never fails.
func (*Poller) Err() error { return nil }

// Never called: no connection is polled here (polled).
func (c *Conn) startPolled(bool, func()) { panic("wsconn: no poller on this platform") }
func (c *Conn) startPolledStream(func()) { panic("wsconn: no poller on this platform") }
func (*Poller) remove(*Conn)             {}
func (c *Conn) readTimedOut()            {}
func (c *Conn) shutdown()                {}
