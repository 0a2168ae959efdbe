package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"time"

	"github.com/tickwire/tickwire/e2e/internal/benchkit"
)

// runParent starts the children, samples CPU and the publishers' metrics
// around the storm and the measurement window, merges the children's
// results and prints the report.
func runParent(ctx context.Context, o options) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	before := scrape(o.metrics)
	t0 := time.Now().Add(time.Second) // time for the children to start
	children := make([]*exec.Cmd, 0, o.procs)
	stdins := make([]io.Closer, 0, o.procs)
	outs := make([]*bufio.Reader, 0, o.procs)
	defer func() {
		for _, in := range stdins {
			_ = in.Close()
		}
		for _, c := range children {
			_ = c.Wait()
		}
	}()
	for k := 0; k < o.procs; k++ {
		n, first := o.clients/o.procs, k*(o.clients/o.procs)
		if k == o.procs-1 {
			n = o.clients - first
		}
		args := append(append([]string{}, os.Args[1:]...), "-child", strconv.Itoa(k), "-t0", strconv.FormatInt(t0.UnixNano(), 10),
			"-first", strconv.Itoa(first), "-clients", strconv.Itoa(n))
		cmd := exec.CommandContext(ctx, self, args...)
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return fmt.Errorf("child stdin: %w", err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return fmt.Errorf("child stdout: %w", err)
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start child: %w", err)
		}
		children, stdins, outs = append(children, cmd), append(stdins, in), append(outs, bufio.NewReader(out))
	}
	loadPids := make([]int, len(children))
	for i, c := range children {
		loadPids[i] = c.Process.Pid
	}
	groups := parseCPU(o.cpu)
	groups = append(groups, cpuGroup{name: "tickstorm", pids: loadPids})
	sleep(ctx, time.Until(t0))
	cpuStorm0, sysStorm0 := sampleCPU(groups), sampleSysCPU(groups)
	sleep(ctx, time.Until(t0.Add(o.storm)))
	cpuStorm1, sysStorm1 := sampleCPU(groups), sampleSysCPU(groups)
	sleep(ctx, time.Until(t0.Add(o.storm+o.warmup)))
	cpuRun0, at0 := sampleCPU(groups), time.Now()
	results := make([]result, 0, len(outs))
	for _, out := range outs {
		var r result
		line, err := out.ReadBytes('\n')
		if err != nil {
			return fmt.Errorf("read child result: %w", err)
		}
		if err := json.Unmarshal(line, &r); err != nil {
			return fmt.Errorf("decode child result: %w", err)
		}
		results = append(results, r)
	}
	cpuRun1, at1 := sampleCPU(groups), time.Now()
	held := scrape(o.metrics) // children still hold their connections
	for _, u := range o.gcURL {
		benchkit.ForceGC(u)
	}
	afterGC := scrape(o.metrics)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	report(o, t0, results, before, held, afterGC)
	reportCPU(groups, cpuStorm0, cpuStorm1, o.storm.Seconds(), "storm")
	reportSys(groups, cpuStorm0, cpuStorm1, sysStorm0, sysStorm1, "storm")
	reportCPU(groups, cpuRun0, cpuRun1, at1.Sub(at0).Seconds(), "run")
	if ev := events(results); ev > 0 {
		total := 0.0
		for i := range groups {
			total += cpuRun1[i] - cpuRun0[i]
		}
		pub := 0.0
		for i, g := range groups {
			if g.name != "tickstorm" {
				pub += cpuRun1[i] - cpuRun0[i]
			}
		}
		fmt.Printf("RESULT cpu_us_per_delivery_server=%.3f cpu_us_per_delivery_all=%.3f\n", pub/float64(ev)*1e6, total/float64(ev)*1e6)
	}
	return nil
}

func events(rs []result) int64 {
	var n int64
	for _, r := range rs {
		n += r.Events
	}
	return n
}

// report prints the merged figures, each also as a RESULT key=value line.
func report(o options, t0 time.Time, rs []result, before, held, afterGC metrics) {
	var m result
	m.Buckets = map[int]int64{}
	for _, r := range rs {
		m.Connected += r.Connected
		m.Failed += r.Failed
		m.StormEnd = max(m.StormEnd, r.StormEnd)
		m.Ramp = addRamp(m.Ramp, r.Ramp)
		m.Events += r.Events
		m.Frames += r.Frames
		m.Seconds = max(m.Seconds, r.Seconds)
		m.Worst = max(m.Worst, r.Worst)
		for k, v := range r.Buckets {
			m.Buckets[k] += v
		}
		if m.FirstErr == "" {
			m.FirstErr = r.FirstErr
		}
	}
	storm := time.Duration(0)
	if m.StormEnd > 0 {
		storm = time.Unix(0, m.StormEnd).Sub(t0)
	}
	fmt.Printf("clients subscribed: %d of %d (failed %d) over %d processes\n", m.Connected, o.clients, m.Failed, o.procs)
	if m.FirstErr != "" {
		fmt.Println("first client error:", m.FirstErr)
	}
	fmt.Printf("storm: last client subscribed %v after the start (limit %v)\n", storm.Round(time.Millisecond), o.storm)
	fmt.Println(rampLine(m.Ramp))
	rate := float64(m.Events) / max(m.Seconds, 1e-9)
	fmt.Printf("measured %.1fs: %d events in %d frames: %.0f deliveries/s\n", m.Seconds, m.Events, m.Frames, rate)
	p := func(q float64) time.Duration { return percentile(m.Buckets, q) }
	fmt.Printf("latency ts->client: p50 %v  p90 %v  p99 %v  p99.9 %v  max %v\n",
		p(.5), p(.9), p(.99), p(.999), m.Worst.Round(100*time.Microsecond))
	fmt.Printf("RESULT subscribed=%d failed=%d storm_s=%.2f deliveries_per_s=%.0f p50_ms=%.1f p99_ms=%.1f max_ms=%.1f\n",
		m.Connected, m.Failed, storm.Seconds(), rate, ms(p(.5)), ms(p(.99)), ms(m.Worst))
	fmt.Printf("connections per publisher while held: %v\n", held.conns)
	if m.Connected == 0 || before.rss == 0 {
		return
	}
	n := float64(m.Connected)
	kib := func(a, b float64) float64 { return (b - a) / n / 1024 }
	fmt.Printf("publisher RSS: %.1f MiB before, %.1f MiB held, %.1f MiB after a GC: %.1f / %.1f KiB per connection\n",
		before.rss/(1<<20), held.rss/(1<<20), afterGC.rss/(1<<20), kib(before.rss, held.rss), kib(before.rss, afterGC.rss))
	fmt.Printf("publisher Go heap in use: %.1f MiB before, %.1f MiB held, %.1f MiB after a GC: %.1f / %.1f KiB per connection\n",
		before.heap/(1<<20), held.heap/(1<<20), afterGC.heap/(1<<20), kib(before.heap, held.heap), kib(before.heap, afterGC.heap))
	fmt.Printf("publisher goroutines: %.0f before, %.0f held (%.2f per connection); stacks %.1f MiB held\n",
		before.goroutines, held.goroutines, (held.goroutines-before.goroutines)/n, held.stack/(1<<20))
	fmt.Printf("RESULT rss_kib_per_conn=%.1f rss_kib_per_conn_gc=%.1f heap_kib_per_conn=%.1f heap_kib_per_conn_gc=%.1f\n",
		kib(before.rss, held.rss), kib(before.rss, afterGC.rss), kib(before.heap, held.heap), kib(before.heap, afterGC.heap))
}

func addRamp(a, b []int64) []int64 {
	for len(a) < len(b) {
		a = append(a, 0)
	}
	for i, v := range b {
		a[i] += v
	}
	return a
}

// rampLine says when a share of the subscribed clients had subscribed, and
// the fastest second of the storm.
func rampLine(ramp []int64) string {
	var total int64
	for _, v := range ramp {
		total += v
	}
	if total == 0 {
		return "storm ramp: no client subscribed"
	}
	at := func(q float64) time.Duration {
		var seen int64
		for i, v := range ramp {
			if seen += v; float64(seen) >= q*float64(total) {
				return time.Duration(i+1) * stormBin
			}
		}
		return time.Duration(len(ramp)) * stormBin
	}
	per := int(time.Second / stormBin)
	var best, win int64
	for i, v := range ramp {
		win += v
		if i >= per {
			win -= ramp[i-per]
		}
		best = max(best, win)
	}
	return fmt.Sprintf("storm ramp: 10%% subscribed by %v, 50%% by %v, 90%% by %v, 99%% by %v; fastest second %d subscribes",
		at(.1), at(.5), at(.9), at(.99), best)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func percentile(b map[int]int64, q float64) time.Duration {
	keys := make([]int, 0, len(b))
	var total int64
	for k, v := range b {
		keys = append(keys, k)
		total += v
	}
	if total == 0 {
		return 0
	}
	sort.Ints(keys)
	want, seen := int64(float64(total)*q), int64(0)
	for _, k := range keys {
		if seen += b[k]; seen > want {
			return time.Duration(k+1) * bucketUnit
		}
	}
	return time.Duration(keys[len(keys)-1]+1) * bucketUnit
}
