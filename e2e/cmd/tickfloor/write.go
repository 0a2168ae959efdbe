package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// writeFloor runs -mode write: it starts the reader child, accepts its
// connections, and writes a frame to each every tick. Each frame starts
// with the tick's time, from which the reader measures the latency of the
// fan-out.
func writeFloor(ctx context.Context, o options) error {
	if o.bytes < 8 {
		return fmt.Errorf("-bytes %d: want at least 8 (the frame carries its tick's time)", o.bytes)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var report bytes.Buffer
	child := exec.CommandContext(ctx, os.Args[0])
	child.Env = append(os.Environ(), readerEnv+"="+ln.Addr().String(), connsEnv+"="+strconv.Itoa(o.conns),
		bytesEnv+"="+strconv.Itoa(o.bytes), fromEnv+"="+strconv.FormatInt(time.Now().Add(o.warmup).UnixNano(), 10))
	child.Stdout, child.Stderr = &report, os.Stderr
	if err := child.Start(); err != nil {
		return fmt.Errorf("reader: %w", err)
	}
	waited := false
	defer func() {
		if !waited {
			cancel()
			_ = child.Wait()
		}
	}()
	conns, err := accept(ln, o.conns)
	closeAll := func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}
	defer closeAll()
	if err != nil {
		return err
	}
	var frame atomic.Pointer[[]byte]
	next := func() {
		b := make([]byte, o.bytes)
		binary.LittleEndian.PutUint64(b, uint64(time.Now().UnixNano()))
		for i := 8; i < len(b); i++ {
			b[i] = 'x'
		}
		frame.Store(&b)
	}
	var tick func() error
	if o.serial {
		tick = func() error { next(); return writeAll(conns, *frame.Load()) }
	} else {
		w := startWriters(conns, &frame)
		defer w.stop()
		tick = func() error { next(); return w.tick() }
	}
	cpu, n, err := ticks(ctx, o, tick)
	if err != nil {
		return err
	}
	closeAll() // the reader ends at the end of its streams and reports
	waited = true
	if err := child.Wait(); err != nil {
		return fmt.Errorf("reader: %w", err)
	}
	frames := float64(n * len(conns))
	how := "a goroutine per connection, woken per tick"
	if o.serial {
		how = "one goroutine writing every connection in turn"
	}
	fmt.Printf("write floor: %d connections, a %d-byte frame each every %v, %s\n", len(conns), o.bytes, o.tick, how)
	fmt.Printf("  %d ticks, %.0f frames: %.2f s of CPU (%.1f %% of a core)\n", n, frames, cpu, 100*cpu/o.duration.Seconds())
	fmt.Printf("  %.1f µs per frame; %.1f µs per delivery at %d events per frame\n",
		1e6*cpu/frames, 1e6*cpu/frames/float64(o.events), o.events)
	fmt.Printf("  tick to reader: %s", report.String())
	return nil
}

// accept takes n connections from ln, within a minute.
func accept(ln net.Listener, n int) ([]net.Conn, error) {
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(time.Minute))
	var conns []net.Conn
	for len(conns) < n {
		c, err := ln.Accept()
		if err != nil {
			return conns, fmt.Errorf("accept: %w", err)
		}
		conns = append(conns, c)
	}
	return conns, nil
}

// writeAll writes frame to every connection in turn.
func writeAll(conns []net.Conn, frame []byte) error {
	for _, c := range conns {
		if err := writeOne(c, frame); err != nil {
			return err
		}
	}
	return nil
}

func writeOne(c net.Conn, frame []byte) error {
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(frame); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// writers are a goroutine per connection, each woken through a channel of
// one slot to write one frame.
type writers struct {
	wake []chan struct{}
	errs chan error
	wg   sync.WaitGroup
}

func startWriters(conns []net.Conn, frame *atomic.Pointer[[]byte]) *writers {
	w := &writers{errs: make(chan error, len(conns))}
	for _, c := range conns {
		wake := make(chan struct{}, 1)
		w.wake = append(w.wake, wake)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for range wake {
				if err := writeOne(c, *frame.Load()); err != nil {
					w.errs <- err
					return
				}
			}
		}()
	}
	return w
}

// tick wakes every writer; it reports the first write error seen so far.
func (w *writers) tick() error {
	select {
	case err := <-w.errs:
		return err
	default:
	}
	for _, wake := range w.wake {
		select {
		case wake <- struct{}{}:
		default: // the previous frame is not written yet: the tick is skipped for it
		}
	}
	return nil
}

func (w *writers) stop() {
	for _, wake := range w.wake {
		close(wake)
	}
	w.wg.Wait()
}

// The reader child is this program run again with these variables set.
const (
	readerEnv = "TICKFLOOR_READER" // the address to connect to
	connsEnv  = "TICKFLOOR_CONNS"  // how many connections
	bytesEnv  = "TICKFLOOR_BYTES"  // the size of every frame
	fromEnv   = "TICKFLOOR_FROM"   // Unix ns: frames of ticks before are not counted (warm-up)
)

// readerChild runs the reader if this process is the reader child, and
// reports whether it was; the process then exits when its parent closes
// the connections (or kills it), after printing the latencies.
func readerChild() bool {
	addr := os.Getenv(readerEnv)
	if addr == "" {
		return false
	}
	n, err1 := strconv.Atoi(os.Getenv(connsEnv))
	size, err2 := strconv.Atoi(os.Getenv(bytesEnv))
	from, err3 := strconv.ParseInt(os.Getenv(fromEnv), 10, 64)
	err := errors.Join(err1, err2, err3)
	var lat *latencies
	if err == nil {
		lat, err = read(context.Background(), addr, n, size, from)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tickfloor reader:", err)
		os.Exit(1)
	}
	fmt.Println(lat)
	return true
}

// read is the child: it opens n connections to addr and reads frames of
// size bytes from them until they close or ctx ends, recording for each
// frame of a tick at or after from how long after its tick it was read.
func read(ctx context.Context, addr string, n, size int, from int64) (*latencies, error) {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	lat := &latencies{}
	var d net.Dialer
	for range n {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("dial: %w", err)
		}
		stop := context.AfterFunc(ctx, func() { _ = c.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer stop()
			defer c.Close()
			buf := make([]byte, size)
			for {
				if _, err := io.ReadFull(c, buf); err != nil {
					if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
						errs <- err
					}
					return
				}
				now := time.Now().UnixNano()
				if at := int64(binary.LittleEndian.Uint64(buf)); at >= from {
					lat.add(time.Duration(now - at))
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
		return lat, nil
	}
}

// latencies is a histogram of 10 µs buckets, safe for concurrent use.
type latencies struct {
	mu      sync.Mutex
	buckets [100_000]int64 // up to 1 s; the last bucket holds the rest
	n       int64
	max     time.Duration
}

const latencyUnit = 10 * time.Microsecond

func (l *latencies) add(d time.Duration) {
	i := min(max(int(d/latencyUnit), 0), len(l.buckets)-1)
	l.mu.Lock()
	l.buckets[i]++
	l.n++
	l.max = max(l.max, d)
	l.mu.Unlock()
}

func (l *latencies) quantile(q float64) time.Duration {
	want := int64(q * float64(l.n))
	var seen int64
	for i, c := range l.buckets {
		if seen += c; seen > want {
			return time.Duration(i+1) * latencyUnit
		}
	}
	return time.Duration(len(l.buckets)) * latencyUnit
}

// String is the report line the parent prints.
func (l *latencies) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 {
		return "no frames measured"
	}
	return fmt.Sprintf("%d frames, p50 %v p90 %v p99 %v p99.9 %v max %v",
		l.n, l.quantile(.5), l.quantile(.9), l.quantile(.99), l.quantile(.999), l.max.Round(latencyUnit))
}
