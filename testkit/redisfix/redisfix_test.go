package redisfix

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/tickwire/tickwire/shared/config"
	"github.com/tickwire/tickwire/shared/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestOpenPings(t *testing.T) {
	srv := redistest.Start(t)
	layout, client := Open(t, config.Common{RedisURL: srv.URL(), StreamPrefix: "fx", StreamShards: 2}, "test-fix")
	if err := client.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	if n := len(layout.Feeds()); n != 2 {
		t.Fatalf("%d feeds, want 2", n)
	}
}
