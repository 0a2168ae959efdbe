//go:build !linux

package wsconn

import "net"

// readiness is not available here: the reader waits in gorilla's read
// itself (readLoop).
type readiness struct{}

func newReadiness(net.Conn) *readiness { return nil }

func (*readiness) wait() error { return nil }
