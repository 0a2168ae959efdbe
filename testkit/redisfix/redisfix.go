// Package redisfix opens the stream layout and a Redis client the way the
// services do, from a config.Common, for tests that write or read streams
// on a private redis-server (shared/redistest). The client is closed at
// the test's cleanup. Packages inside shared/streams or shared/config
// cannot use it (it imports them).
package redisfix

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/config"
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
