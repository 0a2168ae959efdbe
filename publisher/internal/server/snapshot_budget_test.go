package server

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/publisher/internal/hub"
)

// commandCalls returns how many times Redis ran cmd (INFO commandstats).
func commandCalls(t testing.TB, rdb *redis.Client, cmd string) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "cmdstat_"+cmd+":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(line[:strings.IndexByte(line, ',')], 10, 64)
		return n
	}
	return 0
}

// redisCPU is the CPU time the Redis server has used, user and system.
func redisCPU(t testing.TB, rdb *redis.Client) time.Duration {
	t.Helper()
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, _ := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if k == "used_cpu_user" || k == "used_cpu_sys" {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}

// loopSnapshots runs conns connections of user sub, each looping
// subscribe/unsubscribe of pattern (within the frame rate limit) and
// reading everything, until stop is closed.
func loopSnapshots(t *testing.T, r *replica, sub, pattern string, conns int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		c := dialAuthed(t, r, sub)
		wg.Add(2)
		go func() { // reader: takes whatever comes until the connection ends
			defer wg.Done()
			_ = c.ws.SetReadDeadline(time.Time{})
			for {
				if _, _, err := c.ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			defer func() { _ = c.ws.Close() }()
			tick := time.NewTicker(50 * time.Millisecond) // 40 frames/s, under the limit of 50
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				for _, op := range []string{"subscribe", "unsubscribe"} {
					msg := fmt.Sprintf(`{"op":%q,"channels":[%q]}`, op, pattern)
					if err := c.ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
						return
					}
				}
			}
		}()
	}
	return &wg
}

// One user with 10 connections looping subscribe/unsubscribe of trade:*
// over 20 000 symbols: the user's history reads are held to its budget
// (the old code read every snapshot whole, 20 000 reads per subscribe),
// and the replica's heap stays bounded.
func TestSnapshotLoopIsBudgeted(t *testing.T) {
	e := newEnv(t, 1)
	e.fillHistory(symbols(20000), 1, 50)
	r := e.startReplica("pub-1", nil)
	base := heapInUse()
	before := commandCalls(t, e.rdb, "xrevrange")
	cpuBefore := redisCPU(t, e.rdb)
	start := time.Now()
	stop := make(chan struct{})
	wg := loopSnapshots(t, r, "greedy", "trade:*", 10, stop)
	peak := base
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		peak = max(peak, heapInUse())
		time.Sleep(100 * time.Millisecond) // sampling, not waiting for a condition
	}
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	calls := commandCalls(t, e.rdb, "xrevrange") - before
	// Reported, not asserted (a loaded machine skews it): BENCHMARKS.md.
	t.Logf("Redis used %.2f of a core", float64(redisCPU(t, e.rdb)-cpuBefore)/float64(elapsed))
	// Each read of a channel's latest entry is one XREVRANGE; each page
	// adds one for the feed's head. Generous: twice the budget.
	allowed := 2 * (hub.ReadsBurst + int64(hub.ReadsPerSecond*elapsed.Seconds()))
	t.Logf("%d XREVRANGE in %v (budget %d/s, burst %d); heap in use base %d MB, peak %d MB",
		calls, elapsed.Round(time.Millisecond), hub.ReadsPerSecond, hub.ReadsBurst, base>>20, peak>>20)
	if calls > allowed {
		t.Fatalf("%d XREVRANGE for one user in %v, want at most %d", calls, elapsed, allowed)
	}
	if grown := int64(peak) - int64(base); grown > 300<<20 {
		t.Fatalf("heap grew by %d MB, want under 300 MB", grown>>20)
	}
	if err := r.srv.Ready(); err != nil {
		t.Fatalf("replica not ready: %v", err)
	}
}

// BenchmarkSnapshotKindAll measures one KIND:* snapshot (subscribe
// trade:* and read every snapshot event) at 1 000 and 20 000 symbols:
// time per snapshot, and Redis commands per snapshot. Each op is another
// user, so that no user's budget of reads is the limit.
func BenchmarkSnapshotKindAll(b *testing.B) {
	for _, n := range []int{1000, 20000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			e := newEnvB(b)
			e.fillHistory(symbols(n), 1, 50)
			r := e.startReplicaB(b)
			before := commandCalls(b, e.rdb, "xrevrange") + commandCalls(b, e.rdb, "smembers")
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ws, _, err := websocket.DefaultDialer.Dial(wsURL(r, "access_token="+tokenB(b, fmt.Sprint("bench", i))), nil)
				if err != nil {
					b.Fatal(err)
				}
				_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
				_, _, _ = ws.ReadMessage() // welcome
				_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","channels":["trade:*"]}`))
				got := 0
				for got < n {
					_, data, err := ws.ReadMessage()
					if err != nil {
						b.Fatalf("after %d snapshot events: %v", got, err)
					}
					if strings.HasPrefix(string(data), `{"type":"snapshot"`) {
						got += strings.Count(string(data), `"ts":`)
					}
				}
				_ = ws.Close()
			}
			b.StopTimer()
			after := commandCalls(b, e.rdb, "xrevrange") + commandCalls(b, e.rdb, "smembers")
			b.ReportMetric(float64(after-before)/float64(b.N), "redis-cmds/op")
		})
	}
}
