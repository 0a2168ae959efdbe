// Package poll waits in tests for a condition instead of sleeping a fixed
// time: the wait is as short as the system allows and as long as the bound.
package poll

import (
	"testing"
	"time"
)

// Until calls check every 10 ms until it returns nil, and fails t with the
// last error if that has not happened within wait.
func Until(t testing.TB, wait time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", wait, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
