package wsconn

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/poll"
)

// A goroutine that ran a writer waits in the pool and runs the next one:
// work that comes one at a time is run by the goroutines already there.
// (Go starts a new one if it comes in the instant between a goroutine
// counting itself idle and waiting, so the count may exceed one; twenty
// would mean no reuse at all.)
func TestWriterPoolReuses(t *testing.T) {
	p := NewWriterPool(4)
	defer p.Stop()
	ids := make(chan uint64, 1)
	var seen sync.Map
	for i := range 20 {
		if !p.Go(func() { ids <- goid() }) {
			t.Fatal("a running pool refused work")
		}
		seen.Store(<-ids, i)
		poll.Until(t, 10*time.Second, func() error { // the goroutine is back in the pool
			if p.Idle() < 1 {
				return errString("no idle goroutine yet")
			}
			return nil
		})
	}
	n := 0
	seen.Range(func(any, any) bool { n++; return true })
	if n > 5 {
		t.Errorf("20 writers one after another ran on %d goroutines, want them reused", n)
	}
}

// At most maxIdle goroutines wait; the others end when their work does.
// After Stop none is left (goleak checks) and work is refused.
func TestWriterPoolBoundsIdleAndStops(t *testing.T) {
	p := NewWriterPool(3)
	release := make(chan struct{})
	var started sync.WaitGroup
	for range 10 {
		started.Add(1)
		p.Go(func() { started.Done(); <-release })
	}
	started.Wait() // ten at once: ten goroutines
	close(release)
	poll.Until(t, 10*time.Second, func() error {
		if p.Idle() != 3 {
			return errString("idle goroutines not yet 3")
		}
		return nil
	})
	p.Stop()
	if p.Idle() != 0 {
		t.Errorf("%d idle after Stop", p.Idle())
	}
	if p.Go(func() { t.Error("ran after Stop") }) {
		t.Error("Go accepted work after Stop")
	}
}

// Stop waits for a goroutine that runs a writer.
func TestWriterPoolStopWaitsForWork(t *testing.T) {
	p := NewWriterPool(1)
	running, done := make(chan struct{}), make(chan struct{})
	p.Go(func() {
		close(running)
		time.Sleep(50 * time.Millisecond)
		close(done)
	})
	<-running
	p.Stop()
	select {
	case <-done:
	default:
		t.Fatal("Stop returned while a writer ran")
	}
}

// goid returns the calling goroutine's id, from its stack trace's first
// line ("goroutine 18 [running]:").
func goid() uint64 {
	var b [64]byte
	s := string(b[:runtime.Stack(b[:], false)])
	var id uint64
	fmt.Sscanf(strings.TrimPrefix(s, "goroutine "), "%d", &id)
	return id
}
