package benchkit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/tickwire/tickwire/shared/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ProcCPU reads this process's CPU time, which grows as it spins.
func TestProcCPU(t *testing.T) {
	before, err := ProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for after := before; after <= before; {
		if after, err = ProcCPU(os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ProcCPU(-1); !errors.Is(err, ErrNoProc) {
		t.Errorf("ProcCPU(-1) = %v, want ErrNoProc", err)
	}
}

func TestScrape(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "# HELP a x\n# TYPE a gauge\na 1.5\nb{x=\"y\"} 2\nc 3e+06\n")
	}))
	defer srv.Close()
	got, err := Scrape(srv.URL+"/metrics", "a", "b", "c", "d")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["a"] != 1.5 || got["c"] != 3e6 {
		t.Errorf("Scrape = %v, want a=1.5 c=3e6 (labelled b and missing d left out)", got)
	}
	if _, err := Scrape(srv.URL+"/nope", "a"); err == nil {
		t.Error("a 404 was not an error")
	}
}

func TestParseRedisCPU(t *testing.T) {
	info := "# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:2.250000\r\nused_cpu_sys_children:9.0\r\nused_cpu_user_main_thread:1.0\r\n"
	got, err := ParseRedisCPU(info)
	if err != nil || got != 3.75 {
		t.Fatalf("ParseRedisCPU = %v, %v; want 3.75", got, err)
	}
	if _, err := ParseRedisCPU("# CPU\r\nused_cpu_sys:1\r\n"); err == nil {
		t.Error("a reply without used_cpu_user was accepted")
	}
	if _, err := ParseRedisCPU("used_cpu_sys:x\r\nused_cpu_user:1\r\n"); err == nil {
		t.Error("a bad number was accepted")
	}
}

// The meter reads a real Redis's CPU, which grows while it works.
func TestRedisMeter(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	m, err := NewRedisMeter(ctx, "redis://"+srv.Addr()+"/0")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	for used := 0.0; used <= 0; {
		if err := rdb.Set(ctx, "k", strings.Repeat("x", 1<<16), 0).Err(); err != nil {
			t.Fatal(err)
		}
		if used, err = m.Used(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := NewRedisMeter(ctx, "http://nope"); err == nil {
		t.Error("a bad URL was accepted")
	}
	if used, err := (&RedisMeter{}).Used(ctx); used != 0 || err != nil {
		t.Errorf("the meter of no URL = %v, %v", used, err)
	}
}
