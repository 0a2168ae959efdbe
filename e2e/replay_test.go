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
)

// want is one event a client must receive: its channel, its time (0: any)
// and its data.
type want struct {
	ch   string
	ts   int64
	data string
}

// The events of collector/internal/source/testdata/replay.csv: one per
// valid row, in file order; its bad rows (no values, bad time, negative
// price, bad size, high below open, short row) are skipped.
var csvWant = []want{
	{"trade:AAPL", 1764340200000, `{"price":189.23,"size":100}`},
	{"quote:AAPL", 1764340200250, `{"bid":189.22,"bid_size":300,"ask":189.24,"ask_size":500}`},
	{"trade:MSFT", 1764340200500, `{"price":412.1,"size":200}`},
	{"trade:AAPL", 1764340201000, `{"price":189.25,"size":50}`},
	{"quote:MSFT", 1764340201200, `{"bid":412.05,"bid_size":0,"ask":412.15,"ask_size":0}`},
	{"bar:MSFT", 1764340260000, `{"open":412,"high":412.5,"low":411.9,"close":412.3,"volume":12000,"start":1764340260000,"end":1764340320000}`},
	{"bar:MSFT", 1764340320000, `{"open":412.3,"high":412.8,"low":412.2,"close":412.6,"volume":9000,"start":1764340320000,"end":1764340380000}`},
	{"trade:V", 1764340321000, `{"price":310.5,"size":300}`},
	{"trade:AAPL", 1764340323000, `{"price":189.41,"size":10}`},
	{"trade:V", 1764340325000, `{"price":310.6,"size":100}`},
	{"quote:V", 1764340326500, `{"bid":310.55,"bid_size":100,"ask":310.65,"ask_size":200}`},
	{"bar:BRK.B", 1764340380000, `{"open":480.1,"high":480.1,"low":480.1,"close":480.1,"volume":0,"start":1764340380000,"end":1764340440000}`},
}

// The events of replay.jsonl piped to stdin: its valid lines; the blank
// line, the line that is not JSON, the wildcard channel and the negative
// time are skipped. The line without ts gets the time of reading.
var jsonlWant = []want{
	{"trade:AAPL", 1764340200000, `{"price":189.23,"size":100}`},
	{"quote:AAPL", 1764340200250, `{"bid":189.22,"bid_size":300,"ask":189.24,"ask_size":500}`},
	{"bar:MSFT", 1764340260000, `{"open":412,"high":412.5,"low":411.9,"close":412.3,"volume":12000,"start":1764340260000,"end":1764340320000}`},
	{"signal:AAPL", 1764340261000, `{"signal":"new_high","price":189.3,"prev_high":189.25,"move_pct":0.0264}`},
	{"trade:MSFT", 0, `{"price":412.1,"size":200}`},
	{"trade:BRK.B", 1764340262000, `{"price":480.1,"size":5}`},
}

func TestReplayAndStdinToClient(t *testing.T) {
	testdata, err := filepath.Abs("../collector/internal/source/testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		env   []string
		stdin string // file piped in, if any
		want  []want
	}{
		{"replay csv", []string{"COLLECTOR_SOURCE=replay", "COLLECTOR_REPLAY_SPEED=0",
			"COLLECTOR_REPLAY_FILE=" + filepath.Join(testdata, "replay.csv")}, "", csvWant},
		{"replay jsonl", []string{"COLLECTOR_SOURCE=replay", "COLLECTOR_REPLAY_SPEED=0",
			"COLLECTOR_REPLAY_FILE=" + filepath.Join(testdata, "replay.jsonl")}, "", withTime(jsonlWant, 4, 1764340261000)},
		{"stdin jsonl", []string{"COLLECTOR_SOURCE=stdin"}, filepath.Join(testdata, "replay.jsonl"), jsonlWant},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			_, addr := startPublisher(t, srv.URL(), "rp", "pub-1")
			c := connect(t, addr, "alice")
			c.subscribe(map[string]any{"channels": []string{"trade:*", "quote:*", "bar:*", "signal:*"}, "snapshot": false})

			env := append([]string{"REDIS_URL=" + srv.URL(), "STREAM_PREFIX=rp", "COLLECTOR_ADDR=" + freeAddr(t),
				"COLLECTOR_BARS=false", "COLLECTOR_SIGNALS=false"}, tc.env...)
			var in *os.File
			if tc.stdin != "" {
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
				f, err := c.tryRead(10 * time.Second)
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
