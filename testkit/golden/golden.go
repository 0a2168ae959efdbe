// Package golden holds the events the replay fixture files must produce,
// written out by hand, so that the collector's source tests and the e2e
// tests check one list. The files are collector/internal/source/testdata/
// replay.csv and replay.jsonl; Dir returns that folder. Everything here is
// read-only after init and safe to share.
package golden

import (
	"path/filepath"
	"runtime"
)

// Event is one expected event: its channel, its time in ms and its data as
// the exact JSON the source emits.
type Event struct {
	Ch   string
	TS   int64
	Data string
}

// ReplayCSV is testdata/replay.csv as a replay emits it: one event per
// valid row, in file order; its bad rows (no values, bad time, negative
// price, bad size, high below open, short row) are skipped.
func ReplayCSV() []Event {
	return []Event{
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
}

// JSONLNoTS is the index in ReplayJSONL of the line without ts: a replay
// gives it the time of the line before (as listed), stdin the time of
// reading.
const JSONLNoTS = 4

// ReplayJSONL is testdata/replay.jsonl as a replay emits it: its valid
// lines; the blank line, the line that is not JSON, the wildcard channel and
// the negative time are skipped.
func ReplayJSONL() []Event {
	return []Event{
		{"trade:AAPL", 1764340200000, `{"price":189.23,"size":100}`},
		{"quote:AAPL", 1764340200250, `{"bid":189.22,"bid_size":300,"ask":189.24,"ask_size":500}`},
		{"bar:MSFT", 1764340260000, `{"open":412,"high":412.5,"low":411.9,"close":412.3,"volume":12000,"start":1764340260000,"end":1764340320000}`},
		{"signal:AAPL", 1764340261000, `{"signal":"new_high","price":189.3,"prev_high":189.25,"move_pct":0.0264}`},
		{"trade:MSFT", 1764340261000, `{"price":412.1,"size":200}`}, // no ts: the time of the line before
		{"trade:BRK.B", 1764340262000, `{"price":480.1,"size":5}`},
	}
}

// Dir is the absolute path of the folder that holds the fixture files,
// found from this source file, so tests of any module can name them.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "collector", "internal", "source", "testdata")
}
