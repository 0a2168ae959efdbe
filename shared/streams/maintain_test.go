package streams

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// commandCalls returns how often Redis ran cmd, or every command if cmd is
// "" (INFO commandstats counts the commands scripts call too).
func commandCalls(t testing.TB, f fixture, cmd string) int {
	t.Helper()
	info, err := f.c.Info(t.Context(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "cmdstat_"), ":calls=")
		if !ok || (cmd != "" && name != cmd) {
			continue
		}
		n, err := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

// A history's XTRIM MINID and PEXPIRE are sent at most once per
// maintenance period, not with every write: writes within the period send
// none, and the first write after it sends them again.
func TestHistoryMaintenanceIsPaced(t *testing.T) {
	f := newFixture(t)
	l := mustLayout(t, 1)
	w := NewWriter(f.c, l, WriterConfig{FeedLen: 1000, HistoryLen: 1000, Retention: time.Minute})
	clock := time.UnixMilli(1764288000000)
	w.now = func() time.Time { return clock }
	write := func(seq int) {
		t.Helper()
		if _, err := unwrittenOf(w.Write(t.Context(), []Pending{trade(t, "AAPL", seq), trade(t, "MSFT", seq)})); err != nil {
			t.Fatal(err)
		}
	}
	write(1)
	if got := commandCalls(t, f, "pexpire"); got != 2 {
		t.Fatalf("first write: %d PEXPIRE, want 2 (one per history)", got)
	}
	for i := 2; i < 10; i++ {
		clock = clock.Add(maxMaintainEvery / 10)
		write(i)
	}
	if got, trims := commandCalls(t, f, "pexpire"), commandCalls(t, f, "xtrim"); got != 2 || trims != 2 {
		t.Fatalf("writes within the period: %d PEXPIRE and %d XTRIM in all, want 2 each", got, trims)
	}
	clock = clock.Add(maxMaintainEvery)
	write(10)
	if got := commandCalls(t, f, "pexpire"); got != 4 {
		t.Fatalf("write after the period: %d PEXPIRE in all, want 4", got)
	}
	if ttl, err := f.c.PTTL(t.Context(), l.History(mustChannel(t, "trade:AAPL"))).Result(); err != nil || ttl <= 0 {
		t.Errorf("history TTL %v (%v), want one set", ttl, err)
	}
}
