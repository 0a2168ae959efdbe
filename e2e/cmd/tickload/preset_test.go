package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestApplyPreset(t *testing.T) {
	var o options
	if err := applyPreset(&o, "W1"); err != nil {
		t.Fatal(err)
	}
	if o.clients != 100 || o.idle || len(strings.Split(o.channels, ",")) != 10 {
		t.Errorf("w1 = %+v, want 100 clients on 10 channels, not idle", o)
	}
	if err := applyPreset(&o, "w4"); err != nil {
		t.Fatal(err)
	}
	if o.clients != 3000 || !o.idle || !o.idleSub {
		t.Errorf("w4 = %+v, want 3000 idle clients that subscribe", o)
	}
	if err := applyPreset(&o, "w9"); err == nil {
		t.Error("unknown preset accepted")
	}
}

// cpuEach reads this process's CPU time, which grows as it spins.
func TestCPUEach(t *testing.T) {
	pids, err := parsePids(" " + itoa(os.Getpid()) + ",")
	if err != nil || len(pids) != 1 {
		t.Fatalf("parsePids = %v, %v", pids, err)
	}
	sum := func() (float64, error) {
		each, err := cpuEach(pids)
		if err != nil || len(each) != 1 {
			return 0, fmt.Errorf("cpuEach = %v, %v", each, err)
		}
		return each[0], nil
	}
	before, err := sum()
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for after := before; after <= before; after, err = sum() {
		if err != nil {
			t.Fatal(err)
		}
		for i := range 1_000_000 {
			x += i
		}
	}
	_ = x
	if _, err := cpuEach([]int{-1}); err == nil {
		t.Error("cpu of pid -1 read")
	}
	if _, err := parsePids("1,x"); err == nil {
		t.Error("-pids 1,x accepted")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestScanLatencies(t *testing.T) {
	frame := []byte(`{"type":"events","events":[{"channel":"trade:A","seq":1,"ts":1000,"data":{"price":1}},` +
		`{"channel":"quote:A","seq":2,"ts":1002,"data":{"bid":1}},{"channel":"x","ts":"bad"}]}`)
	got := scanLatencies(frame, 1_005_500, nil)
	want := []time.Duration{5500 * time.Microsecond, 3500 * time.Microsecond}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("scanLatencies = %v, want %v", got, want)
	}
}
