package obs_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/obs"
	"github.com/tickwire/tickwire/shared/poll"
)

// startServer serves /healthz with lim on a free port and returns its
// address and the number of connections it holds open.
func startServer(t *testing.T, lim obs.ServerLimits) (addr string, open *atomic.Int64) {
	t.Helper()
	mux := http.NewServeMux()
	obs.Mount(mux, obs.NewRegistry(), func() error { return nil })
	srv := obs.NewServer(mux, slog.New(slog.NewTextHandler(io.Discard, nil)), lim)
	open = new(atomic.Int64)
	srv.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
		// Close does not wait for the connections' goroutines: one that
		// answered 431 lingers before closing.
		poll.Until(t, 10*time.Second, func() error {
			if n := open.Load(); n > 0 {
				return fmt.Errorf("%d connections still open", n)
			}
			return nil
		})
	})
	return ln.Addr().String(), open
}

// TestServerClosesIdleConnections: keep-alive connections that made one
// request and then wait are closed by the server after its idle timeout,
// and so are connections that never finish their headers.
func TestServerClosesIdleConnections(t *testing.T) {
	const idle, slow = 200, 20
	addr, open := startServer(t, obs.ServerLimits{IdleTimeout: 100 * time.Millisecond, ReadHeaderTimeout: 100 * time.Millisecond})
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range idle + slow {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if i >= idle {
			fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n") // never ends its headers
			continue
		}
		fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("/healthz: %d, close %v: want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
		}
	}
	poll.Until(t, 20*time.Second, func() error {
		if n := open.Load(); n > 0 {
			return fmt.Errorf("%d connections still open", n)
		}
		return nil
	})
	// The client sees each closed: a read ends at once with EOF.
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("read on a connection the server closed returned data")
		}
	}
}

// TestServerRefusesLargeHeaders: headers beyond MaxHeaderBytes get 431.
func TestServerRefusesLargeHeaders(t *testing.T) {
	addr, _ := startServer(t, obs.ServerLimits{MaxHeaderBytes: 1 << 10})
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB of headers: %d, want 431", resp.StatusCode)
	}
}

// TestNewServerDefaults: a zero ServerLimits bounds every connection.
func TestNewServerDefaults(t *testing.T) {
	srv := obs.NewServer(http.NewServeMux(), slog.New(slog.NewTextHandler(io.Discard, nil)), obs.ServerLimits{})
	if srv.IdleTimeout != obs.DefaultIdleTimeout || srv.ReadTimeout != obs.DefaultReadTimeout ||
		srv.ReadHeaderTimeout != obs.DefaultReadHeaderTimeout || srv.MaxHeaderBytes != obs.DefaultMaxHeaderBytes {
		t.Errorf("NewServer with zero limits: idle %v read %v header %v max header %d",
			srv.IdleTimeout, srv.ReadTimeout, srv.ReadHeaderTimeout, srv.MaxHeaderBytes)
	}
}
