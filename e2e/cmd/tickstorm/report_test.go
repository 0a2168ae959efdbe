package main

import (
	"os"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	// 90 samples at 1 ms (bucket 10), 10 at 50 ms (bucket 500).
	b := map[int]int64{10: 90, 500: 10}
	if got := percentile(b, .5); got != 11*bucketUnit {
		t.Errorf("p50 = %v, want %v", got, 11*bucketUnit)
	}
	if got := percentile(b, .99); got != 501*bucketUnit {
		t.Errorf("p99 = %v, want %v", got, 501*bucketUnit)
	}
	if got := percentile(map[int]int64{}, .99); got != 0 {
		t.Errorf("p99 of nothing = %v, want 0", got)
	}
}

func TestProcCPUOfSelf(t *testing.T) {
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) { // burn a little CPU
	}
	s, err := procCPU(os.Getpid())
	if err != nil || s <= 0 {
		t.Fatalf("procCPU(self) = %v, %v: want a positive number of seconds", s, err)
	}
	if sys, err := procSysCPU(os.Getpid()); err != nil || sys < 0 || sys > s {
		t.Errorf("procSysCPU(self) = %v, %v: want 0..%v", sys, err, s)
	}
	if _, err := procCPU(-1); err == nil {
		t.Error("procCPU(-1) succeeded")
	}
}

func TestParseCPU(t *testing.T) {
	gs := parseCPU("publisher=1,2;redis=3")
	if len(gs) != 2 || gs[0].name != "publisher" || len(gs[0].pids) != 2 || gs[1].pids[0] != 3 {
		t.Errorf("parseCPU = %+v", gs)
	}
}

func TestParseFlagsDerivesMetrics(t *testing.T) {
	o, err := parseFlags([]string{"-secret", "s", "-url", "ws://127.0.0.1:1/v1/stream,ws://127.0.0.1:2/v1/stream"})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.metrics) != 2 || o.metrics[1] != "http://127.0.0.1:2/metrics" {
		t.Errorf("metrics = %v", o.metrics)
	}
	if _, err := parseFlags([]string{"-secret", "s", "-srcs", "300"}); err == nil {
		t.Error("-srcs 300 accepted")
	}
}
