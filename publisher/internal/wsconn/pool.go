package wsconn

import (
	"sync"
	"sync/atomic"
)

// DefaultPoolIdle is how many goroutines a WriterPool keeps waiting: enough
// for the writers that run at once between two batches on a busy replica,
// at a few KiB of stack each.
const DefaultPoolIdle = 256

// WriterPool runs the connections' writers (lazy.go) on goroutines that
// outlive one writer. A writer starts on an idle goroutine of the pool
// when there is one, and on a new goroutine otherwise, which waits in the
// pool for the next writer once its own ends, unless maxIdle already wait.
// Why: a connection's writer runs only while it has something to write,
// so a connection that receives a frame now and then starts a goroutine
// per frame; a new goroutine starts with a small stack (the runtime sizes
// it from the average in use, and idle connections keep theirs small) and
// grows it by copying on the way into gorilla's write, every time. A
// pooled goroutine grew its stack once.
//
// Safe for concurrent use. Stop ends the idle goroutines and waits for
// the busy ones to finish their writer.
type WriterPool struct {
	work    chan func() // unbuffered: a send succeeds only if an idle goroutine takes it
	quit    chan struct{}
	maxIdle int32
	idle    atomic.Int32

	mu      sync.Mutex // guards stopped and the Add side of wg
	stopped bool
	wg      sync.WaitGroup
}

// NewWriterPool returns a pool that keeps up to maxIdle goroutines waiting.
func NewWriterPool(maxIdle int) *WriterPool {
	return &WriterPool{work: make(chan func()), quit: make(chan struct{}), maxIdle: int32(max(maxIdle, 0))}
}

// Go runs f on an idle goroutine of the pool, or on a new one. It never
// waits for f. Once Stop was called it runs nothing and returns false.
func (p *WriterPool) Go(f func()) bool {
	select {
	case p.work <- f:
		return true
	default:
	}
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return false
	}
	p.wg.Add(1)
	p.mu.Unlock()
	go p.run(f)
	return true
}

// run runs f, then the work handed to it while it waits idle, until the
// pool holds enough idle goroutines or is stopped.
func (p *WriterPool) run(f func()) {
	defer p.wg.Done()
	for {
		f()
		if p.idle.Add(1) > p.maxIdle {
			p.idle.Add(-1)
			return
		}
		select {
		case f = <-p.work:
			p.idle.Add(-1)
		case <-p.quit:
			p.idle.Add(-1)
			return
		}
	}
}

// Idle returns how many goroutines wait for work.
func (p *WriterPool) Idle() int { return int(p.idle.Load()) }

// Stop ends the idle goroutines, makes Go refuse work, and waits for the
// goroutines running a writer to finish it.
func (p *WriterPool) Stop() {
	p.mu.Lock()
	if !p.stopped {
		p.stopped = true
		close(p.quit)
	}
	p.mu.Unlock()
	p.wg.Wait()
}
