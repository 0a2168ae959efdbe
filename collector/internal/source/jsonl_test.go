package source

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/testkit/logbuf"
)

func TestParseLine(t *testing.T) {
	now := time.UnixMilli(1764288000999)
	tests := []struct {
		name    string
		line    string
		wantCh  string
		wantTS  int64
		wantErr error
	}{
		{"trade", `{"ch":"trade:AAPL","ts":1764288000120,"data":{"price":189.23,"size":100}}`, "trade:AAPL", 1764288000120, nil},
		{"normalised", `{"ch":"Quote:brk.b","ts":5,"data":{"bid":1,"ask":2}}`, "quote:BRK.B", 5, nil},
		{"no ts is now", `{"ch":"trade:AAPL","data":{}}`, "trade:AAPL", now.UnixMilli(), nil},
		{"extra field", `{"ch":"trade:AAPL","ts":1,"id":"9-0","data":{}}`, "trade:AAPL", 1, nil},
		{"not json", `trade:AAPL 189.23`, "", 0, event.ErrBadData},
		{"not an object", `[1,2]`, "", 0, event.ErrBadData},
		{"no ch", `{"ts":1,"data":{}}`, "", 0, event.ErrMissingField},
		{"bad kind", `{"ch":"tick:AAPL","ts":1,"data":{}}`, "", 0, event.ErrInvalidChannel},
		{"wildcard", `{"ch":"trade:*","ts":1,"data":{}}`, "", 0, event.ErrInvalidChannel},
		{"negative ts", `{"ch":"trade:AAPL","ts":-1,"data":{}}`, "", 0, event.ErrBadTimestamp},
		{"fractional ts", `{"ch":"trade:AAPL","ts":1.5,"data":{}}`, "", 0, event.ErrBadTimestamp},
		{"no data", `{"ch":"trade:AAPL","ts":1}`, "", 0, event.ErrMissingField},
		{"null data", `{"ch":"trade:AAPL","ts":1,"data":null}`, "", 0, event.ErrBadData},
		{"array data", `{"ch":"trade:AAPL","ts":1,"data":[1]}`, "", 0, event.ErrBadData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseLine([]byte(tt.line), now)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParseLine error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseLine: %v", err)
			}
			if e.Channel.String() != tt.wantCh || e.TS != tt.wantTS {
				t.Errorf("got %s ts %d, want %s ts %d", e.Channel, e.TS, tt.wantCh, tt.wantTS)
			}
		})
	}
}

func FuzzParseLine(f *testing.F) {
	f.Add([]byte(`{"ch":"trade:AAPL","ts":1764288000120,"data":{"price":189.23,"size":100}}`))
	f.Add([]byte(`{"ch":"quote:*","data":{}}`))
	f.Add([]byte(`{"ch":"trade:AAPL","ts":"12","data":{"a":[1,{"b":null}]}}`))
	f.Add([]byte(`{"ch":1,"ts":-0,"data":"x"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := ParseLine(line, time.UnixMilli(1))
		if err != nil {
			return
		}
		if e.Channel.IsWildcard() || e.TS < 0 {
			t.Fatalf("accepted %s ts %d", e.Channel, e.TS)
		}
		if err := event.CheckData(data(e)); err != nil {
			t.Fatalf("accepted data %q: %v", data(e), err)
		}
		if _, err := event.ParseChannel(e.Channel.String()); err != nil {
			t.Fatalf("accepted channel %s: %v", e.Channel, err)
		}
	})
}

func newJSONL(t *testing.T, r io.Reader, cfg JSONLConfig) (*JSONL, *logbuf.Buffer) {
	t.Helper()
	var logs logbuf.Buffer
	j, err := NewJSONL(r, cfg, slog.New(slog.NewTextHandler(&logs, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("NewJSONL: %v", err)
	}
	return j, &logs
}

func TestJSONLReadsToEOF(t *testing.T) {
	input := strings.Join([]string{
		`{"ch":"trade:AAPL","ts":1,"data":{"price":1,"size":1}}`,
		``,
		`not json`,
		`{"ch":"quote:MSFT","ts":2,"data":{"bid":1,"ask":2}}` + "\r",
		`{"ch":"trade:AAPL","ts":3,"data":{"x":"` + strings.Repeat("y", maxLine) + `"}}`,
		`{"ch":"trade:*","ts":4,"data":{}}`,
		`   `,
		`{"ch":"trade:NVDA","ts":5,"data":{}}`, // no newline at the end
	}, "\n")
	j, logs := newJSONL(t, strings.NewReader(input), JSONLConfig{Name: "test"})
	var got []string
	err := j.Run(context.Background(), func(e Event) { got = append(got, e.Channel.String()) })
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if strings.Join(got, " ") != "trade:AAPL quote:MSFT trade:NVDA" {
		t.Errorf("emitted %v", got)
	}
	if n := testutil.ToFloat64(j.bad); n != 3 {
		t.Errorf("bad lines counted %v, want 3", n)
	}
	for _, want := range []string{"line=3", "line=5", "line=6", "bad_lines=3"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestJSONLReadError(t *testing.T) {
	r := io.MultiReader(strings.NewReader(`{"ch":"trade:AAPL","ts":1,"data":{}}`+"\n"), brokenReader{})
	j, _ := newJSONL(t, r, JSONLConfig{Name: "test"})
	n := 0
	err := j.Run(context.Background(), func(Event) { n++ })
	if !errors.Is(err, errBroken) || n != 1 {
		t.Errorf("Run = %v after %d events, want errBroken after 1", err, n)
	}
}

var errBroken = errors.New("broken input")

type brokenReader struct{}

func (brokenReader) Read([]byte) (int, error) { return 0, errBroken }

func TestJSONLStopsAtContextEnd(t *testing.T) {
	pr, pw := io.Pipe()
	t.Cleanup(func() { _ = pw.Close() }) // ends the reading goroutine
	j, _ := newJSONL(t, pr, JSONLConfig{Name: "pipe"})
	ctx, cancel := context.WithCancel(context.Background())
	emitted := make(chan Event, 1)
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx, func(e Event) { emitted <- e }) }()
	if _, err := io.WriteString(pw, `{"ch":"trade:AAPL","ts":1,"data":{}}`+"\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-emitted: // a lone line is handed over without waiting for more
	case <-time.After(10 * time.Second):
		t.Fatal("line not emitted")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel while the input blocks")
	}
}

func TestJSONLWaitsWhileBusy(t *testing.T) {
	var mu sync.Mutex
	busy := true
	isBusy := func() bool { mu.Lock(); defer mu.Unlock(); return busy }
	input := `{"ch":"trade:AAPL","ts":1,"data":{}}` + "\n"
	j, _ := newJSONL(t, strings.NewReader(input), JSONLConfig{Name: "test", Busy: isBusy})
	emitted := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- j.Run(context.Background(), func(Event) { emitted <- struct{}{} }) }()
	select {
	case <-emitted:
		t.Fatal("emitted while the consumer is busy")
	case <-time.After(50 * time.Millisecond):
	}
	mu.Lock()
	busy = false
	mu.Unlock()
	<-emitted
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
