package redisfix

import (
	"testing"

	"github.com/redis/go-redis/v9"
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

// Entries decodes what a writer stored, and fails on what does not decode.
func TestEntries(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	if err := rdb.XAdd(t.Context(), &redis.XAddArgs{Stream: "s", ID: "1-1", Values: []string{"x", "y"}}).Err(); err != nil {
		t.Fatal(err)
	}
	f := &fatals{TB: t}
	Entries(f, rdb, "s")
	if f.n == 0 {
		t.Fatal("an entry without the event fields decoded")
	}
	if got := Entries(t, rdb, "none"); len(got) != 0 {
		t.Fatalf("empty stream: %d entries", len(got))
	}
}

type fatals struct {
	testing.TB
	n int
}

func (f *fatals) Helper()               { f.TB.Helper() }
func (f *fatals) Fatalf(string, ...any) { f.n++ }
