// Package benchkit holds what the load tools (tickload, tickstorm,
// tickfloor) measure with: a process's CPU from /proc, Redis's CPU from
// INFO, a publisher's /metrics and a forced GC in it. Its functions are
// safe for concurrent use; a RedisMeter is used by one goroutine.
package benchkit

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrNoProc: the process is gone, or its stat line is not what Linux
// writes.
var ErrNoProc = errors.New("no such process")

// clkTck is USER_HZ, in which /proc/<pid>/stat counts: 100 on every Linux
// this runs on.
const clkTck = 100

// ProcTimes returns the user and system CPU seconds of process pid, from
// /proc/<pid>/stat (fields 14 and 15).
func ProcTimes(pid int) (user, sys float64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("cpu of pid %d: %w", pid, ErrNoProc)
	}
	// The command name (field 2) may hold spaces; the fields after it
	// start past the last ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("cpu of pid %d: short stat line: %w", pid, ErrNoProc)
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	k, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("cpu of pid %d: bad stat line: %w", pid, ErrNoProc)
	}
	return u / clkTck, k / clkTck, nil
}

// ProcCPU returns the user plus system CPU seconds of process pid.
func ProcCPU(pid int) (float64, error) {
	u, s, err := ProcTimes(pid)
	return u + s, err
}

// ForceGC fetches u, a URL such as a publisher's /debug/pprof/heap?gc=1
// that runs a GC; it does nothing when u is empty, and ignores failures
// (the figures read after it then include garbage, which the caller says).
func ForceGC(u string) {
	if u == "" {
		return
	}
	c := http.Client{Timeout: 30 * time.Second}
	if resp, err := c.Get(u); err == nil {
		_ = resp.Body.Close()
	}
}

// Scrape reads the samples named in names from a Prometheus text page
// (unlabelled samples only); a name missing from the page is missing from
// the map.
func Scrape(url string, names ...string) (map[string]float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	out := make(map[string]float64, len(names))
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		for _, want := range names {
			if name == want {
				if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
					out[name] = v
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	return out, nil
}
