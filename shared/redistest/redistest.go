// Package redistest starts private redis-server processes for tests: each
// on a free loopback port, in its own temporary directory, stopped by the
// test's cleanup. Tests may stop and restart a server to cause faults.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options change how the server runs.
type Options struct {
	AppendOnly  bool   // persist with AOF, so a restart keeps the data
	RequirePass string // password clients must give
	TLS         bool   // TLS only, with a certificate from a CA of its own (CAFile)
}

// Server is one redis-server process. Its methods are safe for concurrent
// use.
type Server struct {
	t       testing.TB
	port    int
	dir     string
	opts    Options
	cluster bool      // a node of a Cluster
	tls     *tlsFiles // set with Options.TLS
	// extra are more redis-server arguments (--replicaof, cluster timing).
	extra []string
	// sentinelConf, if set, runs a sentinel with this (writable) file.
	sentinelConf string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start starts a redis-server for t and stops it at t's cleanup. It fails
// the test if redis-server is not installed (make test installs it).
func Start(t testing.TB, opts ...Options) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server not found on PATH: run 'make test', which installs it, or apt-get install redis-server")
	}
	s := &Server{t: t, port: freePort(t), dir: t.TempDir()}
	if len(opts) > 0 {
		s.opts = opts[0]
	}
	if s.opts.TLS {
		s.tls = makeTLS(t, s.dir)
	}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is the redis:// (rediss:// with TLS, for host localhost) URL of
// database 0, with the password if one is set.
func (s *Server) URL() string {
	scheme, host := "redis://", s.Addr()
	if s.tls != nil {
		scheme, host = "rediss://", net.JoinHostPort("localhost", strconv.Itoa(s.port))
	}
	if s.opts.RequirePass != "" {
		return scheme + ":" + s.opts.RequirePass + "@" + host + "/0"
	}
	return scheme + host + "/0"
}

// Client returns a client of the server, closed at the test's cleanup.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: s.opts.RequirePass, TLSConfig: s.clientTLS()})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop kills the server (like a crash: without AOF, the data is gone) and
// waits for it to exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Running reports whether the server runs (was not stopped).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Restart starts the server again on the same port and directory (it must
// be stopped) and waits until it answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatalf("redistest: restart of a running server")
	}
	port := []string{"--port", strconv.Itoa(s.port)}
	if s.tls != nil {
		port = []string{"--port", "0", "--tls-port", strconv.Itoa(s.port),
			"--tls-cert-file", s.tls.cert, "--tls-key-file", s.tls.key,
			"--tls-ca-cert-file", s.tls.ca, "--tls-auth-clients", "no"}
	}
	args := append(port,
		"--bind", "127.0.0.1",
		"--dir", s.dir, "--save", "", "--daemonize", "no",
		"--logfile", "", "--loglevel", "warning",
	)
	if s.opts.AppendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if s.opts.RequirePass != "" {
		args = append(args, "--requirepass", s.opts.RequirePass)
	}
	if s.cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	}
	args = append(args, s.extra...)
	if s.sentinelConf != "" {
		// The file first: a sentinel rewrites it with what it learns.
		args = []string{s.sentinelConf, "--sentinel", "--loglevel", "warning"}
	}
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: start redis-server: %v", err)
	}
	s.cmd = cmd
	if err := s.waitReady(10 * time.Second); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		s.cmd = nil
		s.t.Fatalf("redistest: %v", err)
	}
}

func (s *Server) waitReady(limit time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: s.opts.RequirePass, MaxRetries: -1, TLSConfig: s.clientTLS()})
	defer c.Close()
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s not ready after %v: %w", s.Addr(), limit, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
