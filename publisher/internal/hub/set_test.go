package hub

import (
	"fmt"
	"runtime"
	"slices"
	"testing"

	"github.com/tickwire/tickwire/shared/event"
)

func trade(sym string) event.Channel { return event.Channel{Kind: event.KindTrade, Symbol: sym} }

// A Set behaves as a map of channels through its move from slice to map
// and back to nothing.
func TestSet(t *testing.T) {
	var s Set
	want := map[event.Channel]bool{}
	check := func(step string) {
		t.Helper()
		if s.Len() != len(want) {
			t.Fatalf("%s: Len %d, want %d", step, s.Len(), len(want))
		}
		var got []event.Channel
		for c := range s.All() {
			got = append(got, c)
			if !want[c] || !s.Has(c) {
				t.Fatalf("%s: All yields %v, not in the set", step, c)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: All yields %d channels, want %d", step, len(got), len(want))
		}
	}
	for i := range 3 * fewChannels {
		c := trade(fmt.Sprint(i))
		if !s.Add(c) || s.Add(c) {
			t.Fatalf("Add %v: want true once, then false", c)
		}
		want[c] = true
		check(fmt.Sprintf("after %d adds", i+1))
	}
	if s.Has(trade("none")) || s.Delete(trade("none")) {
		t.Fatal("Has or Delete found a channel never added")
	}
	for i := range 3 * fewChannels {
		c := trade(fmt.Sprint(i))
		if !s.Delete(c) || s.Delete(c) {
			t.Fatalf("Delete %v: want true once, then false", c)
		}
		delete(want, c)
		check(fmt.Sprintf("after %d deletes", i+1))
	}
	if s.few != nil || s.many != nil {
		t.Fatal("an emptied set keeps memory")
	}
	for i := range 3 { // small again after emptied
		s.Add(trade(fmt.Sprint(i)))
	}
	if s.many != nil || !slices.Equal(s.few, []event.Channel{trade("0"), trade("1"), trade("2")}) {
		t.Fatalf("few %v, many %v: want a slice of 3", s.few, s.many)
	}
}

type nopSub struct{ _ byte }

func (*nopSub) Deliver(*Message) bool { return false }
func (*nopSub) Wake()                 {}

// What the hub keeps for a subscriber of one channel of its own (issue 9's
// W4: thousands of quiet connections): its entry, its set of one channel
// and the channel's list. A map per subscriber took about 530 bytes.
func TestHubMemoryPerSubscriber(t *testing.T) {
	const n = 2000
	h := New()
	subs := make([]*nopSub, n)
	for i := range subs {
		subs[i] = &nopSub{}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i, s := range subs {
		h.Subscribe(s, []event.Channel{trade(fmt.Sprintf("IDLE%d", i))})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / n
	t.Logf("%.0f bytes per subscriber of one channel", per)
	if per > 320 {
		t.Fatalf("%.0f bytes per subscriber of one channel, want under 320", per)
	}
	runtime.KeepAlive(subs)
	runtime.KeepAlive(h)
}
