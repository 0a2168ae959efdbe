package streams

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is a private Redis with a client, closed at the test's cleanup.
type fixture struct {
	srv *redistest.Server
	c   *redis.Client
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	srv := redistest.Start(t)
	return fixture{srv: srv, c: srv.Client()}
}

// smallNodes makes approximate trimming precise to 10 entries: Redis trims
// only whole stream nodes, 100 entries each by default.
func (f fixture) smallNodes(t *testing.T) {
	t.Helper()
	if err := f.c.ConfigSet(t.Context(), "stream-node-max-entries", "10").Err(); err != nil {
		t.Fatal(err)
	}
}

func (f fixture) xrange(t *testing.T, key string) []redis.XMessage {
	t.Helper()
	msgs, err := f.c.XRange(t.Context(), key, "-", "+").Result()
	if err != nil {
		t.Fatalf("xrange %s: %v", key, err)
	}
	return msgs
}

func (f fixture) xlen(t *testing.T, key string) int64 {
	t.Helper()
	n, err := f.c.XLen(t.Context(), key).Result()
	if err != nil {
		t.Fatalf("xlen %s: %v", key, err)
	}
	return n
}

func mustLayout(t testing.TB, shards int) Layout {
	t.Helper()
	l, err := NewLayout("md", shards)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustChannel(t testing.TB, s string) event.Channel {
	t.Helper()
	c, err := event.ParseChannel(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// trade returns a trade event whose data names its sequence number.
func trade(t testing.TB, sym string, seq int) Pending {
	t.Helper()
	return Pending{Event: event.Event{
		Channel: mustChannel(t, "trade:"+sym),
		TS:      1764288000000 + int64(seq),
		Data:    []byte(fmt.Sprintf(`{"price":%d.5,"size":%d}`, seq, seq)),
	}}
}

// symbolsCoveringShards returns symbols such that every shard of l has
// exactly perShard of them.
func symbolsCoveringShards(t *testing.T, l Layout, perShard int) []string {
	t.Helper()
	count := make(map[int]int)
	var out []string
	for i := 0; len(count) < l.Shards || !allAtLeast(count, perShard); i++ {
		if i > 10000 {
			t.Fatalf("cannot find symbols for %d shards", l.Shards)
		}
		sym := "S" + strconv.Itoa(i)
		s := l.Shard(sym)
		if count[s] >= perShard {
			continue
		}
		count[s]++
		out = append(out, sym)
	}
	return out
}

func allAtLeast(m map[int]int, n int) bool {
	for _, v := range m {
		if v < n {
			return false
		}
	}
	return true
}

// sameEvent compares what a stream entry carries.
func sameEvent(a event.Event, p Pending) bool {
	b := p.Event
	return a.Channel == b.Channel && a.TS == b.TS && string(a.Data) == string(b.Data)
}

func decode(t *testing.T, m redis.XMessage) event.Event {
	t.Helper()
	e, err := event.FromEntry(m.ID, m.Values)
	if err != nil {
		t.Fatalf("entry %s %v: %v", m.ID, m.Values, err)
	}
	return e
}

// byChannel groups events per channel, keeping their order.
func byChannel(events []Pending) map[event.Channel][]Pending {
	out := make(map[event.Channel][]Pending)
	for _, e := range events {
		out[e.Channel] = append(out[e.Channel], e)
	}
	return out
}

// unwrittenOf keeps what the older tests check of a Write.
func unwrittenOf(r Result, err error) ([]Pending, error) { return r.Unwritten, err }
