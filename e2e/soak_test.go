//go:build linux

// The soak test needs Linux for the socket options that make a stalled
// client's TCP window small (see soakDial); the project runs it on Linux.

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickwire/tickwire/shared/auth"
	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/shared/streams"
	"github.com/tickwire/tickwire/testkit/tape"
)

// Shape of the soak. The collector's rate and the number of clients are
// chosen for a two-core machine shared with other work, with race-enabled
// binaries.
const (
	soakPrefix    = "soak"
	soakSymbols   = "AAPL,MSFT,NVDA,AMZN,GOOGL,META,TSLA,BRK.B,JPM,V"
	soakRate      = 500 // events per second, all symbols
	soakClients   = 120 // simulated clients at any time, tracked ones included
	soakTracked   = 10  // clients that keep a tape of soakTapeCh
	soakTapeCh    = "trade:AAPL"
	soakHeartbeat = 8 * time.Second // publisher pings; a client that stalls for 2x is dropped
	// soakQueueEvents is the publishers' per-connection queue: small enough
	// that a stalled client (with a small TCP window, see soakDial) of
	// trade:* is closed as a slow consumer within seconds, not minutes;
	// large enough for the trades of one feed read (1000 entries, 40%
	// trades), which a replica that starved for a moment delivers at once.
	soakQueueEvents = 512

	// Bounds of one simulated client.
	soakMaxSessions    = 100_000 // per client identity; the soak's end comes first
	soakMaxGenerations = 100_000 // identities per slot; likewise
	soakSessionMin     = time.Second
	soakSessionMax     = 12 * time.Second
	soakActEvery       = 2 * time.Second  // actions come 0.2 to this apart
	soakStallMax       = 12 * time.Second // most stalls; one in ten lasts past 2 heartbeats
	soakMaxChannels    = 6
	soakDialTimeout    = 10 * time.Second
	// soakDialAttempts: on a loaded machine loopback drops packets (the
	// per-CPU backlog overflows), SYNs too; a replica that accepts nothing
	// for this many soakDialTimeout is a failure.
	soakDialAttempts = 6
	soakWelcomeWait  = 30 * time.Second
	soakPoliteWait   = 2 * time.Second
	soakWriteWait    = 15 * time.Second
	// soakLivelock connections in a row of one client closed as slow
	// though it was reading, with not one event between them, mean its
	// resume can never succeed.
	soakLivelock = 5

	// Settling at the end.
	soakStopWait   = time.Minute
	soakSettleWait = 30 * time.Second
	soakGoroutines = 20       // allowed growth of go_goroutines over the baseline
	soakHeapSlack  = 20 << 20 // heap may be 2x the baseline plus this
)

// soakDuration reads TICKWIRE_SOAK, or skips the test when it is unset.
// Run the soak with -count=1: go test would otherwise replay a passing
// result for the same TICKWIRE_SOAK, though the binaries it builds from
// ../collector and ../publisher have changed.
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("TICKWIRE_SOAK")
	if v == "" {
		t.Skip("set TICKWIRE_SOAK to a duration (e.g. TICKWIRE_SOAK=3m, as make soak does) to run the soak test")
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("TICKWIRE_SOAK=%q: want a positive duration such as 3m", v)
	}
	return d
}

// TestSoak runs many clients that come and go against two publisher
// replicas for TICKWIRE_SOAK, then checks that every connection and
// subscription is gone, goroutines and heap are back near where they were,
// and the tracked clients' tapes of trade:AAPL, across every reconnect and
// resume, equal the channel's history in Redis: no gap, no repeat.
func TestSoak(t *testing.T) {
	dur := soakDuration(t)
	srv := redistest.Start(t)
	histLen := max(100_000, int(soakRate*dur.Seconds()*1.5)) // never trimmed within the soak
	startCollector(t, srv, soakPrefix,
		"COLLECTOR_SYMBOLS="+soakSymbols, fmt.Sprintf("COLLECTOR_RATE=%d", soakRate),
		"COLLECTOR_FLUSH_INTERVAL=100ms", fmt.Sprintf("COLLECTOR_HISTORY_LEN=%d", histLen),
		"COLLECTOR_RETENTION=0", "COLLECTOR_SEED=0", "LOG_LEVEL=info")
	r := &soakRun{seed: rand.Uint64()}
	r.startPublishers(t, srv)
	soakWarmUp(t, r)
	base := soakMeasure(t, r)
	for i, a := range r.addrs {
		t.Logf("baseline %s: goroutines %.0f, heap in use %.1f MiB, %.0f objects (after a forced GC: %v)",
			a, base[i].goroutines, base[i].heap/(1<<20), base[i].objects, base[i].gc)
	}

	end := r.runClients(t, dur)
	soakSettle(t, r, base)
	r.logFigures(t, dur)
	soakCheckTapes(t, srv, r, end)
	r.report(t)
	if s := &r.stats; s.events.Load() == 0 || s.resumes.Load() == 0 {
		t.Errorf("the soak did not exercise the system: %d events, %d resumes", s.events.Load(), s.resumes.Load())
	}
}

// startPublishers starts the two replicas, each with a pprof address that
// lets the test make it collect its garbage before its heap is read.
func (r *soakRun) startPublishers(t *testing.T, srv *redistest.Server) {
	t.Helper()
	env := []string{
		"LOG_LEVEL=info", "PUBLISHER_HEARTBEAT=" + soakHeartbeat.String(),
		fmt.Sprintf("PUBLISHER_QUEUE_EVENTS=%d", soakQueueEvents),
	}
	for i := range 2 {
		dbg := freeAddr(t)
		p, addr := startPublisher(t, srv.URL(), soakPrefix, fmt.Sprintf("pub-%d", i+1), append(env, "PUBLISHER_DEBUG_ADDR="+dbg)...)
		r.procs, r.addrs, r.dbgs = append(r.procs, p), append(r.addrs, addr), append(r.dbgs, dbg)
	}
}

// runClients runs the clients for dur, waits until they have stopped,
// and returns when that was.
func (r *soakRun) runClients(t *testing.T, dur time.Duration) time.Time {
	t.Helper()
	t.Logf("soak: %v, %d clients (%d tracked), %d events/s over %s, seed %d", dur, soakClients, soakTracked, soakRate, soakSymbols, r.seed)
	start, cpu0 := time.Now(), soakCPU()
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup
	for i := range soakClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.slot(ctx, i, i < soakTracked)
		}()
	}
	go r.watchFreezes(ctx)
	soakProgress(t, ctx, r, start)
	stopped := make(chan struct{})
	go func() {
		wg.Wait()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(soakStopWait):
		t.Fatalf("clients did not stop within %v of the soak's end", soakStopWait)
	}
	end := time.Now()
	t.Logf("clients stopped %v after the soak's end; CPU of this process (the clients) %.0f s",
		end.Sub(start)-dur, (soakCPU() - cpu0).Seconds())
	return end
}

// soakSettle waits until both replicas have no connection and no
// subscription left, then until goroutines and heap are back near base.
func soakSettle(t *testing.T, r *soakRun, base []soakFigures) {
	t.Helper()
	soakPoll(t, soakSettleWait, func() error {
		for _, a := range r.addrs {
			if n := scrape(t, a, "tickwire_publisher_connections"); n != 0 {
				return fmt.Errorf("%s still counts %v connections", a, n)
			}
			if n := scrape(t, a, "tickwire_publisher_subscriptions"); n != 0 {
				return fmt.Errorf("%s still holds %v subscriptions", a, n)
			}
		}
		return nil
	})
	var after []soakFigures
	settled := soakPollErr(soakSettleWait, func() error {
		after = soakMeasure(t, r)
		for i, a := range r.addrs {
			if g := after[i].goroutines; g > base[i].goroutines+soakGoroutines {
				return fmt.Errorf("%s: %.0f goroutines, baseline %.0f", a, g, base[i].goroutines)
			}
			if h := after[i].heap; h > 2*base[i].heap+soakHeapSlack {
				return fmt.Errorf("%s: heap in use %.1f MiB, baseline %.1f MiB", a, h/(1<<20), base[i].heap/(1<<20))
			}
		}
		return nil
	})
	for i, a := range r.addrs {
		t.Logf("%s: goroutines %.0f -> %.0f, heap in use %.1f -> %.1f MiB, objects %.0f -> %.0f (after a forced GC: %v), CPU %.0f s; server closes as slow consumer (4008): %.0f",
			a, base[i].goroutines, after[i].goroutines, base[i].heap/(1<<20), after[i].heap/(1<<20),
			base[i].objects, after[i].objects, after[i].gc,
			after[i].cpu-base[i].cpu, scrapeLabeled(t, a, "tickwire_publisher_closes_total", `reason="slow_consumer"`))
	}
	if settled != nil {
		t.Errorf("not back near the baseline within %v: %v", soakSettleWait, settled)
	}
}

// logFigures logs what the clients did and saw.
func (r *soakRun) logFigures(t *testing.T, dur time.Duration) {
	t.Helper()
	s := &r.stats
	t.Logf("clients %d (%d vanished), connects %d, resumes %d (%d channels with since), subscribes %d, unsubscribes %d, pings %d",
		s.clients.Load(), s.vanished.Load(), s.connects.Load(), s.resumes.Load(), s.sinceChannels.Load(),
		s.subscribes.Load(), s.unsubscribes.Load(), s.pings.Load())
	t.Logf("stalls %d; after a stall: dropped without close frame %d; 4008 close frames seen %d in all; closes: polite %d, abrupt %d",
		s.stalls.Load(), s.drops.Load(), s.closes4008.Load(), s.polite.Load(), s.abrupt.Load())
	t.Logf("closed as slow (4008 or dropped) while reading %d (e.g. %q); ended by a failed write %d; dial retries %d; longest freeze of this process %v",
		s.whileReading.Load(), r.examples, s.writeEnds.Load(), s.dialRetries.Load(), time.Duration(r.freeze.Load()).Round(time.Millisecond))
	t.Logf("events received %d (%.0f/s), snapshots %d", s.events.Load(), float64(s.events.Load())/dur.Seconds(), s.snapshots.Load())
}

// soakFigures is what a publisher's /metrics says of its resources.
type soakFigures struct {
	goroutines, heap, objects, cpu float64
	gc                             bool // the heap was read just after a forced GC
}

// soakMeasure reads the figures of each replica, the heap just after a
// forced GC when the replica's pprof address answers.
func soakMeasure(t *testing.T, r *soakRun) []soakFigures {
	t.Helper()
	out := make([]soakFigures, len(r.addrs))
	for i, a := range r.addrs {
		out[i].gc = soakGC(r.dbgs[i]) == nil
		out[i].heap = scrape(t, a, "go_memstats_heap_inuse_bytes")
		out[i].objects = scrape(t, a, "go_memstats_heap_objects")
		out[i].goroutines = scrape(t, a, "go_goroutines")
		out[i].cpu = scrape(t, a, "process_cpu_seconds_total")
	}
	return out
}

// soakGC makes a replica collect its garbage: pprof's heap profile with
// gc=1 runs a GC first. Twice, as sync.Pool keeps its objects for one GC.
func soakGC(dbg string) error {
	for range 2 {
		resp, err := http.Get("http://" + dbg + "/debug/pprof/heap?gc=1")
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", dbg, resp.Status)
		}
	}
	return nil
}

// soakCPU returns the CPU time this test process has used.
func soakCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// soakWarmUp connects a few clients to each replica, lets them subscribe
// and resume, and waits until they are gone, so that the baseline includes
// what the first connections allocate once (pools, HTTP server state).
func soakWarmUp(t *testing.T, r *soakRun) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := r.newClient(fmt.Sprintf("warm-%d", i), false)
			c.run(ctx)
		}()
	}
	wg.Wait()
	if err := r.failure(); err != "" {
		t.Fatalf("warm-up failed: %s", err)
	}
	r.stats = soakStats{}
	soakPoll(t, soakSettleWait, func() error {
		for _, a := range r.addrs {
			if n := scrape(t, a, "tickwire_publisher_connections"); n != 0 {
				return fmt.Errorf("%s counts %v connections after the warm-up", a, n)
			}
		}
		return nil
	})
	time.Sleep(2 * time.Second) // let timers of the closed connections run out
}

// soakProgress logs the state every 15 s until ctx ends.
func soakProgress(t *testing.T, ctx context.Context, r *soakRun, start time.Time) {
	t.Helper()
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-r.procs[0].done:
		case <-r.procs[1].done:
		}
		for _, p := range r.procs {
			select {
			case <-p.done:
				t.Fatalf("%s exited during the soak (%v): see its log below; client failures so far:\n%s", p.name, p.err, r.failure())
			default:
			}
		}
		var conns []string
		for _, a := range r.addrs {
			conns = append(conns, fmt.Sprintf("%.0f/%.0f", scrape(t, a, "tickwire_publisher_connections"), scrape(t, a, "go_goroutines")))
		}
		s := &r.stats
		t.Logf("%4.0fs: connections/goroutines per replica %s; connects %d, resumes %d, events %d, stalls %d, 4008 %d, drops %d, failures %d",
			time.Since(start).Seconds(), strings.Join(conns, " "), s.connects.Load(), s.resumes.Load(), s.events.Load(),
			s.stalls.Load(), s.closes4008.Load(), s.drops.Load(), r.failures())
	}
}

// soakCheckTapes compares every tracked tape with the channel's history.
func soakCheckTapes(t *testing.T, srv *redistest.Server, r *soakRun, end time.Time) {
	t.Helper()
	ch, err := event.ParseChannel(soakTapeCh)
	if err != nil {
		t.Fatal(err)
	}
	key := streams.Layout{Prefix: soakPrefix, Shards: 1}.History(ch)
	rdb := srv.Client()
	total := 0
	for _, c := range r.tracked {
		tp := c.tape
		total += len(tp)
		if len(tp) < 50 {
			t.Errorf("%s: only %d events of %s on its tape", c.name, len(tp), soakTapeCh)
			continue
		}
		lastID, _ := event.ParseID(tp[len(tp)-1])
		if behind := end.Sub(time.UnixMilli(int64(lastID.Ms))); behind > time.Minute {
			t.Errorf("%s: its tape ends %v before the soak's end: stuck?", c.name, behind.Round(time.Second))
		}
		msgs, err := rdb.XRange(ctxT(t, 30*time.Second), key, tp[0], tp[len(tp)-1]).Result()
		if err != nil {
			t.Fatalf("xrange %s: %v", key, err)
		}
		want := make([]string, len(msgs))
		for i, m := range msgs {
			want[i] = m.ID
		}
		if slices.Equal(tp, want) {
			continue
		}
		i := 0
		for i < len(tp) && i < len(want) && tp[i] == want[i] {
			i++
		}
		got := func(j int) string {
			if j < len(tp) {
				return tp[j]
			}
			return "(end)"
		}
		wnt := "(end)"
		if i < len(want) {
			wnt = want[i]
		}
		prev := "(start)"
		if i > 0 {
			prev = tp[i-1]
		}
		missing := 0
		for j := i; j < len(want) && tape.Less(want[j], got(i)); j++ {
			missing++
		}
		t.Errorf("%s: tape of %s differs from its history (%d vs %d ids): after %s (#%d) it has %s, history has %s (%d missing before it)\nwhat the client did around there:\n%s",
			c.name, soakTapeCh, len(tp), len(want), prev, i, got(i), wnt, missing, c.actionsAround(i))
	}
	t.Logf("tracked tapes: %d clients, %d events of %s in all", len(r.tracked), total, soakTapeCh)
}

// soakPoll calls check until it returns nil, at most wait; then fails t.
func soakPoll(t *testing.T, wait time.Duration, check func() error) {
	t.Helper()
	if err := soakPollErr(wait, check); err != nil {
		t.Fatalf("not within %v: %v", wait, err)
	}
}

// soakPollErr calls check every 250 ms until it returns nil, at most wait,
// and returns its last error.
func soakPollErr(wait time.Duration, check func() error) error {
	deadline := time.Now().Add(wait)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// watchFreezes records the longest time a 100 ms tick came late, until
// ctx ends.
func (r *soakRun) watchFreezes(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			now := time.Now()
			if late := now.Sub(last) - 100*time.Millisecond; late > time.Duration(r.freeze.Load()) {
				r.freeze.Store(int64(late))
			}
			last = now
		}
	}
}

// soakStats are the run's counters.
type soakStats struct {
	clients, vanished, connects, resumes, sinceChannels  atomic.Int64
	subscribes, unsubscribes, pings, stalls, dialRetries atomic.Int64
	whileReading, writeEnds                              atomic.Int64
	closes4008, drops, polite, abrupt                    atomic.Int64
	events, snapshots                                    atomic.Int64
}

// soakRun is the shared state of one soak.
type soakRun struct {
	procs []*proc  // the publisher replicas
	addrs []string // their addresses
	dbgs  []string // their pprof addresses
	seed  uint64
	stats soakStats
	gen   atomic.Uint64 // seeds clients
	// freeze is the longest a 100 ms ticker of this process was late: how
	// much the machine starved the test.
	freeze atomic.Int64

	mu       sync.Mutex
	errs     []string
	nerrs    int
	examples []string
	tracked  []*simClient
}

// example keeps a few notable but tolerated happenings for the log.
func (r *soakRun) example(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.examples) < 5 {
		r.examples = append(r.examples, s)
	}
}

// fail records a failure seen by a client goroutine; the test reports them
// at its end (t.Fatal must not be called off the test's goroutine).
func (r *soakRun) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nerrs++
	if len(r.errs) < 40 {
		r.errs = append(r.errs, fmt.Sprintf(format, args...))
	}
}

func (r *soakRun) failures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nerrs
}

func (r *soakRun) failure() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errs, "\n")
}

func (r *soakRun) report(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.nerrs == 0 {
		return
	}
	t.Errorf("%d protocol failures seen by clients (first %d):\n%s", r.nerrs, len(r.errs), strings.Join(r.errs, "\n"))
}

// slot runs clients one after another until ctx ends: each lives for a
// number of connections and vanishes, and a new identity takes its place.
// A tracked slot runs one client for the whole soak.
func (r *soakRun) slot(ctx context.Context, i int, tracked bool) {
	if tracked {
		c := r.newClient(fmt.Sprintf("tracked-%d", i), true)
		r.mu.Lock()
		r.tracked = append(r.tracked, c)
		r.mu.Unlock()
		c.run(ctx)
		return
	}
	rng := rand.New(rand.NewPCG(r.seed, uint64(i)))
	for gen := 0; gen < soakMaxGenerations && ctx.Err() == nil; gen++ {
		r.newClient(fmt.Sprintf("client-%d-%d", i, gen), false).run(ctx)
		if !sleepCtx(ctx, randDur(rng, 0, 2*time.Second)) {
			return
		}
	}
}

// simClient is one simulated user across its connections. Only its own
// goroutine touches it, until the soak's end.
type simClient struct {
	r       *soakRun
	name    string
	rng     *rand.Rand
	track   bool
	subs    map[string]bool   // channels wanted, concrete and KIND:*
	last    map[string]string // newest id seen per concrete channel, across connections
	tape    []string          // tracked: ids of soakTapeCh, across connections
	tapeID  event.ID
	actions []soakAction // tracked: what it did, to explain a broken tape
	nconn   int
	// fruitless counts connections in a row closed while reading without
	// an event received.
	fruitless int
}

type soakAction struct {
	at   time.Time
	tape int // tape length then
	what string
}

func (r *soakRun) newClient(name string, track bool) *simClient {
	r.stats.clients.Add(1)
	return &simClient{
		r: r, name: name, track: track,
		rng:  rand.New(rand.NewPCG(r.seed, 1<<32+r.gen.Add(1))),
		subs: make(map[string]bool), last: make(map[string]string),
	}
}

func (c *simClient) note(format string, args ...any) {
	if c.track {
		c.actions = append(c.actions, soakAction{time.Now(), len(c.tape), fmt.Sprintf(format, args...)})
	}
}

// actionsAround lists the actions taken while the tape was near position i.
func (c *simClient) actionsAround(i int) string {
	var b strings.Builder
	lo := sort.Search(len(c.actions), func(k int) bool { return c.actions[k].tape >= i-200 })
	n := 0
	for _, a := range c.actions[lo:] {
		if a.tape > i+5 || n >= 30 {
			break
		}
		fmt.Fprintf(&b, "  %s tape=%d %s\n", a.at.Format("15:04:05.000"), a.tape, a.what)
		n++
	}
	return b.String()
}

// run connects, acts and reconnects until ctx ends or the client vanishes.
func (c *simClient) run(ctx context.Context) {
	for n := 0; n < soakMaxSessions && ctx.Err() == nil; n++ {
		if vanish := c.session(ctx); vanish {
			c.r.stats.vanished.Add(1)
			return
		}
		if !sleepCtx(ctx, randDur(c.rng, 0, 1500*time.Millisecond)) {
			return
		}
	}
}

// randomChannel picks a channel of the collector's symbols, or a wildcard.
// Bars and signals carry events when the collector derives them from the
// trades (COLLECTOR_BARS, COLLECTOR_SIGNALS), and are quiet otherwise.
func (c *simClient) randomChannel() string {
	// Wildcards are heavy (quote:* is 60% of all events); tracked clients
	// take trade:* more often, as it overlaps their tape's channel.
	switch p := c.rng.IntN(100); {
	case c.track && p < 15:
		return "trade:*"
	case p < 5:
		return []string{"trade:*", "quote:*", "bar:*", "signal:*"}[c.rng.IntN(4)]
	}
	kind := "trade:"
	switch p := c.rng.IntN(100); {
	case p < 40:
		kind = "quote:"
	case p < 50:
		kind = "bar:"
	case p < 55:
		kind = "signal:"
	}
	syms := strings.Split(soakSymbols, ",")
	return kind + syms[c.rng.IntN(len(syms))]
}

// soakMsg is what a connection's reader hands its client: a frame or the
// error that ended the connection.
type soakMsg struct {
	f   soakFrame
	err error
	bad bool // err is a frame that is not JSON
}

type soakFrame struct {
	Type      string          `json:"type"`
	ID        string          `json:"id"`
	Code      string          `json:"code"`
	Message   string          `json:"message"`
	Reason    string          `json:"reason"`
	Replica   string          `json:"replica"`
	Channels  []string        `json:"channels"`
	Recovered map[string]bool `json:"recovered"`
	Events    []struct {
		Ch string `json:"ch"`
		ID string `json:"id"`
	} `json:"events"`
}

// session is one connection of a client.
type session struct {
	c        *simClient
	ws       *websocket.Conn
	replica  string
	frames   chan soakMsg
	done     chan struct{} // closed when the session ends: the reader stops handing frames
	readDone chan struct{}

	connLast map[string]event.ID          // per channel: newest id on this connection, or the since floor
	pending  map[string]map[string]string // subscribe id -> its since
	leaving  map[string]bool              // unsubscribe sent, not yet acknowledged
	small    bool                         // small TCP window: stalls make it a slow consumer
	stalled  bool
	events   int
	nextID   int
	resume   string // the first subscribe, for messages
}

// session runs one connection: subscribe (resuming what the client had),
// act at random, and end by closing, politely or not, or by vanishing.
func (c *simClient) session(ctx context.Context) (vanish bool) {
	s := c.open(ctx)
	if s == nil {
		return false
	}
	defer s.release()
	if !s.resumeAll() {
		return false
	}
	endAt := time.Now().Add(randDur(c.rng, soakSessionMin, soakSessionMax))
	act := time.NewTimer(randDur(c.rng, 200*time.Millisecond, soakActEvery))
	defer act.Stop()
	for {
		select {
		case <-ctx.Done():
			s.finish(c.rng.IntN(2) == 0)
			return false
		case m := <-s.frames:
			if !s.handle(m) {
				return false
			}
		case <-act.C:
			if time.Now().After(endAt) {
				vanish = !c.track && c.rng.IntN(100) < 15
				s.finish(c.rng.IntN(2) == 0)
				return vanish
			}
			if !s.act(ctx) {
				return false
			}
			act.Reset(randDur(c.rng, 200*time.Millisecond, soakActEvery))
		}
	}
}

// open connects to a random replica and waits for the welcome; nil if
// that failed (and was recorded) or ctx ended. The caller releases the
// session.
func (c *simClient) open(ctx context.Context) *session {
	r := c.r
	addr := r.addrs[c.rng.IntN(len(r.addrs))]
	small := c.rng.IntN(3) == 0
	var ws *websocket.Conn
	var err error
	for range soakDialAttempts {
		if ws, err = soakDial(ctx, addr, c.name, small); err == nil || ctx.Err() != nil {
			break
		}
		r.stats.dialRetries.Add(1)
	}
	if err != nil {
		if ctx.Err() == nil {
			r.fail("%s: dial %s failed %d times: %v", c.name, addr, soakDialAttempts, err)
		}
		return nil
	}
	c.nconn++
	r.stats.connects.Add(1)
	s := &session{
		c: c, ws: ws, small: small, frames: make(chan soakMsg), done: make(chan struct{}), readDone: make(chan struct{}),
		connLast: make(map[string]event.ID), pending: make(map[string]map[string]string), leaving: make(map[string]bool),
	}
	go s.read()
	select {
	case m := <-s.frames:
		if m.err == nil && m.f.Type == "welcome" {
			s.replica = m.f.Replica
			return s
		}
		r.fail("%s: first frame from %s: %+v %v, want welcome", c.name, addr, m.f, m.err)
	case <-time.After(soakWelcomeWait):
		r.fail("%s: no welcome from %s within %v", c.name, addr, soakWelcomeWait)
	case <-ctx.Done():
	}
	s.release()
	return nil
}

// resumeAll subscribes to what the client had (or to a first choice),
// with since for each concrete channel it has seen an event of.
func (s *session) resumeAll() bool {
	c, r := s.c, s.c.r
	if len(c.subs) == 0 {
		if c.track {
			c.subs[soakTapeCh] = true
		}
		for range 1 + c.rng.IntN(3) {
			c.subs[c.randomChannel()] = true
		}
	}
	chs := make([]string, 0, len(c.subs))
	since := make(map[string]string)
	for ch := range c.subs {
		chs = append(chs, ch)
		if id, ok := c.last[ch]; ok && !strings.HasSuffix(ch, ":*") {
			since[ch] = id
		}
	}
	sort.Strings(chs)
	if len(since) > 0 {
		r.stats.resumes.Add(1)
		r.stats.sinceChannels.Add(int64(len(since)))
	}
	s.resume = fmt.Sprintf("%v since %v", chs, since)
	return s.subscribe(chs, since, true)
}

// soakDial opens a WebSocket to addr as sub. A small connection advertises
// a small TCP window and segment size: otherwise loopback's autotuned
// buffers take megabytes before the publisher's writer would block, and a
// stalled client would never be a slow consumer within a soak.
func soakDial(ctx context.Context, addr, sub string, small bool) (*websocket.Conn, error) {
	tok, err := auth.Mint(secret, sub, time.Hour, nil, time.Now())
	if err != nil {
		return nil, err
	}
	nd := &net.Dialer{Timeout: soakDialTimeout}
	if small {
		nd.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
				if serr == nil {
					serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 536)
				}
			}); err != nil {
				return err
			}
			return serr
		}
	}
	d := websocket.Dialer{NetDialContext: nd.DialContext, HandshakeTimeout: soakDialTimeout}
	dctx, cancel := context.WithTimeout(ctx, soakDialTimeout)
	defer cancel()
	ws, resp, err := d.DialContext(dctx, "ws://"+addr+"/v1/stream?access_token="+tok, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	return ws, err
}

// read hands frames to the session until the connection ends. While the
// client does not take them (a stall), it does not read the socket.
func (s *session) read() {
	defer close(s.readDone)
	for {
		var m soakMsg
		_, data, err := s.ws.ReadMessage()
		if err != nil {
			m.err = err
		} else if err := json.Unmarshal(data, &m.f); err != nil {
			m.err, m.bad = fmt.Errorf("frame is not JSON: %.200q: %w", data, err), true
		}
		select {
		case s.frames <- m:
		case <-s.done:
			return
		}
		if m.err != nil {
			return
		}
	}
}

// release closes the socket and waits for the reader.
func (s *session) release() {
	close(s.done)
	_ = s.ws.Close()
	<-s.readDone
}

// finish ends the session: politely (close frame, wait for the reply) or
// abruptly (close the TCP connection, no close frame).
func (s *session) finish(polite bool) {
	if !polite {
		s.c.r.stats.abrupt.Add(1)
		s.c.note("abrupt close")
		_ = s.ws.UnderlyingConn().Close()
		return
	}
	s.c.r.stats.polite.Add(1)
	s.c.note("polite close")
	_ = s.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
	wait := time.NewTimer(soakPoliteWait)
	defer wait.Stop()
	for {
		select {
		case m := <-s.frames:
			if m.err != nil {
				return // the reply, or the end
			}
			s.frame(m.f)
		case <-wait.C:
			return
		}
	}
}

// act does one random thing.
func (s *session) act(ctx context.Context) bool {
	c := s.c
	switch p := c.rng.IntN(100); {
	case p < 30 && len(c.subs) < soakMaxChannels:
		var chs []string
		for range 1 + c.rng.IntN(2) {
			ch := c.randomChannel()
			if !c.subs[ch] && !s.leaving[ch] && !slices.Contains(chs, ch) {
				chs = append(chs, ch)
			}
		}
		if len(chs) > 0 {
			return s.subscribe(chs, nil, c.rng.IntN(5) > 0)
		}
	case p < 50:
		var can []string
		for ch := range c.subs {
			if !(c.track && ch == soakTapeCh) {
				can = append(can, ch)
			}
		}
		if len(can) > 0 {
			sort.Strings(can)
			return s.unsubscribe(can[c.rng.IntN(len(can))])
		}
	case p < 58:
		// A small connection often takes the firehose of trades first, so
		// that the stall overflows its queue (trades do not conflate).
		if s.small && !c.subs["trade:*"] && len(c.subs) < soakMaxChannels && c.rng.IntN(2) == 0 {
			if !s.subscribe([]string{"trade:*"}, nil, false) {
				return false
			}
		}
		d := randDur(c.rng, time.Second, soakStallMax)
		if c.rng.IntN(10) == 0 {
			d = randDur(c.rng, 2*soakHeartbeat+time.Second, 2*soakHeartbeat+6*time.Second)
		}
		s.stalled = true
		c.r.stats.stalls.Add(1)
		c.note("stall %v", d.Round(time.Millisecond))
		sleepCtx(ctx, d) // the soak's end is seen by the caller
		return true
	case p < 70:
		c.r.stats.pings.Add(1)
		return s.send(map[string]any{"op": "ping", "id": "p"})
	}
	return true
}

// send writes a client frame. A failed write ends the session: the server
// closed the connection, which the reader will tell (or not, if the close
// is lost in the reset); that is judged there, not here.
func (s *session) send(v any) bool {
	_ = s.ws.SetWriteDeadline(time.Now().Add(soakWriteWait))
	if err := s.ws.WriteJSON(v); err != nil {
		s.c.r.stats.writeEnds.Add(1)
		s.c.note("conn %d %s: write failed: %v", s.c.nconn, s.replica, err)
		s.drainEnd()
		return false
	}
	return true
}

// drainEnd handles what the reader still has, up to the connection's end,
// at most soakPoliteWait.
func (s *session) drainEnd() {
	wait := time.NewTimer(soakPoliteWait)
	defer wait.Stop()
	for {
		select {
		case m := <-s.frames:
			if !s.handle(m) {
				return
			}
		case <-wait.C:
			return
		}
	}
}

func (s *session) subscribe(chs []string, since map[string]string, snapshot bool) bool {
	c := s.c
	s.nextID++
	id := fmt.Sprintf("s%d", s.nextID)
	req := map[string]any{"op": "subscribe", "id": id, "channels": chs}
	if len(since) > 0 {
		req["since"] = since
	}
	if !snapshot {
		req["snapshot"] = false
	}
	for ch, sid := range since {
		parsed, err := event.ParseID(sid)
		if err != nil {
			panic(err)
		}
		// On this connection, nothing at or before since may come.
		if cur, ok := s.connLast[ch]; !ok || cur.Less(parsed) {
			s.connLast[ch] = parsed
		}
	}
	for _, ch := range chs {
		c.subs[ch] = true
	}
	s.pending[id] = since
	c.r.stats.subscribes.Add(1)
	c.note("conn %d %s: subscribe %s %v since %v snapshot %v", c.nconn, s.replica, id, chs, since, snapshot)
	return s.send(req)
}

func (s *session) unsubscribe(ch string) bool {
	c := s.c
	delete(c.subs, ch)
	s.leaving[ch] = true
	c.r.stats.unsubscribes.Add(1)
	c.note("conn %d %s: unsubscribe %s", c.nconn, s.replica, ch)
	return s.send(map[string]any{"op": "unsubscribe", "id": "u:" + ch, "channels": []string{ch}})
}

// handle takes one message from the reader; false when the connection
// has ended.
func (s *session) handle(m soakMsg) bool {
	if m.err == nil {
		s.frame(m.f)
		return true
	}
	c, r := s.c, s.c.r
	var ce *websocket.CloseError
	isClose := errors.As(m.err, &ce) && ce.Code != websocket.CloseAbnormalClosure
	switch {
	case m.bad:
		r.fail("%s on %s: %v", c.name, s.replica, m.err)
	case isClose && ce.Code == 4008:
		r.stats.closes4008.Add(1)
		c.note("conn %d %s: closed 4008", c.nconn, s.replica)
		if !s.stalled {
			s.closedWhileReading(m.err)
		}
	case isClose:
		r.fail("%s on %s: closed %d %q, want only 4008 in a soak", c.name, s.replica, ce.Code, ce.Text)
	case s.stalled:
		r.stats.drops.Add(1)
		c.note("conn %d %s: dropped: %v", c.nconn, s.replica, m.err)
	default:
		s.closedWhileReading(m.err)
	}
	return false
}

// closedWhileReading judges a connection closed as slow (4008, or dropped)
// though the client never stopped reading. On a loaded machine a replica
// or this process may starve for seconds, and a queue of soakQueueEvents
// overflows meanwhile: that is the protocol working. But a client that is
// closed like that soakLivelock times in a row without receiving a single
// event between can never resume.
func (s *session) closedWhileReading(err error) {
	c, r := s.c, s.c.r
	r.stats.whileReading.Add(1)
	c.note("conn %d %s: closed while reading: %v", c.nconn, s.replica, err)
	r.example(fmt.Sprintf("%s on %s: %v after %d events; the connection began with subscribe %s", c.name, s.replica, err, s.events, s.resume))
	c.fruitless++ // reset by any event received
	if c.fruitless == soakLivelock {
		r.fail("%s: %d connections in a row closed as slow consumers though it kept reading, without one event: its resume cannot succeed; the last began with subscribe %s",
			c.name, soakLivelock, s.resume)
	}
}

// frame checks one server frame and records its events.
func (s *session) frame(f soakFrame) {
	c, r := s.c, s.c.r
	switch f.Type {
	case "subscribed":
		since, ok := s.pending[f.ID]
		if !ok {
			r.fail("%s on %s: subscribed %+v answers no subscribe", c.name, s.replica, f)
			return
		}
		delete(s.pending, f.ID)
		for ch := range since {
			if !f.Recovered[ch] {
				r.fail("%s on %s: subscribed %+v: %s not recovered though its history is never trimmed in the soak", c.name, s.replica, f, ch)
			}
		}
	case "unsubscribed":
		for _, ch := range f.Channels {
			delete(s.leaving, ch)
		}
	case "pong":
	case "snapshot", "events":
		if f.Type == "snapshot" {
			r.stats.snapshots.Add(1)
		}
		r.stats.events.Add(int64(len(f.Events)))
		s.events += len(f.Events)
		if len(f.Events) > 0 {
			c.fruitless = 0
		}
		for _, e := range f.Events {
			s.event(f.Type, e.Ch, e.ID)
		}
	default: // gap, error, anything else
		r.fail("%s on %s: unexpected %+v", c.name, s.replica, f)
	}
}

func (s *session) event(typ, ch, idStr string) {
	c, r := s.c, s.c.r
	id, err := event.ParseID(idStr)
	if err != nil {
		r.fail("%s on %s: %s event %s %q: %v", c.name, s.replica, typ, ch, idStr, err)
		return
	}
	kind, _, _ := strings.Cut(ch, ":")
	if !c.subs[ch] && !s.leaving[ch] && !c.subs[kind+":*"] && !s.leaving[kind+":*"] {
		r.fail("%s on %s: %s event %s %s of a channel it is not subscribed to (subscriptions %v)", c.name, s.replica, typ, ch, idStr, c.subs)
	}
	if prev, ok := s.connLast[ch]; ok && !prev.Less(id) {
		r.fail("%s on %s: %s event %s %s after %s: ids must grow, never repeat", c.name, s.replica, typ, ch, idStr, prev)
		return
	}
	s.connLast[ch] = id
	c.last[ch] = idStr
	if c.track && ch == soakTapeCh {
		if len(c.tape) > 0 && !c.tapeID.Less(id) {
			r.fail("%s: tape of %s: %s after %s", c.name, ch, idStr, c.tapeID)
			return
		}
		c.tape = append(c.tape, idStr)
		c.tapeID = id
	}
}

// randDur is uniform in [lo, hi).
func randDur(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// sleepCtx sleeps d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// scrapeLabeled returns the value of the series of a metric whose labels
// contain label (e.g. `reason="slow_consumer"`), 0 if there is none.
func scrapeLabeled(t *testing.T, addr, name, label string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name+"{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok || !strings.Contains(labels, label) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	return 0
}
