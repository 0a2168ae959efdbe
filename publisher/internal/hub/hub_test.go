package hub

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/tickwire/tickwire/shared/event"
)

type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) Deliver(m *Message) bool {
	r.mu.Lock()
	r.got = append(r.got, m.Event.Channel.String())
	r.mu.Unlock()
	return false
}

func (r *recorder) Wake() {}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

func ch(t *testing.T, s string) event.Channel {
	t.Helper()
	c, err := event.ParseChannel(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func msg(t *testing.T, s string) *Message {
	return NewMessage(event.Event{Channel: ch(t, s), ID: event.ID{Ms: 1}, TS: 1, Data: json.RawMessage(`{}`)})
}

func TestHubRouting(t *testing.T) {
	tests := []struct {
		name  string
		sub   []string
		unsub []string
		pub   []string
		want  []string
	}{
		{"concrete", []string{"trade:AAPL"}, nil, []string{"trade:AAPL", "trade:MSFT", "quote:AAPL"}, []string{"trade:AAPL"}},
		{"wildcard", []string{"trade:*"}, nil, []string{"trade:AAPL", "trade:MSFT", "quote:AAPL"}, []string{"trade:AAPL", "trade:MSFT"}},
		{"overlap delivered once", []string{"trade:AAPL", "trade:*"}, nil, []string{"trade:AAPL"}, []string{"trade:AAPL"}},
		{"overlap other order", []string{"trade:*", "trade:AAPL"}, nil, []string{"trade:AAPL"}, []string{"trade:AAPL"}},
		{"drop wildcard keeps concrete", []string{"trade:*", "trade:AAPL"}, []string{"trade:*"}, []string{"trade:AAPL", "trade:MSFT"}, []string{"trade:AAPL"}},
		{"drop concrete keeps wildcard", []string{"trade:*", "trade:AAPL"}, []string{"trade:AAPL"}, []string{"trade:AAPL", "trade:MSFT"}, []string{"trade:AAPL", "trade:MSFT"}},
		{"unsubscribe all", []string{"quote:AAPL"}, []string{"quote:AAPL"}, []string{"quote:AAPL"}, nil},
		{"unsubscribe unknown", []string{"quote:AAPL"}, []string{"bar:AAPL", "bar:*"}, []string{"quote:AAPL"}, []string{"quote:AAPL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New()
			r := &recorder{}
			for _, s := range tt.sub {
				h.Subscribe(r, []event.Channel{ch(t, s)})
			}
			var un []event.Channel
			for _, s := range tt.unsub {
				un = append(un, ch(t, s))
			}
			h.Unsubscribe(r, un)
			var msgs []*Message
			for _, s := range tt.pub {
				msgs = append(msgs, msg(t, s))
			}
			h.Publish(msgs)
			got := r.take()
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestHubRemove(t *testing.T) {
	h := New()
	a, b := &recorder{}, &recorder{}
	h.Subscribe(a, []event.Channel{ch(t, "trade:AAPL"), ch(t, "quote:*")})
	h.Subscribe(b, []event.Channel{ch(t, "trade:AAPL")})
	if subs, n := h.Stats(); subs != 2 || n != 3 {
		t.Fatalf("stats = %d, %d; want 2, 3", subs, n)
	}
	h.Remove(a)
	h.Publish([]*Message{msg(t, "trade:AAPL"), msg(t, "quote:MSFT")})
	if got := a.take(); len(got) != 0 {
		t.Fatalf("removed subscriber got %v", got)
	}
	if got := b.take(); len(got) != 1 {
		t.Fatalf("other subscriber got %v, want one trade", got)
	}
	h.Remove(b)
	if subs, n := h.Stats(); subs != 0 || n != 0 || len(h.byCh) != 0 {
		t.Fatalf("hub not empty after removing everyone: %d %d %v", subs, n, h.byCh)
	}
}

type nop struct{ n int }

func (*nop) Deliver(*Message) bool { return false }
func (*nop) Wake()                 {}

// BenchmarkPublish measures fan-out of one event to 1000 subscribers of its
// channel: the hub's share of a delivery.
func BenchmarkPublish(b *testing.B) {
	h := New()
	c, _ := event.ParseChannel("trade:AAPL")
	for i := 0; i < 1000; i++ {
		h.Subscribe(&nop{n: i}, []event.Channel{c})
	}
	m := NewMessage(event.Event{Channel: c, Data: json.RawMessage(`{"price":1,"size":1}`)})
	msgs := []*Message{m}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.Publish(msgs)
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "deliveries/s")
}

// waker asks for one wake-up per batch, as a connection's queue does.
type waker struct{ dirty bool }

func (w *waker) Deliver(*Message) bool {
	wake := !w.dirty
	w.dirty = true
	return wake
}
func (w *waker) Wake() { w.dirty = false }

// BenchmarkPublishWake measures W3's fan-out: a batch of two events to
// 100 subscribers of both channels, each woken once after the batch.
func BenchmarkPublishWake(b *testing.B) {
	h := New()
	t, _ := event.ParseChannel("trade:AAPL")
	q, _ := event.ParseChannel("quote:AAPL")
	for range 100 {
		h.Subscribe(&waker{}, []event.Channel{t, q})
	}
	msgs := []*Message{
		NewMessage(event.Event{Channel: t, Data: json.RawMessage(`{"price":1,"size":1}`)}),
		NewMessage(event.Event{Channel: q, Data: json.RawMessage(`{"bid":1,"ask":2}`)}),
	}
	b.ReportAllocs()
	for b.Loop() {
		h.Publish(msgs)
	}
}

// A message's key is its channel's, hashed once by NewMessage or on each
// call for a message made otherwise; the kind is part of it.
func TestMessageKey(t *testing.T) {
	trade := event.Channel{Kind: event.KindTrade, Symbol: "AAPL"}
	quote := event.Channel{Kind: event.KindQuote, Symbol: "AAPL"}
	if KeyOf(trade) == KeyOf(quote) {
		t.Fatal("trade:AAPL and quote:AAPL have the same key")
	}
	if got := NewMessage(event.Event{Channel: trade}).Key(); got != KeyOf(trade) {
		t.Fatalf("NewMessage's key %d, want KeyOf %d", got, KeyOf(trade))
	}
	if got := (&Message{Event: event.Event{Channel: quote}}).Key(); got != KeyOf(quote) {
		t.Fatalf("a literal message's key %d, want KeyOf %d", got, KeyOf(quote))
	}
}
