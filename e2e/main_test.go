// Package e2e runs the built collector and publisher binaries against a
// real redis-server, and causes the faults a deployment meets: replicas
// killed, Redis stopped and restarted, processes told to stop.
package e2e

import (
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	dir, err := buildBinaries()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
