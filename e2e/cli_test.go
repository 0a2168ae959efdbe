package e2e

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/redistest"
)

// runTool runs a binary to completion (at most limit) and returns its
// stdout, stderr and exit code.
func runTool(t *testing.T, bin string, env []string, limit time.Duration, args ...string) (string, string, int) {
	t.Helper()
	return runToolAt(t, filepath.Join(binDir, bin), env, limit, args...)
}

func runToolAt(t *testing.T, path string, env []string, limit time.Duration, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		switch {
		case err == nil:
			return out.String(), errOut.String(), 0
		case errors.As(err, &ee):
			return out.String(), errOut.String(), ee.ExitCode()
		default:
			t.Fatal(err)
		}
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s %q did not exit within %v; output:\n%s%s", filepath.Base(path), args, limit, out.String(), errOut.String())
	}
	return "", "", -1
}

// trap is a TCP listener that counts the connections made to it: a
// Redis that must not be touched.
func trap(t *testing.T) (addr string, conns *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = &atomic.Int64{}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return l.Addr().String(), conns
}

// helpVars returns the variables that --help lists, with their defaults
// ("" for none).
func helpVars(t *testing.T, out string) map[string]string {
	t.Helper()
	_, table, ok := strings.Cut(out, "VARIABLE")
	if !ok {
		t.Fatalf("no variable table in the help:\n%s", out)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(table, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		if f[1] == "-" {
			f[1] = ""
		}
		vars[f[0]] = f[1]
	}
	return vars
}

// TestHelpTouchesNothing: --help, -h and help print the usage with every
// variable and exit 0, without listening or dialing Redis. (The publisher
// used to start serving.)
func TestHelpTouchesNothing(t *testing.T) {
	redisAddr, dials := trap(t)
	listen := freeAddr(t)
	env := []string{"REDIS_URL=redis://" + redisAddr + "/0", "JWT_SECRET=x",
		"PUBLISHER_ADDR=" + listen, "COLLECTOR_ADDR=" + listen}
	for _, tc := range []struct {
		bin  string
		args []string
		want []string
	}{
		{"publisher", []string{"--help"}, []string{"PUBLISHER_ADDR", "PUBLISHER_STALL_AFTER", "REDIS_URL", "publisher status"}},
		{"publisher", []string{"-h"}, []string{"JWT_SECRET"}},
		{"publisher", []string{"serve", "--help"}, []string{"JWT_LEEWAY"}},
		{"publisher", []string{"help"}, []string{"PUBLISHER_DRAIN_TIMEOUT"}},
		{"collector", []string{"--help"}, []string{"COLLECTOR_SOURCE", "COLLECTOR_REPLAY_FILE", "STREAM_SHARDS"}},
		{"collector", []string{"-h"}, []string{"COLLECTOR_LEASE_TTL"}},
	} {
		out, errOut, code := runTool(t, tc.bin, env, 10*time.Second, tc.args...)
		if code != 0 || errOut != "" {
			t.Errorf("%s %q: exit %d, stderr %q", tc.bin, tc.args, code, errOut)
		}
		vars := helpVars(t, out)
		for _, w := range tc.want {
			if _, ok := vars[w]; !ok && !strings.Contains(out, w) {
				t.Errorf("%s %q: help lacks %s", tc.bin, tc.args, w)
			}
		}
		for name := range vars {
			if !regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`).MatchString(name) {
				t.Errorf("%s help: odd variable %q", tc.bin, name)
			}
		}
	}
	if n := dials.Load(); n != 0 {
		t.Errorf("--help dialed Redis %d times", n)
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		t.Errorf("--help left %s taken: %v", listen, err)
	} else {
		l.Close()
	}
}

// readmeVars parses README's configuration table: each row's variables
// and, where the row gives one backticked default per variable, those.
func readmeVars(t *testing.T) (names map[string]bool, defaults map[string]string) {
	t.Helper()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Configuration\n")
	if !ok {
		t.Fatal("README has no ## Configuration section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	names, defaults = map[string]bool{}, map[string]string{}
	code := regexp.MustCompile("`([^`]*)`")
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.Contains(cells[1], "`") {
			continue
		}
		var row []string
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			row = append(row, m[1])
			names[m[1]] = true
		}
		defs := strings.Split(strings.TrimSpace(cells[2]), ", ")
		if len(defs) != len(row) {
			continue
		}
		for i, d := range defs {
			switch {
			case d == "empty":
				defaults[row[i]] = ""
			case strings.HasPrefix(d, "`") && strings.HasSuffix(d, "`") && len(d) > 1:
				defaults[row[i]] = strings.Trim(d, "`")
			}
		}
	}
	return names, defaults
}

// TestReadmeConfigTable keeps README's variable table in step with the
// config structs, as both binaries' --help prints them: every variable of
// the code is in the table, every variable of the table is in the code,
// and the defaults the table states are the code's.
func TestReadmeConfigTable(t *testing.T) {
	code := map[string]string{}
	for _, bin := range []string{"publisher", "collector"} {
		out, _, status := runTool(t, bin, nil, 10*time.Second, "--help")
		if status != 0 {
			t.Fatalf("%s --help: exit %d", bin, status)
		}
		for k, v := range helpVars(t, out) {
			code[k] = v
		}
	}
	names, defaults := readmeVars(t)
	var missing, extra []string
	for k := range code {
		if !names[k] {
			missing = append(missing, k)
		}
	}
	for k := range names {
		if _, ok := code[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("README's configuration table lacks %v (add a row: variable, default, meaning)", missing)
	}
	if len(extra) > 0 {
		t.Errorf("README's configuration table names %v, which no config struct reads", extra)
	}
	for k, d := range defaults {
		if c, ok := code[k]; ok && c != d {
			t.Errorf("README says %s defaults to %q; the code says %q", k, d, c)
		}
	}
	if len(defaults) < len(code)/2 {
		t.Errorf("only %d defaults parsed from README: is the table's format still `a`, `b` per row?", len(defaults))
	}
}

// TestVersionStamped: a build with the Makefile's -ldflags prints the
// stamped version, and both processes export it in tickwire_build_info.
func TestVersionStamped(t *testing.T) {
	dir := t.TempDir()
	const pkg = "github.com/tickwire/tickwire/shared/buildinfo"
	ldflags := "-X " + pkg + ".version=v0.9.9-test -X " + pkg + ".revision=0123abcd"
	cmd := exec.Command("go", "build", "-ldflags", ldflags, "-o", dir+string(os.PathSeparator), "./collector", "./publisher")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, bin := range []string{"publisher", "collector"} {
		out, _, code := runToolAt(t, filepath.Join(dir, bin), nil, 10*time.Second, "version")
		want := bin + " v0.9.9-test (revision 0123abcd, " + runtime.Version() + ")\n"
		if code != 0 || out != want {
			t.Errorf("%s version = %q (exit %d), want %q", bin, out, code, want)
		}
	}
	srv := redistest.Start(t)
	colAddr, pubAddr := freeAddr(t), freeAddr(t)
	col := startAt(t, "collector", filepath.Join(dir, "collector"), []string{"REDIS_URL=" + srv.URL(), "STREAM_PREFIX=bi", "COLLECTOR_ADDR=" + colAddr})
	pub := startAt(t, "publisher", filepath.Join(dir, "publisher"), []string{"REDIS_URL=" + srv.URL(), "STREAM_PREFIX=bi",
		"PUBLISHER_ADDR=" + pubAddr, "JWT_SECRET=" + secret, "PUBLISHER_REPLICA_ID=bi"})
	_, _ = col, pub
	want := `tickwire_build_info{goversion="` + runtime.Version() + `",revision="0123abcd",version="v0.9.9-test"} 1`
	for _, addr := range []string{colAddr, pubAddr} {
		waitHTTP(t, "http://"+addr+"/readyz", 200, 15*time.Second)
		if body := get(t, "http://"+addr+"/metrics"); !strings.Contains(body, want) {
			t.Errorf("%s/metrics lacks %s", addr, want)
		}
	}
	// healthcheck: 0 while ready, 1 when nothing answers.
	for _, tc := range []struct{ bin, env string }{{"collector", "COLLECTOR_ADDR=" + colAddr}, {"publisher", "PUBLISHER_ADDR=" + pubAddr}} {
		if _, errOut, code := runToolAt(t, filepath.Join(dir, tc.bin), []string{tc.env}, 10*time.Second, "healthcheck"); code != 0 {
			t.Errorf("%s healthcheck = %d: %s", tc.bin, code, errOut)
		}
	}
	if _, _, code := runToolAt(t, filepath.Join(dir, "publisher"), []string{"PUBLISHER_ADDR=" + freeAddr(t)}, 10*time.Second, "healthcheck"); code != 1 {
		t.Errorf("healthcheck of nothing = %d, want 1", code)
	}
}

// startAt is start for a binary outside binDir.
func startAt(t *testing.T, name, path string, env []string) *proc {
	t.Helper()
	old := binDir
	binDir = filepath.Dir(path)
	defer func() { binDir = old }()
	return start(t, name, filepath.Base(path), env, nil)
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
