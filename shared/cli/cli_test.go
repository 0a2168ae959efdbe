package cli_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tickwire/tickwire/shared/cli"
	"github.com/tickwire/tickwire/shared/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type spec struct {
	config.Common
	Addr  string        `envconfig:"X_ADDR" default:":1" desc:"where it listens"`
	Every time.Duration `envconfig:"X_EVERY" default:"5s" desc:"how often"`
	Name  string        `envconfig:"REDIS_URL" desc:"shadowed: Common names it first"`
}

func TestVars(t *testing.T) {
	vars, err := cli.Vars(&spec{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range vars {
		names = append(names, v.Name)
	}
	// Common's variables first, in their order, then the spec's own.
	common, err := cli.Vars(&config.Common{})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, v := range common {
		want = append(want, v.Name)
	}
	want = append(want, "X_ADDR", "X_EVERY", "REDIS_URL")
	if got := strings.Join(names, " "); got != strings.Join(want, " ") {
		t.Errorf("names = %s\nwant    %s", got, strings.Join(want, " "))
	}
	if v := vars[len(common)+1]; v != (cli.Var{Name: "X_EVERY", Default: "5s", Desc: "how often"}) {
		t.Errorf("X_EVERY = %+v", v)
	}
	for _, v := range vars {
		if v.Desc == "" {
			t.Errorf("%s has no desc tag", v.Name)
		}
	}
}

func TestUsage(t *testing.T) {
	var b bytes.Buffer
	if err := cli.Usage(&b, "x: does things\n", &spec{}, &config.Common{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.HasPrefix(out, "x: does things\n\nEnvironment") {
		t.Errorf("usage starts %q", out[:min(len(out), 60)])
	}
	if n := strings.Count(out, "REDIS_URL "); n != 1 {
		t.Errorf("REDIS_URL listed %d times:\n%s", n, out)
	}
	if strings.Contains(out, "shadowed") {
		t.Errorf("a later spec's duplicate was printed:\n%s", out)
	}
	for _, line := range []string{"X_EVERY", "5s", "how often"} {
		if !strings.Contains(out, line) {
			t.Errorf("usage lacks %q:\n%s", line, out)
		}
	}
}

func TestIsHelp(t *testing.T) {
	for arg, want := range map[string]bool{"-h": true, "--help": true, "-help": true, "help": true, "serve": false, "--helpx": false, "": false} {
		if cli.IsHelp(arg) != want {
			t.Errorf("IsHelp(%q) = %v", arg, !want)
		}
	}
}

func TestVersion(t *testing.T) {
	var b bytes.Buffer
	if err := cli.Version(&b, "collector"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "collector devel") || !strings.Contains(b.String(), "go1.") {
		t.Errorf("version = %q", b.String())
	}
}

func TestHealthcheck(t *testing.T) {
	var ready atomic.Bool
	ready.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		if !ready.Load() {
			http.Error(w, `{"status":"not ready","reason":"redis down"}`, http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	if err := cli.Healthcheck(context.Background(), addr); err != nil {
		t.Errorf("ready: %v", err)
	}
	ready.Store(false)
	err := cli.Healthcheck(context.Background(), addr)
	if !errors.Is(err, cli.ErrUnhealthy) || !strings.Contains(err.Error(), "redis down") {
		t.Errorf("not ready: %v", err)
	}
	srv.Close()
	if err := cli.Healthcheck(context.Background(), addr); err == nil || errors.Is(err, cli.ErrUnhealthy) {
		t.Errorf("nothing listening: %v", err)
	}
	if err := cli.Healthcheck(context.Background(), "nonsense"); err == nil {
		t.Error("bad address accepted")
	}
}
