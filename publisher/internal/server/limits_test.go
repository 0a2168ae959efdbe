package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/testkit/tape"
)

// The HTTP server bounds what a connection that is not a WebSocket may
// hold: idle keep-alive connections, slow headers and slow bodies are cut,
// oversized headers refused, while a WebSocket outlives every one of these
// limits.
func TestHTTPLimits(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", func(c *Config) {
		c.HTTP = HTTPLimits{
			ReadHeaderTimeout: 200 * time.Millisecond,
			IdleTimeout:       200 * time.Millisecond,
			ReadTimeout:       300 * time.Millisecond,
			WriteTimeout:      time.Second,
			MaxHeaderBytes:    8 << 10,
		}
	})
	addr := r.http.Listener.Addr().String()

	t.Run("idle keep-alive connections are closed", func(t *testing.T) {
		conns := make([]net.Conn, 50)
		for i := range conns {
			conns[i] = rawConn(t, addr)
			resp := rawRequest(t, conns[i], "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp.StatusCode != http.StatusOK || resp.Close {
				t.Fatalf("healthz: %d close=%v, want 200 kept alive", resp.StatusCode, resp.Close)
			}
		}
		for i, c := range conns {
			expectClosed(t, c, fmt.Sprintf("idle connection %d", i))
		}
	})
	t.Run("slow headers are cut", func(t *testing.T) {
		c := rawConn(t, addr)
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c, "connection with half its headers")
	})
	t.Run("slow body on a plain route is cut", func(t *testing.T) {
		c := rawConn(t, addr)
		resp := rawRequest(t, c, "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n0123456789")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz: %d", resp.StatusCode)
		}
		expectClosed(t, c, "connection with a body that never comes")
	})
	t.Run("oversized headers are refused", func(t *testing.T) {
		c := rawConn(t, addr)
		resp := rawRequest(t, c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: "+strings.Repeat("a", 64<<10)+"\r\n\r\n")
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("got %d, want 431", resp.StatusCode)
		}
	})
	t.Run("a WebSocket outlives the limits", func(t *testing.T) {
		c := dialAuthed(t, r, "alice")
		c.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false})
		start := time.Now()
		poll.Until(t, 10*time.Second, func() error {
			if time.Since(start) < 2*time.Second { // many times every limit above
				return errNotYet("limits not passed yet")
			}
			return nil
		})
		e.write("trade:AAPL", 1)
		c.collect(tape.New(t), "trade:AAPL", 1)
	})
}

func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// rawRequest writes a request as given and reads the response and its body.
func rawRequest(t *testing.T, c net.Conn, req string) *http.Response {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp
}

// expectClosed waits, generously, for the server to close c.
func expectClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c) // a 408 answer, if any, then the close
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s still open after 10 s, want it closed by the server", what)
	}
}
