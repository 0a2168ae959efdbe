package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/testkit/logbuf"
)

// runScript is scripts/run.sh (make run) started by a test in a process
// group of its own, as a terminal would start it.
type runScript struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *logbuf.Buffer
	dir  string
	done chan error
}

func startRunScript(t *testing.T, env ...string) *runScript {
	t.Helper()
	// A shell that started `go test` in the background ignores SIGINT for
	// it, and children inherit that; a handler here makes the script's
	// SIGINT default again, as at a terminal.
	if signal.Ignored(syscall.SIGINT) {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGINT)
		t.Cleanup(func() { signal.Stop(c) })
	}
	r := &runScript{t: t, out: &logbuf.Buffer{}, dir: t.TempDir(), done: make(chan error, 1)}
	r.cmd = exec.Command("bash", "scripts/run.sh")
	r.cmd.Dir = ".."
	r.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "RUN_DIR=" + r.dir, "BIN_DIR=" + binDir}, env...)
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("---- run.sh ----\n%s", r.out.String())
			logs, _ := filepath.Glob(filepath.Join(r.dir, "*.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("---- %s ----\n%s", filepath.Base(l), b)
			}
		}
	})
	return r
}

func (r *runScript) waitOutput(s string, limit time.Duration) {
	r.t.Helper()
	poll.Until(r.t, limit, func() error {
		if strings.Contains(r.out.String(), s) {
			return nil
		}
		select {
		case err := <-r.done:
			r.done <- err
			return fmt.Errorf("run.sh exited (%v) before printing %q", err, s)
		default:
		}
		return fmt.Errorf("no %q yet", s)
	})
}

func (r *runScript) exit(limit time.Duration) error {
	r.t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(limit):
		r.t.Fatalf("run.sh did not exit within %v", limit)
		return nil
	}
}

func (r *runScript) log(name string) string {
	b, _ := os.ReadFile(filepath.Join(r.dir, name))
	return string(b)
}

func freePort(t *testing.T) string {
	_, port, _ := net.SplitHostPort(freeAddr(t))
	return port
}

// TestRunScriptCtrlC: make run starts Redis, a collector and two
// publishers; Ctrl-C (SIGINT to the terminal's process group) stops the
// publishers while Redis still runs, so they remove their consumer groups,
// and Redis last.
func TestRunScriptCtrlC(t *testing.T) {
	redisPort := freePort(t)
	p1, p2 := freePort(t), freePort(t)
	r := startRunScript(t, "REDIS_URL=redis://127.0.0.1:"+redisPort+"/0",
		"PUB_PORTS="+p1+" "+p2, "COLLECTOR_ADDR=127.0.0.1:"+freePort(t))
	r.waitOutput("Ctrl-C stops everything", 60*time.Second)
	if !strings.Contains(r.out.String(), "http://localhost:"+p2+"/?token=") {
		t.Errorf("no URL for the second replica:\n%s", r.out.String())
	}
	env := []string{"REDIS_URL=redis://127.0.0.1:" + redisPort + "/0", "STREAM_PREFIX=md"}
	poll.Until(t, 20*time.Second, func() error {
		out, _, code := runTool(t, "publisher", env, 20*time.Second, "status")
		if code != 0 || !strings.Contains(out, "pub-1") || !strings.Contains(out, "pub-2") {
			return fmt.Errorf("status exit %d:\n%s", code, out)
		}
		return nil
	})

	if err := syscall.Kill(-r.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := r.exit(30 * time.Second); err != nil {
		t.Errorf("run.sh after Ctrl-C: %v", err)
	}
	for _, l := range []string{"publisher-1.log", "publisher-2.log"} {
		log := r.log(l)
		if strings.Contains(log, "could not remove this replica's groups") || !strings.Contains(log, "msg=stopped") {
			t.Errorf("%s: the replica did not stop cleanly with Redis up:\n%s", l, log)
		}
	}
	// Redis is stopped by the script (SIGTERM) after the publishers, not
	// by the terminal's SIGINT together with them.
	if rl := r.log("redis.log"); !strings.Contains(rl, "Received SIGTERM") || strings.Contains(rl, "Received SIGINT") || !strings.Contains(rl, "ready to exit") {
		t.Errorf("redis-server was not stopped last, by the script:\n%s", rl)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+redisPort, time.Second); err == nil {
		c.Close()
		t.Error("redis-server still listens after run.sh exited")
	}
}

// TestRunScriptBindFailure: a publisher that cannot listen is reported
// with its reason, and make run exits 1 instead of saying "running".
func TestRunScriptBindFailure(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, port, _ := net.SplitHostPort(taken.Addr().String())
	r := startRunScript(t, "REDIS_URL=redis://127.0.0.1:"+freePort(t)+"/0",
		"PUB_PORTS="+freePort(t)+" "+port, "COLLECTOR_ADDR=127.0.0.1:"+freePort(t))
	err = r.exit(60 * time.Second)
	out := r.out.String()
	if err == nil || strings.Contains(out, "tickwire is running") {
		t.Errorf("run.sh = %v, want a failure:\n%s", err, out)
	}
	if !strings.Contains(out, "publisher pub-2 on :"+port+" did not start") || !strings.Contains(out, "address already in use") {
		t.Errorf("run.sh does not say which publisher failed and why:\n%s", out)
	}
}

// TestRunScriptReplayEnds: a replay without loop writes its file and
// ends; the publisher keeps serving (make replay).
func TestRunScriptReplayEnds(t *testing.T) {
	pub := freePort(t)
	file, _ := filepath.Abs("../collector/internal/source/testdata/replay.csv")
	r := startRunScript(t, "REDIS_URL=redis://127.0.0.1:"+freePort(t)+"/0", "STREAM_PREFIX=replay",
		"PUB_PORTS="+pub, "COLLECTOR_ADDR=127.0.0.1:"+freePort(t),
		"COLLECTOR_SOURCE=replay", "COLLECTOR_REPLAY_FILE="+file, "COLLECTOR_REPLAY_SPEED=0")
	r.waitOutput("finished its input", 60*time.Second)
	waitHTTP(t, "http://127.0.0.1:"+pub+"/readyz", 200, 5*time.Second)
	select {
	case err := <-r.done:
		t.Fatalf("run.sh exited (%v) when the replay ended", err)
	default:
	}
	if err := syscall.Kill(-r.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := r.exit(30 * time.Second); err != nil {
		t.Errorf("run.sh after Ctrl-C: %v", err)
	}
}
