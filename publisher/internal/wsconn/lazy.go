package wsconn

import (
	"sync"
	"sync/atomic"
	"time"
)

// lazyWriter runs a connection's writer goroutine only while there is
// something to write (and, when frames come fast, up to busyGap after):
// an idle connection costs one goroutine, not two, and holds no writer
// stack or timer. Its lifecycle: kick starts the goroutine unless one runs
// (and wakes one that waits); the goroutine waits with wait, gives up its
// role with retire; stop forbids new starts and waits for the running one.
// Safe for concurrent use; kick never blocks.
type lazyWriter struct {
	loop    func()        // the writer's body, run on its own goroutine
	pool    *WriterPool   // where the goroutine comes from; nil: a new one each time
	wake    chan struct{} // capacity 1: wakes a waiting writer
	running atomic.Bool   // a writer goroutine runs (or is starting)
	timer   *time.Timer   // wait's (AfterFunc: timeout); used only by the running writer

	mu      sync.Mutex // guards stopped and the Add side of wg
	stopped bool
	wg      sync.WaitGroup
}

func newLazyWriter(loop func(), pool *WriterPool) *lazyWriter {
	return &lazyWriter{loop: loop, pool: pool, wake: make(chan struct{}, 1)}
}

// kick wakes the writer, starting it unless one runs. Called after
// anything is queued, from any goroutine.
func (w *lazyWriter) kick() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
	if w.running.Load() || !w.running.CompareAndSwap(false, true) {
		return
	}
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		w.running.Store(false)
		return
	}
	w.wg.Add(1)
	w.mu.Unlock()
	run := func() {
		defer w.wg.Done()
		w.loop()
	}
	if w.pool == nil || !w.pool.Go(run) {
		go run()
	}
}

// wait blocks the running writer until it is kicked (true) or d passes
// (false). The timer wakes the writer through wake, as a kick does, so
// that the wait is one channel receive rather than a select over two
// channels: a busy writer waits once per frame (writer.go). A kick that
// comes as the timer fires may be reported as false; the writer then
// looks at the queue before it retires (retire), so nothing is missed.
// A timer's wake-up that comes after its wait ended is a spurious wake-up
// of the next wait, after which the writer finds nothing and waits again.
func (w *lazyWriter) wait(d time.Duration) bool {
	if w.timer == nil {
		w.timer = time.AfterFunc(d, w.timeout)
	} else {
		w.timer.Reset(d)
	}
	<-w.wake
	return w.timer.Stop()
}

// timeout is the wait's timer: it wakes the writer like a kick.
func (w *lazyWriter) timeout() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// retire gives up the writer's role; it reports true if the caller must go
// on after all. Whoever queued after the writer's last look either saw
// running false and started a writer, or left the work for this re-check
// of pending.
func (w *lazyWriter) retire(pending func() bool) bool {
	w.timer = nil // an idle connection keeps no timer; before the Store: the next writer owns the field
	w.running.Store(false)
	return pending() && w.running.CompareAndSwap(false, true)
}

// stop forbids new writers and waits for the running one to return.
func (w *lazyWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	w.wg.Wait()
}
