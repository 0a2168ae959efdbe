package tape

import (
	"slices"
	"testing"
)

func TestOverlap(t *testing.T) {
	a := []string{"1-0", "2-0", "3-0", "4-0"}
	b := []string{"2-0", "3-0", "4-0", "5-0"}
	o1, o2 := Overlap(a, b)
	if want := []string{"2-0", "3-0", "4-0"}; !slices.Equal(o1, want) || !slices.Equal(o2, want) {
		t.Fatalf("Overlap = %v, %v; want %v twice", o1, o2, want)
	}
	gap := []string{"2-0", "4-0", "5-0"}
	if o1, o2 := Overlap(a, gap); slices.Equal(o1, o2) {
		t.Fatalf("a gap went unseen: %v vs %v", o1, o2)
	}
	if o1, o2 := Overlap(nil, b); o1 != nil || o2 != nil {
		t.Fatalf("Overlap with an empty tape = %v, %v", o1, o2)
	}
}

func TestAddPerChannel(t *testing.T) {
	tp := New(t)
	tp.Add("trade:A", "5-0")
	tp.Add("trade:B", "1-0") // another channel: its own order
	tp.Add("trade:A", "5-1")
	if tp.Len("trade:A") != 2 || tp.Last("trade:A") != "5-1" || tp.Last("trade:C") != "" {
		t.Fatalf("tape A %v, B %v", tp.IDs("trade:A"), tp.IDs("trade:B"))
	}
}

// fatals records Fatalf instead of stopping the goroutine.
type fatals struct {
	testing.TB
	msgs []string
}

func (f *fatals) Helper()                        {}
func (f *fatals) Fatalf(format string, _ ...any) { f.msgs = append(f.msgs, format) }

// A repeat, a step back and an id that does not parse each fail the test (the fake goes on after Fatalf, so "x" may fail twice).
func TestAddRefuses(t *testing.T) {
	for _, bad := range []string{"5-0", "4-9", "x"} {
		var f fatals
		tp := New(&f)
		tp.Add("trade:A", "5-0")
		tp.Add("trade:A", bad)
		if len(f.msgs) == 0 {
			t.Errorf("after 5-0, %s: no failure", bad)
		}
	}
}
