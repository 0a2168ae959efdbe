// Package tape records the event ids a client receives, per channel, and
// fails the test as soon as one does not follow the one before: ids of a
// channel only grow, so a repeat or a step back is caught where it happens.
// A Tape belongs to one goroutine (the test's or the one reading frames).
package tape

import (
	"slices"
	"testing"

	"github.com/tickwire/tickwire/shared/event"
)

// Tape is the ids seen so far, per channel, in arrival order.
type Tape struct {
	t    testing.TB
	last map[string]event.ID
	ids  map[string][]string
}

// New returns an empty tape that reports to t.
func New(t testing.TB) *Tape {
	return &Tape{t: t, last: map[string]event.ID{}, ids: map[string][]string{}}
}

// Add appends id to channel ch, failing the test if id does not parse or
// is not greater than the channel's last id.
func (tp *Tape) Add(ch, id string) {
	tp.t.Helper()
	parsed, err := event.ParseID(id)
	if err != nil {
		tp.t.Fatalf("event id %q: %v", id, err)
	}
	if last, ok := tp.last[ch]; ok && !last.Less(parsed) {
		tp.t.Fatalf("channel %s: id %s after %s (not growing, or twice)", ch, parsed, last)
	}
	tp.last[ch] = parsed
	tp.ids[ch] = append(tp.ids[ch], id)
}

// IDs returns channel ch's ids in arrival order (the tape's own slice).
func (tp *Tape) IDs(ch string) []string { return tp.ids[ch] }

// Channels returns the channels that have ids, sorted.
func (tp *Tape) Channels() []string {
	chs := make([]string, 0, len(tp.ids))
	for ch := range tp.ids {
		chs = append(chs, ch)
	}
	slices.Sort(chs)
	return chs
}

// Len returns how many ids channel ch holds.
func (tp *Tape) Len(ch string) int { return len(tp.ids[ch]) }

// Last returns channel ch's last id, "" if it has none.
func (tp *Tape) Last(ch string) string {
	ids := tp.ids[ch]
	if len(ids) == 0 {
		return ""
	}
	return ids[len(ids)-1]
}

// Overlap returns the parts of two growing id lists that cover their
// common span: from the later of their first ids to the earlier of their
// last. Two clients that missed nothing and saw nothing twice have equal
// overlaps.
func Overlap(a, b []string) ([]string, []string) {
	if len(a) == 0 || len(b) == 0 {
		return nil, nil
	}
	lo, hi := maxID(a[0], b[0]), minID(a[len(a)-1], b[len(b)-1])
	return span(a, lo, hi), span(b, lo, hi)
}

func span(ids []string, lo, hi string) []string {
	var out []string
	for _, id := range ids {
		if !Less(id, lo) && !Less(hi, id) {
			out = append(out, id)
		}
	}
	return out
}

// Less compares two event ids; an id that does not parse sorts first.
func Less(a, b string) bool {
	x, errX := event.ParseID(a)
	y, errY := event.ParseID(b)
	if errX != nil || errY != nil {
		return errX != nil && errY == nil
	}
	return x.Less(y)
}

func maxID(a, b string) string {
	if Less(a, b) {
		return b
	}
	return a
}

func minID(a, b string) string {
	if Less(a, b) {
		return a
	}
	return b
}
