//go:build !linux

package wsconn

import "net"

// readiness is not available here: an idle reader waits in gorilla's
// read, on the short-lived goroutine that reads the frame.
type readiness struct{}

func newReadiness(net.Conn) *readiness { return nil }

func (*readiness) wait() error { return nil }
