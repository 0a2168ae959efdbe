package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tickwire/tickwire/e2e/internal/benchkit"
)

// preset is a named workload of issue 9: the clients, their channels, and
// the collector rate it assumes (the collector is started by the caller,
// e.g. scripts/bench-e2e.sh, which reads it with -print-rate).
type preset struct {
	clients int
	rate    int // events/s the collector must emit
	idle    bool
	about   string
}

// presetSymbols are the collector's symbols under a preset: five symbols,
// whose trade and quote channels are the ten channels each client takes.
// The collector runs with bars and signals off, so that the rate is the
// events each client receives.
const presetSymbols = "AAPL,MSFT,NVDA,AMZN,GOOGL"

var presets = map[string]preset{
	"w1": {clients: 100, rate: 2000, about: "100 clients, 2000 ev/s, 10 channels each"},
	"w2": {clients: 1000, rate: 1000, about: "1000 clients, 1000 ev/s, 10 channels each"},
	"w3": {clients: 100, rate: 200, about: "100 clients, 200 ev/s, 10 channels each"},
	"w4": {clients: 3000, rate: 200, idle: true, about: "3000 connections, one channel each, idle: memory per connection"},
}

// presetChannels returns the ten channels of presetSymbols.
func presetChannels() string {
	var out []string
	for _, s := range strings.Split(presetSymbols, ",") {
		out = append(out, "trade:"+s, "quote:"+s)
	}
	return strings.Join(out, ",")
}

// applyPreset sets o from the preset named name. W4's connections each
// subscribe to a channel of their own that no event is sent on (idle), so
// that what is measured is the cost of a subscribed, quiet connection.
func applyPreset(o *options, name string) error {
	p, ok := presets[strings.ToLower(name)]
	if !ok {
		return fmt.Errorf("preset %q: want one of %s", name, presetNames())
	}
	o.clients, o.idle, o.idleSub = p.clients, p.idle, p.idle
	o.channels = presetChannels()
	return nil
}

func presetNames() string {
	var names []string
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// cpuEach returns the user plus system CPU time of each process of pids.
func cpuEach(pids []int) ([]float64, error) {
	out := make([]float64, 0, len(pids))
	for _, pid := range pids {
		c, err := benchkit.ProcCPU(pid)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// parsePids parses a comma list of process ids.
func parsePids(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("-pids %q: %w", s, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// cpuMeter measures the CPU the server processes spend over a span.
type cpuMeter struct {
	pids  []int
	start []float64
	at    time.Time
}

func (m *cpuMeter) begin() {
	if len(m.pids) == 0 {
		return
	}
	m.start, _ = cpuEach(m.pids)
	m.at = time.Now()
}

// used returns the CPU seconds spent since begin by all the processes and
// by each, and the wall time.
func (m *cpuMeter) used() (cpu float64, each []float64, wall time.Duration, err error) {
	if len(m.pids) == 0 {
		return 0, nil, 0, nil
	}
	end, err := cpuEach(m.pids)
	if err != nil || len(end) != len(m.start) {
		return 0, nil, 0, err
	}
	for i := range end {
		each = append(each, end[i]-m.start[i])
		cpu += end[i] - m.start[i]
	}
	return cpu, each, time.Since(m.at), nil
}
