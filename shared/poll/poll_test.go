package poll_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/poll"
)

func TestUntilReturnsOnceCheckPasses(t *testing.T) {
	calls := 0
	start := time.Now()
	poll.Until(t, 5*time.Second, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if calls != 3 {
		t.Errorf("check called %d times, want 3", calls)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Until took %v for three checks", d)
	}
}

// fakeTB records Fatalf and ends its goroutine, as testing.T does.
type fakeTB struct {
	testing.TB
	fatal string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestUntilFailsWithLastError(t *testing.T) {
	f := &fakeTB{}
	done := make(chan struct{})
	n := 0
	go func() {
		defer close(done)
		poll.Until(f, 50*time.Millisecond, func() error { n++; return fmt.Errorf("attempt %d", n) })
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Until did not give up")
	}
	if !strings.Contains(f.fatal, fmt.Sprintf("attempt %d", n)) || !strings.Contains(f.fatal, "50ms") {
		t.Errorf("Fatalf message %q, want the last error (attempt %d) and the bound", f.fatal, n)
	}
}
