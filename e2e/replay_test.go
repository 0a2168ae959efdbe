package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/testkit/golden"
)

// want is one event a client must receive: its channel, its time (0: any)
// and its data.
type want struct {
	ch   string
	ts   int64
	data string
}

// fromGolden returns the events of testkit/golden as a client must receive
// them.
func fromGolden(evs []golden.Event) []want {
	out := make([]want, len(evs))
	for i, e := range evs {
		out[i] = want{e.Ch, e.TS, e.Data}
	}
	return out
}

func TestReplayAndStdinToClient(t *testing.T) {
	testdata := golden.Dir()
	csvWant, jsonlWant := fromGolden(golden.ReplayCSV()), fromGolden(golden.ReplayJSONL())
	// Piped to stdin, the line without ts gets the time of reading: any.
	stdinWant := withTime(jsonlWant, golden.JSONLNoTS, 0)
	for _, tc := range []struct {
		name  string
		env   []string
		stdin string // file piped in, if any
		want  []want
	}{
		{"replay csv", []string{"COLLECTOR_SOURCE=replay", "COLLECTOR_REPLAY_SPEED=0",
			"COLLECTOR_REPLAY_FILE=" + filepath.Join(testdata, "replay.csv")}, "", csvWant},
		{"replay jsonl", []string{"COLLECTOR_SOURCE=replay", "COLLECTOR_REPLAY_SPEED=0",
			"COLLECTOR_REPLAY_FILE=" + filepath.Join(testdata, "replay.jsonl")}, "", jsonlWant},
		{"stdin jsonl", []string{"COLLECTOR_SOURCE=stdin"}, filepath.Join(testdata, "replay.jsonl"), stdinWant},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			_, addr := startPublisher(t, srv.URL(), "rp", "pub-1")
			c := connect(t, addr, "alice")
			c.Subscribe(map[string]any{"channels": []string{"trade:*", "quote:*", "bar:*", "signal:*"}, "snapshot": false})

			env := append([]string{"REDIS_URL=" + srv.URL(), "STREAM_PREFIX=rp", "COLLECTOR_ADDR=" + freeAddr(t),
				"COLLECTOR_BARS=false", "COLLECTOR_SIGNALS=false"}, tc.env...)
			var in *os.File
			if tc.stdin != "" {
				var err error
				if in, err = os.Open(tc.stdin); err != nil {
					t.Fatal(err)
				}
				defer in.Close()
			}
			var col *proc
			if in != nil {
				col = start(t, "collector", "collector", env, in)
			} else {
				col = start(t, "collector", "collector", env, nil)
			}
			if _, err := col.wait(30 * time.Second); err != nil {
				t.Fatalf("collector exit: %v", err)
			}

			var got []want
			for len(got) < len(tc.want) {
				f, err := c.TryRead(10 * time.Second)
				if err != nil {
					t.Fatalf("after %d of %d events: %v", len(got), len(tc.want), err)
				}
				for _, e := range f.Events {
					got = append(got, want{e.Ch, e.TS, string(e.Data)})
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d events, want %d:\n%v", len(got), len(tc.want), got)
			}
			// Order holds per channel; across shards of one symbol it is
			// the file's order, which one shard keeps.
			for i := range tc.want {
				w, g := tc.want[i], got[i]
				if g.ch != w.ch || (w.ts != 0 && g.ts != w.ts) || !sameJSON(t, g.data, w.data) {
					t.Errorf("event %d: got %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

// withTime returns a copy of ws with event i given time ts.
func withTime(ws []want, i int, ts int64) []want {
	out := append([]want(nil), ws...)
	out[i].ts = ts
	return out
}

func sameJSON(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y) || bytes.Equal([]byte(a), []byte(b))
}
