package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// writeFloor runs -mode write: it starts the reader child, accepts its
// connections, and writes a frame to each every tick.
func writeFloor(ctx context.Context, o options) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	child := exec.CommandContext(ctx, os.Args[0])
	child.Env = append(os.Environ(), readerEnv+"="+ln.Addr().String(), connsEnv+"="+strconv.Itoa(o.conns))
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		return fmt.Errorf("reader: %w", err)
	}
	defer func() { cancel(); _ = child.Wait() }()
	conns, err := accept(ln, o.conns)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	if err != nil {
		return err
	}
	frame := make([]byte, o.bytes)
	for i := range frame {
		frame[i] = 'x'
	}
	var tick func() error
	if o.serial {
		tick = func() error { return writeAll(conns, frame) }
	} else {
		w := startWriters(conns, frame)
		defer w.stop()
		tick = w.tick
	}
	cpu, n, err := ticks(ctx, o, tick)
	if err != nil {
		return err
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

func startWriters(conns []net.Conn, frame []byte) *writers {
	w := &writers{errs: make(chan error, len(conns))}
	for _, c := range conns {
		wake := make(chan struct{}, 1)
		w.wake = append(w.wake, wake)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for range wake {
				if err := writeOne(c, frame); err != nil {
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
)

// readerChild runs the reader if this process is the reader child, and
// reports whether it was; the process then exits when its parent closes
// the connections (or kills it).
func readerChild() bool {
	addr := os.Getenv(readerEnv)
	if addr == "" {
		return false
	}
	n, err := strconv.Atoi(os.Getenv(connsEnv))
	if err == nil {
		err = read(context.Background(), addr, n)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tickfloor reader:", err)
		os.Exit(1)
	}
	return true
}

// read is the child: it opens n connections to addr and reads them until
// they close or ctx ends.
func read(ctx context.Context, addr string, n int) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	var d net.Dialer
	for range n {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("dial: %w", err)
		}
		stop := context.AfterFunc(ctx, func() { _ = c.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer stop()
			defer c.Close()
			if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, net.ErrClosed) {
				errs <- err
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}
