package redistest_test

import (
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/tickwire/tickwire/shared/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartStopRestart(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	if err := c.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(srv.URL(), "redis://127.0.0.1:") || !strings.HasSuffix(srv.URL(), "/0") {
		t.Errorf("URL = %q", srv.URL())
	}
	srv.Stop()
	srv.Stop() // stopping twice does nothing
	if err := c.Ping(t.Context()).Err(); err == nil {
		t.Error("PING of a stopped server succeeded")
	}
	srv.Restart()
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("PING after restart: %v", err)
	}
	// Without AOF a restart loses the data, like a crash.
	if n, err := c.Exists(t.Context(), "k").Result(); err != nil || n != 0 {
		t.Errorf("EXISTS k after restart without AOF = %d, %v", n, err)
	}
}

func TestAppendOnlyKeepsData(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	c := srv.Client()
	if err := c.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	srv.Restart()
	if v, err := c.Get(t.Context(), "k").Result(); err != nil || v != "v" {
		t.Errorf("GET k after restart with AOF = %q, %v", v, err)
	}
}

func TestRequirePass(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{RequirePass: "pw"})
	if !strings.Contains(srv.URL(), ":pw@") {
		t.Errorf("URL %q lacks the password", srv.URL())
	}
	if err := srv.Client().Ping(t.Context()).Err(); err != nil {
		t.Errorf("PING with the password: %v", err)
	}
}
