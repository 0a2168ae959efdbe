package server

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/testkit/wsclient"
)

// fillScript writes per entries of padded trades into each history key in
// KEYS[3:] (channel names in ARGV[4:]), records the channels in the set
// KEYS[2], and then one entry into the feed KEYS[1] in a later
// millisecond, so that the feed's last id is above every history entry, as
// the collector leaves it (history entries take the feed's ids; here each
// key draws its own, so the feed entry must come after all of them).
const fillScript = `
local per, pad, ts = tonumber(ARGV[1]), string.rep('x', tonumber(ARGV[2])), ARGV[3]
local top = 0
for i = 3, #KEYS do
  local ch = ARGV[i + 1]
  for j = 1, per do
    local id = redis.call('XADD', KEYS[i], '*', 'ch', ch, 'ts', ts, 'data', '{"price":1,"size":1,"pad":"' .. pad .. '"}')
    top = math.max(top, tonumber(string.match(id, '^(%d+)')))
  end
  redis.call('SADD', KEYS[2], ch)
end
redis.call('XADD', KEYS[1], (top + 1) .. '-*', 'ch', 'trade:ZZZZ', 'ts', ts, 'data', '{"price":1,"size":1}')
return 0
`

// fillHistory writes per retained trades (with pad bytes of padding) for
// each channel of names, fast (inside Redis), on a one-shard layout.
func (e *env) fillHistory(names []string, per, pad int) {
	e.t.Helper()
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	// Small scripts: one long script (tens of MB) can pass Redis's script
	// time limit on a loaded machine, and then Redis answers BUSY.
	chunk := max(1, min(500, (4<<20)/(per*max(pad, 64))))
	for i := 0; i < len(names); i += chunk {
		part := names[i:min(i+chunk, len(names))]
		keys := []string{e.layout.Feed(0), e.layout.Channels(0)}
		args := []any{per, pad, ts}
		for _, n := range part {
			c, err := event.ParseChannel(n)
			if err != nil {
				e.t.Fatal(err)
			}
			keys = append(keys, e.layout.History(c))
			args = append(args, n)
		}
		if err := e.rdb.Eval(context.Background(), fillScript, keys, args...).Err(); err != nil {
			e.t.Fatalf("fill history: %v", err)
		}
	}
}

func symbols(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("trade:S%05d", i)
	}
	return out
}

// heapInUse is the process's heap in use after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// A resume of many channels with a long history by a client that never
// reads: the replica reads history only as the client drains, so it grows
// by about its queue limits, not by the history (100 MB here, which the
// old code read at once and held). The client is closed (4008, or its TCP
// dropped once a write times out) and the replica stays healthy.
func TestReplayOfNonReaderIsBounded(t *testing.T) {
	e := newEnv(t, 1)
	const chans, per, pad = 100, 1000, 1000 // 100 MB of history
	names := symbols(chans)
	e.fillHistory(names, per, pad)
	r := e.startReplica("pub-1", nil) // queue limits: 8192 events, 4 MB
	base := heapInUse()

	hog := dialAuthed(t, r, "hog")
	since := make(map[string]string, chans)
	for _, n := range names {
		since[n] = "1-0" // before everything: replay all, with a gap
	}
	hog.Send(map[string]any{"op": "subscribe", "channels": names, "since": since})

	peak := base
	conns := r.srv.deps.Metrics.Connections
	poll.Until(t, 60*time.Second, func() error {
		peak = max(peak, heapInUse())
		if n := testutil.ToFloat64(conns); n > 0 {
			return errNotYet(fmt.Sprintf("%v connections still open", n))
		}
		return nil
	})
	grown := int64(peak) - int64(base)
	t.Logf("heap in use: base %d MB, peak %d MB during the replay", base>>20, peak>>20)
	if grown > 64<<20 {
		t.Fatalf("heap grew by %d MB for one non-reading client's replay, want under 64 MB", grown>>20)
	}
	for {
		_, err := hog.TryRead(15 * time.Second)
		if err == nil {
			continue
		}
		if code, ok := wsclient.CloseCodeOf(err); ok && code != 4008 && code != 1006 {
			t.Fatalf("non-reading client closed with %d, want 4008 (or a dropped connection): %v", code, err)
		}
		break
	}
	if err := r.srv.Ready(); err != nil {
		t.Fatalf("replica not ready after the replay: %v", err)
	}
	ok := dialAuthed(t, r, "ok")
	ok.Subscribe(map[string]any{"channels": []string{"trade:LIVE"}, "snapshot": false})
	e.write("trade:LIVE", 1)
	if f := ok.ReadType("events"); len(f.Events) != 1 || f.Events[0].Ch != "trade:LIVE" {
		t.Fatalf("live events after the replay: %+v", f)
	}
}

// A replay longer than the queue, read in many pages while live events of
// the same channel keep coming: the client gets every event once, in id
// order, with no gap between the replay and live.
func TestLongReplayThenLiveNoGapNoDuplicate(t *testing.T) {
	e := newEnv(t, 1)
	// 900: under the history's retention (1000), which live writes apply.
	e.fillHistory([]string{"trade:AAPL"}, 900, 10)
	r := e.startReplica("pub-1", func(c *Config) { c.QueueEvents = 64 })
	c := dialAuthed(t, r, "u")
	c.Send(map[string]any{"op": "subscribe", "channels": []string{"trade:AAPL"}, "since": map[string]string{"trade:AAPL": "1-0"}})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // live events during the replay
		defer wg.Done()
		for i := 0; i < 20; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			e.write("trade:AAPL", float64(i), float64(i))
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	var got []string
	want := 900 + 40
	for len(got) < want {
		f, err := c.TryRead(10 * time.Second)
		if err != nil {
			t.Fatalf("after %d of %d events: %v", len(got), want, err)
		}
		switch f.Type {
		case "subscribed", "gap":
		case "events":
			for _, ev := range f.Events {
				got = append(got, ev.ID)
			}
		default:
			t.Fatalf("unexpected frame %+v", f)
		}
	}
	hist, err := e.rdb.XRange(context.Background(), e.layout.History(event.Channel{Kind: event.KindTrade, Symbol: "AAPL"}), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != want {
		t.Fatalf("history holds %d entries, want %d", len(hist), want)
	}
	for i, xm := range hist {
		if got[i] != xm.ID {
			t.Fatalf("event %d: got id %s, want %s (every event once, in order)", i, got[i], xm.ID)
		}
	}
	if f, err := c.TryRead(300 * time.Millisecond); err == nil {
		t.Fatalf("unexpected frame after all events: %+v", f)
	}
}
