package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/testkit/logbuf"
)

// TestStatusSeesStalledReplica runs a collector and two replicas, then
// freezes one (SIGSTOP): users connected, events in Redis, nothing read:
// the seed's failure. `publisher status` reports all well before, names
// the frozen replica stalled (exit 1) within seconds, and all well again
// once it runs (SIGCONT).
func TestStatusSeesStalledReplica(t *testing.T) {
	srv := redistest.Start(t)
	const prefix = "ops"
	startCollector(t, srv, prefix, "COLLECTOR_ID=col-e2e")
	startPublisher(t, srv.URL(), prefix, "pub-1")
	frozen, _ := startPublisher(t, srv.URL(), prefix, "pub-2")
	env := []string{"REDIS_URL=" + srv.URL(), "STREAM_PREFIX=" + prefix, "PUBLISHER_STALL_AFTER=1s"}

	type report struct {
		Collector struct{ Holder string }
		Replicas  []struct {
			ID, State string
			Conns     int64
		}
		Problems []string
	}
	status := func() (report, int, string) {
		out, errOut, code := runTool(t, "publisher", env, 20*time.Second, "status", "--json")
		var r report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("status --json: %v\n%s%s", err, out, errOut)
		}
		return r, code, out
	}
	stateOf := func(r report, id string) string {
		for _, rep := range r.Replicas {
			if rep.ID == id {
				return rep.State
			}
		}
		return "absent"
	}
	poll.Until(t, 20*time.Second, func() error {
		r, code, out := status()
		if code != 0 || r.Collector.Holder != "col-e2e" || stateOf(r, "pub-1") != "ok" || stateOf(r, "pub-2") != "ok" {
			return fmt.Errorf("exit %d:\n%s", code, out)
		}
		return nil
	})
	text, _, code := runTool(t, "publisher", env, 20*time.Second, "status")
	if code != 0 || !strings.Contains(text, "col-e2e holds the lease") || !strings.Contains(text, "all well") {
		t.Errorf("status (text), exit %d:\n%s", code, text)
	}

	frozen.signal(syscall.SIGSTOP)
	stopped := time.Now()
	poll.Until(t, 20*time.Second, func() error {
		r, code, out := status()
		if code != 1 || stateOf(r, "pub-2") != "stalled" || stateOf(r, "pub-1") != "ok" {
			return fmt.Errorf("exit %d:\n%s", code, out)
		}
		return nil
	})
	t.Logf("stalled replica reported %v after SIGSTOP", time.Since(stopped).Round(100*time.Millisecond))
	text, _, _ = runTool(t, "publisher", env, 20*time.Second, "status")
	if !strings.Contains(text, "replica pub-2 is stalled") {
		t.Errorf("status (text) does not name the stalled replica:\n%s", text)
	}

	frozen.signal(syscall.SIGCONT)
	poll.Until(t, 20*time.Second, func() error {
		if r, code, out := status(); code != 0 || stateOf(r, "pub-2") != "ok" {
			return fmt.Errorf("exit %d:\n%s", code, out)
		}
		return nil
	})
}

// TestTailCommand: `publisher tail` prints the live events of a channel
// and of a kind, --last with --json prints history, and SIGINT ends it
// with exit 0.
func TestTailCommand(t *testing.T) {
	srv := redistest.Start(t)
	const prefix = "tailx"
	startCollector(t, srv, prefix)
	env := []string{"REDIS_URL=" + srv.URL(), "STREAM_PREFIX=" + prefix}

	cmd := exec.Command(filepath.Join(binDir, "publisher"), "tail", "--last", "3", "trade:AAPL", "--json", "quote:*")
	cmd.Env = env
	log := &logbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var lines []string
	poll.Until(t, 15*time.Second, func() error {
		lines = strings.Split(strings.TrimSpace(log.String()), "\n")
		trades, quotes := 0, 0
		for _, l := range lines {
			var ev struct{ Ch, ID string }
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				return fmt.Errorf("line %q: %v", l, err)
			}
			switch {
			case ev.Ch == "trade:AAPL":
				trades++
			case strings.HasPrefix(ev.Ch, "quote:"):
				quotes++
			default:
				return fmt.Errorf("unasked channel in %q", l)
			}
		}
		if trades < 4 || quotes < 2 {
			return fmt.Errorf("%d trades, %d quotes so far", trades, quotes)
		}
		return nil
	})
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("tail after SIGINT: %v\n%s", err, log.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail did not exit within 10 s of SIGINT")
	}

	// A bad channel is a usage error, exit 2, at once.
	if _, errOut, code := runTool(t, "publisher", env, 10*time.Second, "tail", "nonsense"); code != 2 || !strings.Contains(errOut, "invalid channel") {
		t.Errorf("tail nonsense: exit %d, %q", code, errOut)
	}
}
