package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/tickwire/tickwire/shared/auth"
	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/testkit/logbuf"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testSecret = "main-test-secret-0123456789"

// publisher token --ttl -1h minted a token that was refused at once.
func TestTokenRefusesNonPositiveTTL(t *testing.T) {
	t.Setenv("JWT_SECRET", testSecret)
	for _, ttl := range []string{"-1h", "0s", "-1ns"} {
		var out bytes.Buffer
		err := token(&out, []string{"--sub", "alice", "--ttl", ttl})
		if err == nil || !strings.Contains(err.Error(), "positive") {
			t.Errorf("--ttl %s: err %v, output %q; want an error asking for a positive ttl", ttl, err, out.String())
		}
		if out.Len() != 0 {
			t.Errorf("--ttl %s: printed %q", ttl, out.String())
		}
	}
	var out bytes.Buffer
	if err := token(&out, []string{"--sub", "alice", "--ttl", "1m"}); err != nil || strings.Count(out.String(), ".") != 2 {
		t.Fatalf("--ttl 1m: %q, %v; want a token", out.String(), err)
	}
}

// run serves until its context ends, then shuts down in order: the
// listener closes, clients get 1001, and the replica's groups are gone
// (Redis was still open for the teardown) before run returns nil.
func TestRunShutsDownInOrder(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	t.Setenv("REDIS_URL", rs.URL())
	t.Setenv("STREAM_PREFIX", "maintest")
	t.Setenv("JWT_SECRET", testSecret)
	t.Setenv("PUBLISHER_ADDR", "127.0.0.1:0")
	t.Setenv("PUBLISHER_REPLICA_ID", "main-1")
	t.Setenv("PUBLISHER_DRAIN_TIMEOUT", "5s")
	var logs logbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, log) }()

	addrRE := regexp.MustCompile(`msg=listening .*addr=(\S+)`)
	var addr string
	poll.Until(t, 10*time.Second, func() error {
		if m := addrRE.FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
			return nil
		}
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v\n%s", err, logs.String())
		default:
		}
		return errors.New("not listening yet")
	})
	tok, err := auth.Mint(testSecret, "alice", time.Hour, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	url := "ws://" + addr + "/v1/stream?access_token=" + tok
	var ws *websocket.Conn
	poll.Until(t, 10*time.Second, func() error { // the readers come up first
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			return err
		}
		ws = c
		return nil
	})
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var welcome struct{ Type string }
	if err := ws.ReadJSON(&welcome); err != nil || welcome.Type != "welcome" {
		t.Fatalf("first frame %+v, %v; want welcome", welcome, err)
	}
	// The readers create their groups as they start, beside the HTTP server.
	poll.Until(t, 10*time.Second, func() error {
		if n, err := rs.Client().XInfoGroups(context.Background(), "maintest:{0}:feed").Result(); err != nil || len(n) != 1 {
			return fmt.Errorf("groups before shutdown: %v, %v; want this replica's", n, err)
		}
		return nil
	})

	cancel()
	code := 0
	for code == 0 {
		_, _, err := ws.ReadMessage()
		var ce *websocket.CloseError
		switch {
		case errors.As(err, &ce):
			code = ce.Code
		case err != nil:
			t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
	if code != websocket.CloseGoingAway {
		t.Fatalf("close code %d, want 1001", code)
	}
	if _, _, err := websocket.DefaultDialer.Dial(url, nil); err == nil {
		t.Fatal("a new connection was accepted after the shutdown began")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return within 20 s of its context's end")
	}
	groups, err := rs.Client().XInfoGroups(context.Background(), "maintest:{0}:feed").Result()
	if err != nil || len(groups) != 0 {
		t.Fatalf("groups after shutdown: %v, %v; want none", groups, err)
	}
	for _, want := range []string{"shutting down", "draining", "stopped"} {
		if !strings.Contains(logs.String(), "msg="+want) && !strings.Contains(logs.String(), fmt.Sprintf("msg=%q", want)) {
			t.Errorf("log has no %q line", want)
		}
	}
}
