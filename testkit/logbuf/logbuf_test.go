package logbuf

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

// Concurrent writers and readers: run with -race; no line is lost or torn.
func TestConcurrentWritesAndReads(t *testing.T) {
	var b Buffer
	log := b.Text(nil)
	const writers, each = 4, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				log.Info("hello", "w", w, "i", i)
				_ = b.Count("msg=hello")
			}
		})
	}
	wg.Wait()
	if n := b.Count("msg=hello"); n != writers*each {
		t.Fatalf("Count = %d, want %d", n, writers*each)
	}
	if n := len(b.Lines()); n != writers*each {
		t.Fatalf("%d lines, want %d", n, writers*each)
	}
	if !b.Contains("w=3 i=199") {
		t.Fatalf("last record of writer 3 missing:\n%s", b.String())
	}
}

func TestLinesOnlyComplete(t *testing.T) {
	var b Buffer
	if got := b.Lines(); got != nil {
		t.Fatalf("empty buffer: Lines = %q, want nil", got)
	}
	fmt.Fprint(&b, "a\nb\npartial")
	if got := b.Lines(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Lines = %q, want [a b]", got)
	}
}
