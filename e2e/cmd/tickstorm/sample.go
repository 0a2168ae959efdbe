package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// metrics are the sums over the publishers' /metrics pages.
type metrics struct {
	rss, heap, goroutines, stack float64
	conns                        []float64 // tickwire_publisher_connections, per URL
}

func scrape(urls []string) metrics {
	var m metrics
	c := http.Client{Timeout: 5 * time.Second}
	for _, u := range urls {
		m.conns = append(m.conns, 0)
		resp, err := c.Get(u)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			name, val, ok := strings.Cut(sc.Text(), " ")
			if !ok {
				continue
			}
			v, _ := strconv.ParseFloat(strings.TrimSpace(val), 64)
			switch name {
			case "process_resident_memory_bytes":
				m.rss += v
			case "go_memstats_heap_inuse_bytes":
				m.heap += v
			case "go_goroutines":
				m.goroutines += v
			case "go_memstats_stack_inuse_bytes":
				m.stack += v
			case "tickwire_publisher_connections":
				m.conns[len(m.conns)-1] = v
			}
		}
		_ = resp.Body.Close()
	}
	return m
}

// forceGC fetches a URL such as /debug/pprof/heap?gc=1, which runs a GC.
func forceGC(u string) {
	c := http.Client{Timeout: 30 * time.Second}
	if resp, err := c.Get(u); err == nil {
		_ = resp.Body.Close()
	}
}

type cpuGroup struct {
	name string
	pids []int
}

// parseCPU reads name=pid,pid;name=pid.
func parseCPU(s string) []cpuGroup {
	var gs []cpuGroup
	for _, part := range strings.Split(s, ";") {
		name, list, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		g := cpuGroup{name: strings.TrimSpace(name)}
		for _, p := range split(list) {
			if pid, err := strconv.Atoi(p); err == nil {
				g.pids = append(g.pids, pid)
			}
		}
		gs = append(gs, g)
	}
	return gs
}

// sampleCPU returns each group's CPU seconds (user + system) so far.
func sampleCPU(gs []cpuGroup) []float64 { return sampleCPUOf(gs, procCPU) }

// sampleSysCPU returns each group's system (kernel) CPU seconds so far.
func sampleSysCPU(gs []cpuGroup) []float64 { return sampleCPUOf(gs, procSysCPU) }

func sampleCPUOf(gs []cpuGroup, read func(pid int) (float64, error)) []float64 {
	out := make([]float64, len(gs))
	for i, g := range gs {
		for _, pid := range g.pids {
			s, err := read(pid)
			if err == nil {
				out[i] += s
			}
		}
	}
	return out
}

// clkTck is USER_HZ, 100 on every Linux this runs on.
const clkTck = 100

// procCPU is pid's user + system CPU seconds.
func procCPU(pid int) (float64, error) {
	u, s, err := procTimes(pid)
	return u + s, err
}

// procSysCPU is pid's system CPU seconds.
func procSysCPU(pid int) (float64, error) {
	_, s, err := procTimes(pid)
	return s, err
}

func procTimes(pid int) (user, sys float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, errNoProc
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, 0, errNoProc
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return utime / clkTck, stime / clkTck, nil
}

// reportSys prints each group's kernel share of its CPU in a phase.
func reportSys(gs []cpuGroup, a, b, sa, sb []float64, phase string) {
	parts := make([]string, 0, len(gs))
	for i, g := range gs {
		if d := b[i] - a[i]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s=%.0f%%", g.name, 100*(sb[i]-sa[i])/d))
		}
	}
	fmt.Printf("kernel share of that CPU during the %s: %s\n", phase, strings.Join(parts, " "))
}

func reportCPU(gs []cpuGroup, a, b []float64, secs float64, phase string) {
	parts := make([]string, 0, len(gs))
	for i, g := range gs {
		parts = append(parts, fmt.Sprintf("%s=%.2f", g.name, (b[i]-a[i])/secs))
	}
	fmt.Printf("CPU (cores) during the %s (%.1fs): %s\n", phase, secs, strings.Join(parts, " "))
	fmt.Printf("RESULT cpu_%s %s\n", phase, strings.Join(parts, " "))
}
