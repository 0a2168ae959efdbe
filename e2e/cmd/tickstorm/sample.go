package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tickwire/tickwire/e2e/internal/benchkit"
)

// metrics are the sums over the publishers' /metrics pages.
type metrics struct {
	rss, heap, goroutines, stack float64
	conns                        []float64 // tickwire_publisher_connections, per URL
}

func scrape(urls []string) metrics {
	var m metrics
	for _, u := range urls {
		v, _ := benchkit.Scrape(u, "process_resident_memory_bytes", "go_memstats_heap_inuse_bytes",
			"go_goroutines", "go_memstats_stack_inuse_bytes", "tickwire_publisher_connections")
		m.rss += v["process_resident_memory_bytes"]
		m.heap += v["go_memstats_heap_inuse_bytes"]
		m.goroutines += v["go_goroutines"]
		m.stack += v["go_memstats_stack_inuse_bytes"]
		m.conns = append(m.conns, v["tickwire_publisher_connections"])
	}
	return m
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

// procCPU is pid's user + system CPU seconds.
func procCPU(pid int) (float64, error) { return benchkit.ProcCPU(pid) }

// procSysCPU is pid's system CPU seconds.
func procSysCPU(pid int) (float64, error) {
	_, s, err := benchkit.ProcTimes(pid)
	return s, err
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
