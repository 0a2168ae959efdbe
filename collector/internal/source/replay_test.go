package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/testkit/golden"
	"github.com/tickwire/tickwire/testkit/logbuf"
)

// wantEvent is an event as a test expects it: data as the exact JSON.
type wantEvent struct {
	ch   string
	ts   int64
	data string
}

// wantCSV and wantJSONL are testdata/replay.csv and replay.jsonl as the
// replay must emit them (testkit/golden, written out by hand); badCSV and
// badJSONL are the lines of their bad rows.
var (
	wantCSV   = fromGolden(golden.ReplayCSV())
	wantJSONL = fromGolden(golden.ReplayJSONL())
	badCSV    = []int{6, 8, 9, 10, 13, 15}
	badJSONL  = []int{4, 6, 9}
)

func fromGolden(evs []golden.Event) []wantEvent {
	out := make([]wantEvent, len(evs))
	for i, e := range evs {
		out[i] = wantEvent{ch: e.Ch, ts: e.TS, data: e.Data}
	}
	return out
}

func asWant(e Event) wantEvent {
	return wantEvent{ch: e.Channel.String(), ts: e.TS, data: string(data(e))}
}

func newReplay(t testing.TB, cfg ReplayConfig) (*Replay, *logbuf.Buffer) {
	t.Helper()
	var logs logbuf.Buffer
	r, err := NewReplay(cfg, slog.New(slog.NewTextHandler(&logs, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("NewReplay: %v", err)
	}
	return r, &logs
}

// replayAll runs r to its end and returns what it emitted.
func replayAll(t *testing.T, r *Replay) ([]wantEvent, error) {
	t.Helper()
	var got []wantEvent
	err := r.Run(context.Background(), func(e Event) { got = append(got, asWant(e)) })
	return got, err
}

func TestReplayFile(t *testing.T) {
	tests := []struct {
		file string
		want []wantEvent
		bad  []int
	}{
		{"testdata/replay.csv", wantCSV, badCSV},
		{"testdata/replay.jsonl", wantJSONL, badJSONL},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r, logs := newReplay(t, ReplayConfig{File: tt.file, Speed: 1})
			r.clock = newFakeClock() // real time, without waiting
			got, err := replayAll(t, r)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Errorf("%d events, want %d", len(got), len(tt.want))
			}
			for i := range min(len(got), len(tt.want)) {
				if got[i] != tt.want[i] {
					t.Errorf("event %d:\n got %+v\nwant %+v", i, got[i], tt.want[i])
				}
			}
			if n := testutil.ToFloat64(r.bad); n != float64(len(tt.bad)) {
				t.Errorf("bad rows counted %v, want %d", n, len(tt.bad))
			}
			for _, line := range tt.bad {
				if want := fmt.Sprintf("file=%s line=%d ", tt.file, line); !strings.Contains(logs.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, logs)
				}
			}
		})
	}
}

func TestReplayDefaultSymbolAndSniffing(t *testing.T) {
	dir := t.TempDir()
	csvFile := writeFile(t, dir, "spy.txt", "Date,Open,High,Low,Close,Volume\n2025-11-26,1,2,0.5,1.5,10\n2025-11-28,1.5,2,1,1.2,20\n")
	jsonFile := writeFile(t, dir, "feed.log", "\n  "+`{"ch":"trade:AAPL","ts":5,"data":{"price":1,"size":1}}`+"\n")
	r, _ := newReplay(t, ReplayConfig{File: csvFile, Symbol: "spy", Speed: 0})
	got, err := replayAll(t, r)
	if err != nil {
		t.Fatal(err)
	}
	// Two days apart: the smallest gap is the period of both bars.
	want := []wantEvent{
		{"bar:SPY", 1764115200000, `{"open":1,"high":2,"low":0.5,"close":1.5,"volume":10,"start":1764115200000,"end":1764288000000}`},
		{"bar:SPY", 1764288000000, `{"open":1.5,"high":2,"low":1,"close":1.2,"volume":20,"start":1764288000000,"end":1764460800000}`},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	r, _ = newReplay(t, ReplayConfig{File: jsonFile})
	if got, err := replayAll(t, r); err != nil || len(got) != 1 || got[0].ch != "trade:AAPL" {
		t.Errorf("sniffed JSONL: %v, %v", got, err)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNewReplayRefuses(t *testing.T) {
	dir := t.TempDir()
	unreadable := writeFile(t, dir, "secret.csv", "time,symbol,price,size\n")
	if err := os.Chmod(unreadable, 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  ReplayConfig
		want string
	}{
		{"missing", ReplayConfig{File: filepath.Join(dir, "nope.csv")}, "no such file"},
		{"directory", ReplayConfig{File: dir}, "is a directory"},
		{"empty", ReplayConfig{File: writeFile(t, dir, "empty.csv", "")}, "the file is empty"},
		{"no usable columns", ReplayConfig{File: writeFile(t, dir, "x.csv", "a,b\n1,2\n")}, "no usable columns"},
		{"no symbol", ReplayConfig{File: writeFile(t, dir, "y.csv", "time,price,size\n1,2,3\n")}, "no symbol column"},
		{"bad default symbol", ReplayConfig{File: writeFile(t, dir, "z.csv", "time,price,size\n"), Symbol: "$"}, "symbol"},
		{"negative speed", ReplayConfig{File: writeFile(t, dir, "s.csv", "time,symbol,price,size\n"), Speed: -1}, "speed"},
	}
	if os.Geteuid() != 0 { // root reads anything
		tests = append(tests, struct {
			name string
			cfg  ReplayConfig
			want string
		}{"unreadable", ReplayConfig{File: unreadable}, "permission denied"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReplay(tt.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewReplay = %v, want an error with %q", err, tt.want)
			}
			if tt.name == "missing" && (!errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "want a readable CSV or JSONL file")) {
				t.Errorf("error does not say what was expected: %v", err)
			}
		})
	}
}

func TestReplayStrict(t *testing.T) {
	r, _ := newReplay(t, ReplayConfig{File: "testdata/replay.csv", Strict: true})
	got, err := replayAll(t, r)
	if err == nil || !strings.Contains(err.Error(), "line 6") || !strings.Contains(err.Error(), "strict") {
		t.Fatalf("Run = %v, want a strict error at line 6", err)
	}
	if len(got) != 4 {
		t.Errorf("%d events before the bad row, want 4", len(got))
	}
}

// TestReplayLoop: each pass is shifted by the file's span plus its smallest
// step, so that time keeps going forward.
func TestReplayLoop(t *testing.T) {
	file := writeFile(t, t.TempDir(), "loop.csv", "time,symbol,price,size\n1000,A,1,1\n1002,A,2,1\nbad,A,1,1\n1005,A,3,1\n")
	r, _ := newReplay(t, ReplayConfig{File: file, Loop: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ts []int64
	err := r.Run(ctx, func(e Event) {
		ts = append(ts, e.TS/1000) // seconds, as the file gives them
		if len(ts) == 9 {
			cancel()
		}
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Span 5 s, smallest step 2 s: each pass 7 s after the one before.
	if want := "[1000 1002 1005 1007 1009 1012 1014 1016 1019]"; fmt.Sprint(ts) != want {
		t.Errorf("times %v, want %s", ts, want)
	}
	if n := testutil.ToFloat64(r.bad); n != 3 {
		t.Errorf("bad rows %v, want one per pass", n)
	}
}

// TestReplayLoopShiftsBars: a CSV bar of a later pass starts and ends
// where its ts says.
func TestReplayLoopShiftsBars(t *testing.T) {
	file := writeFile(t, t.TempDir(), "bars.csv", "date,symbol,open,high,low,close\n2025-11-26,A,1,1,1,1\n2025-11-27,A,1,1,1,1\n")
	r, _ := newReplay(t, ReplayConfig{File: file, Loop: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []Event
	if err := r.Run(ctx, func(e Event) {
		if got = append(got, e); len(got) == 4 {
			cancel()
		}
	}); err != nil {
		t.Fatal(err)
	}
	const day = 24 * 3600 * 1000
	for i, e := range got {
		var b event.Bar
		if err := json.Unmarshal(data(e), &b); err != nil {
			t.Fatal(err)
		}
		// Pass 2 starts two days later: the span of a day, and a step.
		if want := ms(t, "2025-11-26T00:00:00Z") + int64(i)*day; e.TS != want || b.Start != want || b.End != want+day {
			t.Errorf("bar %d: ts %d start %d end %d, want ts and start %d, a day long", i, e.TS, b.Start, b.End, want)
		}
	}
}

func TestReplayLoopWithoutValidRows(t *testing.T) {
	file := writeFile(t, t.TempDir(), "bad.csv", "time,symbol,price,size\nbad,A,1,1\n")
	r, _ := newReplay(t, ReplayConfig{File: file, Loop: true})
	if _, err := replayAll(t, r); err == nil || !strings.Contains(err.Error(), "no valid row") {
		t.Errorf("Run = %v, want an error", err)
	}
}

// fakeClock advances only when slept on, and records the sleeps.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return ctx.Err() == nil
}

func TestReplayPacing(t *testing.T) {
	const csv = "time,symbol,price,size\n10.000,A,1,1\n10.000,B,1,1\n10.500,A,1,1\n13.000,A,1,1\n12.000,B,1,1\n20.000,A,1,1\n"
	file := writeFile(t, t.TempDir(), "paced.csv", csv)
	tests := []struct {
		speed float64
		want  string
	}{
		{1, "[500ms 2.5s 7s]"},      // 12.000 is overdue by 1 s, not more than maxLag: no wait
		{2, "[250ms 1.25s 3.5s]"},   // twice as fast
		{0.5, "[1s 5s 16s]"},        // half as fast; 12.000 is 2 s overdue: the schedule restarts there
		{0, "[]"},                   // as fast as possible
		{1000, "[500µs 2.5ms 7ms]"}, // much faster
		{1e-12, "[277777h46m40s]"},  // absurdly slow: bounded, no overflow
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.speed), func(t *testing.T) {
			r, _ := newReplay(t, ReplayConfig{File: file, Speed: tt.speed})
			c := newFakeClock()
			r.clock = c
			if _, err := replayAll(t, r); err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(c.sleeps); got != tt.want {
				t.Errorf("sleeps %s, want %s", got, tt.want)
			}
		})
	}
}

func TestPacerRestartsWhenFarBehind(t *testing.T) {
	p := pacer{speed: 1}
	now := time.Unix(1000, 0)
	if d := p.delay(now, 0); d != 0 {
		t.Fatalf("first delay %v", d)
	}
	if d := p.delay(now, 1000); d != time.Second {
		t.Fatalf("delay %v, want 1s", d)
	}
	now = now.Add(5 * time.Second) // held back: 4 s late for ts 1000
	if d := p.delay(now, 1000); d != 0 {
		t.Fatalf("overdue delay %v", d)
	}
	// The schedule restarted at ts 1000: ts 1500 is due half a second later,
	// not at once (which would burst to catch up).
	if d := p.delay(now, 1500); d != 500*time.Millisecond {
		t.Errorf("delay after restart %v, want 500ms", d)
	}
	if d := p.delay(now, -1e15); d != 0 { // far back in time: restart, no overflow
		t.Errorf("delay far back %v", d)
	}
}

func TestReplayWaitsWhileBusy(t *testing.T) {
	var mu sync.Mutex
	busy := true
	isBusy := func() bool { mu.Lock(); defer mu.Unlock(); return busy }
	r, _ := newReplay(t, ReplayConfig{File: "testdata/replay.jsonl", Speed: 0, Busy: isBusy})
	emitted := make(chan struct{}, 100)
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background(), func(Event) { emitted <- struct{}{} }) }()
	select {
	case <-emitted:
		t.Fatal("emitted while the consumer is busy")
	case <-time.After(50 * time.Millisecond):
	}
	mu.Lock()
	busy = false
	mu.Unlock()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(emitted) != len(wantJSONL) {
		t.Errorf("%d events, want %d", len(emitted), len(wantJSONL))
	}
}

func TestReplayStopsAtContextEnd(t *testing.T) {
	// A real clock, at real speed, with rows a day apart: only ctx ends it.
	file := writeFile(t, t.TempDir(), "slow.csv", "date,symbol,price,size\n2025-11-26,A,1,1\n2025-11-27,A,1,1\n")
	r, logs := newReplay(t, ReplayConfig{File: file, Speed: 1})
	ctx, cancel := context.WithCancel(context.Background())
	emitted := make(chan struct{}, 2)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, func(Event) { emitted <- struct{}{} }) }()
	<-emitted
	poll.Until(t, 10*time.Second, func() error {
		if !strings.Contains(logs.String(), "replay waiting for the next row's time") {
			return errors.New("the long wait is not logged")
		}
		return nil
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if len(emitted) != 0 {
		t.Error("the second row was emitted")
	}
}
