package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/auth"
	"github.com/tickwire/tickwire/testkit/logbuf"
	"github.com/tickwire/tickwire/testkit/wsclient"
)

const secret = "e2e-secret"

// binDir holds the collector and publisher built once by TestMain.
var binDir string

func buildBinaries() (string, error) {
	dir, err := os.MkdirTemp("", "tickwire-e2e-bin")
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-race", "-o", dir+string(os.PathSeparator), "./collector", "./publisher")
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return dir, nil
}

// proc is a tickwire process started by a test, stopped at its cleanup.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	log  *logbuf.Buffer
	done chan struct{}
	err  error
}

// start runs bin with env (added to a minimal environment).
func start(t *testing.T, name, bin string, env []string, stdin io.Reader, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, bin), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "LOG_LEVEL=debug"}, env...)
	p := &proc{t: t, name: name, cmd: cmd, log: &logbuf.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr, cmd.Stdin = p.log, p.log, stdin
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s: Wait did not return after SIGKILL", name)
		}
		if t.Failed() {
			t.Logf("---- %s log ----\n%s", name, p.log.String())
		}
	})
	return p
}

// osPipe returns an OS pipe for a process's stdin: the child reads the file
// itself, so Wait never waits on a copy from a pipe the test keeps open
// (it would with an io.Pipe, even with WaitDelay).
func osPipe(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(); _ = w.Close() })
	return r, w
}

func (p *proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig)
	}
}

// wait waits for the process to exit, at most limit, and returns how long
// that took and its exit error.
func (p *proc) wait(limit time.Duration) (time.Duration, error) {
	p.t.Helper()
	start := time.Now()
	select {
	case <-p.done:
		return time.Since(start), p.err
	case <-time.After(limit):
		p.t.Fatalf("%s did not exit within %v", p.name, limit)
		return 0, nil
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// publisher starts a replica and waits until it is ready.
func startPublisher(t *testing.T, redisURL, prefix, id string, extra ...string) (*proc, string) {
	t.Helper()
	addr := freeAddr(t)
	env := append([]string{
		"REDIS_URL=" + redisURL, "STREAM_PREFIX=" + prefix, "JWT_SECRET=" + secret,
		"PUBLISHER_ADDR=" + addr, "PUBLISHER_REPLICA_ID=" + id,
	}, extra...)
	p := start(t, id, "publisher", env, nil)
	waitHTTP(t, "http://"+addr+"/readyz", 200, 15*time.Second)
	return p, addr
}

func waitHTTP(t *testing.T, url string, status int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == status {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer %d within %v (last: %v %v)", url, status, limit, resp, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mint(t *testing.T, sub string) string {
	t.Helper()
	tok, err := auth.Mint(secret, sub, time.Hour, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// aapl is the channel the tests that compare tapes subscribe to.
const aapl = "trade:AAPL"

// connect dials a replica as sub, with a deadline of 15 s per frame (the
// processes run with -race), and reads the welcome.
func connect(t *testing.T, addr, sub string) *wsclient.Client {
	t.Helper()
	c := wsclient.Dial(t, "ws://"+addr+"/v1/stream?access_token="+mint(t, sub), nil)
	c.Wait = 15 * time.Second
	c.Expect("welcome")
	return c
}

// scrape returns the value of a metric without labels from a /metrics page.
func scrape(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	return 0
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
