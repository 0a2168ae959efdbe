package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickwire/tickwire/shared/auth"
	"github.com/tickwire/tickwire/shared/event"
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
	log  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs bin with env (added to a minimal environment).
func start(t *testing.T, name, bin string, env []string, stdin io.Reader, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, bin), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "LOG_LEVEL=debug"}, env...)
	p := &proc{t: t, name: name, cmd: cmd, log: &syncBuffer{}, done: make(chan struct{})}
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

// wsClient is a protocol client that records its tape of events.
type wsClient struct {
	t  *testing.T
	ws *websocket.Conn
}

type frame struct {
	Type      string          `json:"type"`
	Code      string          `json:"code"`
	Replica   string          `json:"replica"`
	Recovered map[string]bool `json:"recovered"`
	Channels  []string        `json:"channels"`
	Events    []struct {
		Ch   string          `json:"ch"`
		ID   string          `json:"id"`
		TS   int64           `json:"ts"`
		Data json.RawMessage `json:"data"`
	} `json:"events"`
}

func connect(t *testing.T, addr, sub string) *wsClient {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/v1/stream?access_token="+mint(t, sub), nil)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	c := &wsClient{t: t, ws: ws}
	if f := c.read(); f.Type != "welcome" {
		t.Fatalf("got %+v, want welcome", f)
	}
	return c
}

func (c *wsClient) read() frame {
	c.t.Helper()
	f, err := c.tryRead(15 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

func (c *wsClient) tryRead(wait time.Duration) (frame, error) {
	_ = c.ws.SetReadDeadline(time.Now().Add(wait))
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		return frame{}, err
	}
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		return frame{}, fmt.Errorf("bad frame %s: %w", data, err)
	}
	return f, nil
}

func (c *wsClient) subscribe(req map[string]any) frame {
	c.t.Helper()
	req["op"] = "subscribe"
	if err := c.ws.WriteJSON(req); err != nil {
		c.t.Fatal(err)
	}
	f := c.read()
	if f.Type != "subscribed" {
		c.t.Fatalf("got %+v, want subscribed", f)
	}
	return f
}

// tape is one channel's events as a client saw them, checked as they come.
type tape struct {
	ids  []string
	last event.ID
}

func (tp *tape) add(t *testing.T, id string) {
	t.Helper()
	parsed, err := event.ParseID(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(tp.ids) > 0 && !tp.last.Less(parsed) {
		t.Fatalf("id %s after %s: not growing, or twice", id, tp.last)
	}
	tp.last = parsed
	tp.ids = append(tp.ids, id)
}

// collect reads frames into tp until it holds n events or the connection
// ends; it returns the error that ended it, if any.
func (c *wsClient) collect(tp *tape, n int) error {
	c.t.Helper()
	for len(tp.ids) < n {
		f, err := c.tryRead(15 * time.Second)
		if err != nil {
			return err
		}
		switch f.Type {
		case "events", "snapshot":
			for _, e := range f.Events {
				tp.add(c.t, e.ID)
			}
		case "error":
			c.t.Fatalf("error frame %+v", f)
		}
	}
	return nil
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
