// Package logbuf is a log destination a test may read while other
// goroutines write to it: every method is safe for concurrent use, and
// reads see all complete writes made before them.
package logbuf

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
)

// Buffer collects what is written to it. The zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p; it never fails.
func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Contains reports whether s was written (within one write or across).
func (l *Buffer) Contains(s string) bool { return strings.Contains(l.String(), s) }

// Count returns how many times s occurs in what was written.
func (l *Buffer) Count(s string) int { return strings.Count(l.String(), s) }

// Lines returns the complete lines written so far, without their newlines.
func (l *Buffer) Lines() []string {
	s := l.String()
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.Split(s[:i], "\n")
	}
	return nil
}

// Text returns a logger writing text records to l with opts (nil: the
// defaults, Info level).
func (l *Buffer) Text(opts *slog.HandlerOptions) *slog.Logger {
	return slog.New(slog.NewTextHandler(l, opts))
}
