package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestApplyPreset(t *testing.T) {
	var o options
	if err := applyPreset(&o, "W1"); err != nil {
		t.Fatal(err)
	}
	if o.clients != 100 || o.idle || len(strings.Split(o.channels, ",")) != 10 {
		t.Errorf("w1 = %+v, want 100 clients on 10 channels, not idle", o)
	}
	if err := applyPreset(&o, "w4"); err != nil {
		t.Fatal(err)
	}
	if o.clients != 3000 || !o.idle || !o.idleSub {
		t.Errorf("w4 = %+v, want 3000 idle clients that subscribe", o)
	}
	if err := applyPreset(&o, "w9"); err == nil {
		t.Error("unknown preset accepted")
	}
}

// cpuEach reads this process's CPU time, which grows as it spins.
func TestCPUEach(t *testing.T) {
	pids, err := parsePids(" " + itoa(os.Getpid()) + ",")
	if err != nil || len(pids) != 1 {
		t.Fatalf("parsePids = %v, %v", pids, err)
	}
	sum := func() (float64, error) {
		each, err := cpuEach(pids)
		if err != nil || len(each) != 1 {
			return 0, fmt.Errorf("cpuEach = %v, %v", each, err)
		}
		return each[0], nil
	}
	before, err := sum()
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for after := before; after <= before; after, err = sum() {
		if err != nil {
			t.Fatal(err)
		}
		for i := range 1_000_000 {
			x += i
		}
	}
	_ = x
	if _, err := cpuEach([]int{-1}); err == nil {
		t.Error("cpu of pid -1 read")
	}
	if _, err := parsePids("1,x"); err == nil {
		t.Error("-pids 1,x accepted")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestScanLatencies(t *testing.T) {
	frame := []byte(`{"type":"events","events":[{"channel":"trade:A","seq":1,"ts":1000,"data":{"price":1}},` +
		`{"channel":"quote:A","seq":2,"ts":1002,"data":{"bid":1}},{"channel":"x","ts":"bad"}]}`)
	got := scanLatencies(frame, 1_005_500, nil)
	want := []time.Duration{5500 * time.Microsecond, 3500 * time.Microsecond}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("scanLatencies = %v, want %v", got, want)
	}
}

func TestSSEURL(t *testing.T) {
	for in, want := range map[string]string{
		"ws://127.0.0.1:8080/v1/stream":          "http://127.0.0.1:8080/v1/sse",
		"wss://md.example/v1/stream?x=1":         "https://md.example/v1/sse",
		"ws://127.0.0.1:8090/tickwire/v1/stream": "http://127.0.0.1:8090/tickwire/v1/sse",
	} {
		if got, err := sseURL(in); err != nil || got != want {
			t.Errorf("sseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := sseURL("http://127.0.0.1:8080/v1/stream"); err == nil {
		t.Error("sseURL of an http URL: no error, want one")
	}
}

// An event stream's events frames are counted with their events; its
// other lines (comments, event names, ids, other frames) are not.
func TestSSEClientCounts(t *testing.T) {
	ts := time.Now().UnixMilli()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" || r.URL.Query().Get("channels") != "trade:A,quote:B" {
			http.Error(w, `{"type":"error","code":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, ": subscribed\n\nevent: subscribed\ndata: {\"type\":\"subscribed\",\"channels\":[\"trade:A\"]}\n\n")
		fmt.Fprintf(w, "event: events\nid: s0:1-1\ndata: {\"type\":\"events\",\"events\":[{\"ch\":\"trade:A\",\"id\":\"1-0\",\"ts\":%d,\"data\":{}},{\"ch\":\"quote:B\",\"id\":\"1-1\",\"ts\":%d,\"data\":{}}]}\n\n", ts, ts)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	st := &stats{buckets: make([]int64, 100000)}
	st.measuring.Store(true)
	var connected atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	o := options{url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/stream", sse: true}
	go func() { done <- sseClient(ctx, o, "tok", "trade:A,quote:B", st, &connected) }()
	deadline := time.Now().Add(10 * time.Second)
	for st.events.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if ev, fr, c := st.events.Load(), st.frames.Load(), connected.Load(); ev != 2 || fr != 1 || c != 1 {
		t.Fatalf("events %d, frames %d, connected %d; want 2, 1, 1", ev, fr, c)
	}
	if err := sseClient(context.Background(), o, "bad", "trade:A,quote:B", st, &connected); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("a refused stream: %v, want the 401 and its body", err)
	}
	sseHTTP.CloseIdleConnections()
}
