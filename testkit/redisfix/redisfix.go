// Package redisfix opens the stream layout and a Redis client the way the
// services do, from a config.Common, for tests that write or read streams
// on a private redis-server (shared/redistest). The client is closed at
// the test's cleanup. Packages inside shared/streams or shared/config
// cannot use it (it imports them).
package redisfix

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/config"
	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/streams"
)

// Open returns c's layout and a client named name, failing the test if
// either is refused.
func Open(t testing.TB, c config.Common, name string) (streams.Layout, redis.UniversalClient) {
	t.Helper()
	layout, err := c.Layout()
	if err != nil {
		t.Fatal(err)
	}
	client, err := c.NewRedis(config.ClientOptions{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return layout, client
}

// Entry is one stream entry and the event it decodes to.
type Entry struct {
	Msg   redis.XMessage
	Event event.Event
}

// Entries reads all of stream key, oldest first, and decodes every entry,
// failing the test on a read error or an entry that does not decode.
func Entries(t testing.TB, rdb redis.Cmdable, key string) []Entry {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), key, "-", "+").Result()
	if err != nil {
		t.Fatalf("xrange %s: %v", key, err)
	}
	out := make([]Entry, len(msgs))
	for i, m := range msgs {
		e, err := event.FromEntry(m.ID, m.Values)
		if err != nil {
			t.Fatalf("feed %s: %v", key, err)
		}
		out[i] = Entry{Msg: m, Event: e}
	}
	return out
}
