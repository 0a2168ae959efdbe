// Command tickload is tickwire's load tool: it opens many WebSocket clients
// (or Server-Sent Events streams, -sse) against a publisher, subscribes
// them, and reports deliveries per second and the latency from each
// event's time (ts) to its receipt. With -idle it only holds the
// connections and reports the publisher's memory per connection, read
// from its /metrics.
//
//	tickload -url ws://127.0.0.1:8080/v1/stream -secret $JWT_SECRET -clients 1000 -duration 30s
//
// Latency is measured against the client's clock, so run it on the machine
// of the publisher, and read it with the collector's flush interval in mind
// (ts is the event time, before batching).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickwire/tickwire/e2e/internal/benchkit"
	"github.com/tickwire/tickwire/shared/auth"
)

type options struct {
	url      string
	secret   string
	token    string
	clients  int
	channels string
	duration time.Duration
	warmup   time.Duration
	idle     bool
	metrics  string
	gc       string // a URL that runs a GC in the publisher (its pprof heap?gc=1)
	pids     []int  // collector and publisher: their CPU is the server's
	idleSub  bool   // idle clients still subscribe, each to a channel of its own (preset w4)
	redis    string // the server's Redis URL: its CPU over the measurement is reported apart
	sse      bool   // clients read GET /v1/sse (derived from url) instead of a WebSocket
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "ws://127.0.0.1:8080/v1/stream", "publisher WebSocket endpoint")
	flag.StringVar(&o.secret, "secret", os.Getenv("JWT_SECRET"), "HS256 secret to mint tokens with (default $JWT_SECRET)")
	flag.StringVar(&o.token, "token", "", "token to use for every client instead of minting")
	flag.IntVar(&o.clients, "clients", 100, "number of WebSocket clients")
	flag.StringVar(&o.channels, "channels", "trade:*,quote:*", "comma list of channels each client subscribes to")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "how long to measure")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "how long to run before measuring")
	flag.BoolVar(&o.idle, "idle", false, "subscribe to nothing (preset w4: one quiet channel each); report memory per connection from -metrics")
	flag.StringVar(&o.metrics, "metrics", "", "publisher /metrics URL (default: derived from -url)")
	flag.StringVar(&o.gc, "gc", "", "URL that runs a GC in the publisher (e.g. http://127.0.0.1:6060/debug/pprof/heap?gc=1): memory is then also reported after a GC, before and after the connections")
	presetName := flag.String("preset", "", "named workload ("+presetNames()+"): sets -clients, -channels and -idle")
	printRate := flag.Bool("print-rate", false, "print the collector rate (events/s) and symbols -preset assumes, and exit")
	pids := flag.String("pids", "", "comma list of server pids (collector, publisher): report deliveries per server CPU-second")
	flag.BoolVar(&o.sse, "sse", false, "clients read Server-Sent Events (GET /v1/sse, from -url) instead of a WebSocket; with -idle, each subscribes to a quiet channel of its own")
	flag.StringVar(&o.redis, "redis", "", "the server's Redis URL (redis://host:port/db): report Redis CPU per event written over the measurement")
	cpuProfile := flag.String("cpuprofile", "", "write the load tool's own CPU profile to this file")
	flag.Parse()
	if *presetName != "" {
		if err := applyPreset(&o, *presetName); err != nil {
			fmt.Fprintln(os.Stderr, "tickload:", err)
			os.Exit(2)
		}
		if *printRate {
			fmt.Println(presets[strings.ToLower(*presetName)].rate, presetSymbols)
			return
		}
	}
	var err error
	if o.pids, err = parsePids(*pids); err != nil {
		fmt.Fprintln(os.Stderr, "tickload:", err)
		os.Exit(2)
	}
	if o.metrics == "" {
		o.metrics = strings.Replace(strings.Replace(o.url, "ws", "http", 1), "/v1/stream", "/metrics", 1)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "tickload: cpu profile:", err)
			os.Exit(2)
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "tickload:", err)
		os.Exit(1)
	}
}

// stats are shared by all clients; latencies are counted in 100 µs buckets.
type stats struct {
	events    atomic.Int64
	frames    atomic.Int64
	measuring atomic.Bool
	mu        sync.Mutex
	buckets   []int64 // index: latency in units of 100 µs; last bucket: beyond
	worst     time.Duration
}

const bucketUnit = 100 * time.Microsecond

func (s *stats) record(lat []time.Duration) {
	s.mu.Lock()
	for _, l := range lat {
		s.worst = max(s.worst, l)
		i := int(l / bucketUnit)
		if i < 0 {
			i = 0
		}
		if i >= len(s.buckets) {
			i = len(s.buckets) - 1
		}
		s.buckets[i]++
	}
	s.mu.Unlock()
}

func (s *stats) percentile(p float64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var total int64
	for _, n := range s.buckets {
		total += n
	}
	if total == 0 {
		return 0
	}
	want := int64(float64(total) * p)
	var seen int64
	for i, n := range s.buckets {
		seen += n
		if seen > want {
			return time.Duration(i+1) * bucketUnit
		}
	}
	return time.Duration(len(s.buckets)) * bucketUnit
}

func run(ctx context.Context, o options) error {
	benchkit.ForceGC(o.gc)
	memBefore, heapBefore := scrapeMem(o.metrics)
	st := &stats{buckets: make([]int64, 100000)} // up to 10 s
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var connected, failed atomic.Int64
	errs := make(chan error, o.clients)
	for i := 0; i < o.clients; i++ {
		tok := o.token
		if tok == "" {
			var err error
			if tok, err = auth.Mint(o.secret, fmt.Sprintf("load-%d", i%1000000), 24*time.Hour, nil, time.Now()); err != nil {
				return err
			}
		}
		chans := o.channels
		if o.idleSub || (o.idle && o.sse) { // a stream has channels
			chans = fmt.Sprintf("trade:IDLE%d", i) // a quiet channel of its own
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := client(ctx, o, tok, chans, st, &connected); err != nil && ctx.Err() == nil {
				failed.Add(1)
				select {
				case errs <- err:
				default:
				}
			}
		}()
		if i%50 == 49 {
			time.Sleep(5 * time.Millisecond) // do not SYN-flood the accept queue
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for connected.Load()+failed.Load() < int64(o.clients) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Printf("clients connected: %d of %d (failed %d)\n", connected.Load(), o.clients, failed.Load())
	select {
	case err := <-errs:
		fmt.Println("first client error:", err)
	default:
	}
	if o.idle {
		sleep(ctx, o.duration) // hold the connections; profile meanwhile
		memAfter, heapAfter := scrapeMem(o.metrics)
		n := connected.Load()
		if memBefore > 0 && memAfter > 0 && n > 0 {
			fmt.Printf("publisher resident memory: %.1f MiB before, %.1f MiB with %d idle connections: %.1f KiB per connection\n",
				memBefore/(1<<20), memAfter/(1<<20), n, (memAfter-memBefore)/float64(n)/1024)
		}
		if heapBefore > 0 && heapAfter > 0 && n > 0 {
			fmt.Printf("publisher heap in use: %.1f MiB before, %.1f MiB after: %.1f KiB per connection\n",
				heapBefore/(1<<20), heapAfter/(1<<20), (heapAfter-heapBefore)/float64(n)/1024)
		}
		if o.gc != "" {
			benchkit.ForceGC(o.gc)
			memGC, heapGC := scrapeMem(o.metrics)
			if memBefore > 0 && memGC > 0 && n > 0 {
				fmt.Printf("after a GC: resident %.1f KiB, heap in use %.1f KiB per connection\n",
					(memGC-memBefore)/float64(n)/1024, (heapGC-heapBefore)/float64(n)/1024)
			}
		}
		cancel()
		wg.Wait()
		return nil
	}
	sleep(ctx, o.warmup)
	st.measuring.Store(true)
	meter := cpuMeter{pids: o.pids}
	meter.begin()
	rmeter, err := benchkit.NewRedisMeter(ctx, o.redis)
	if err != nil {
		return err
	}
	defer rmeter.Close()
	startEv, startFr, start := st.events.Load(), st.frames.Load(), time.Now()
	sleep(ctx, o.duration)
	ev, fr, el := st.events.Load()-startEv, st.frames.Load()-startFr, time.Since(start)
	cpu, each, _, cpuErr := meter.used()
	rcpu, rcpuErr := rmeter.Used(ctx)
	st.measuring.Store(false)
	cancel()
	wg.Wait()
	fmt.Printf("measured %v: %d events in %d frames to %d clients\n", el.Round(time.Millisecond), ev, fr, connected.Load())
	fmt.Printf("deliveries/s: %.0f   events per frame: %.1f\n", float64(ev)/el.Seconds(), float64(ev)/max(1, float64(fr)))
	switch {
	case cpuErr != nil:
		fmt.Println("server cpu:", cpuErr)
	case len(o.pids) > 0 && cpu > 0:
		fmt.Printf("server cpu: %.2f s over %v (%.0f %% of a core): %.0f deliveries per server CPU-second\n",
			cpu, el.Round(time.Millisecond), 100*cpu/el.Seconds(), float64(ev)/cpu)
		for i, c := range each {
			fmt.Printf("  pid %d: %.2f s (%.1f µs per delivery)\n", o.pids[i], c, 1e6*c/max(1, float64(ev)))
		}
	}
	switch n := connected.Load(); {
	case rcpuErr != nil:
		fmt.Println("redis cpu:", rcpuErr)
	case o.redis != "" && n > 0 && ev > 0:
		// Every client takes every event (presets w1-w3), so the events
		// written are the deliveries over the clients.
		written := float64(ev) / float64(n)
		fmt.Printf("redis cpu: %.2f s over %v (%.1f %% of a core): %.1f µs per event written (%.0f events)\n",
			rcpu, el.Round(time.Millisecond), 100*rcpu/el.Seconds(), 1e6*rcpu/written, written)
	}
	st.mu.Lock()
	worst := st.worst
	st.mu.Unlock()
	fmt.Printf("latency ts->client: p50 %v  p90 %v  p99 %v  p99.9 %v  max %v\n",
		st.percentile(.50), st.percentile(.90), st.percentile(.99), st.percentile(.999), worst.Round(100*time.Microsecond))
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

var tsKey = []byte(`"ts":`)

// client runs one connection until ctx ends.
func client(ctx context.Context, o options, tok, channels string, st *stats, connected *atomic.Int64) error {
	if o.sse {
		return sseClient(ctx, o, tok, channels, st, connected)
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 4096}
	ws, _, err := d.DialContext(ctx, o.url+"?access_token="+tok, nil)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer ws.Close()
	stop := context.AfterFunc(ctx, func() { _ = ws.Close() })
	defer stop()
	if _, _, err := ws.ReadMessage(); err != nil { // welcome
		return fmt.Errorf("welcome: %w", err)
	}
	if !o.idle || o.idleSub {
		chs, _ := json(strings.Split(channels, ","))
		sub := `{"op":"subscribe","snapshot":false,"channels":` + chs + `}`
		if err := ws.WriteMessage(websocket.TextMessage, []byte(sub)); err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
	}
	connected.Add(1)
	lat := make([]time.Duration, 0, 256)
	var buf bytes.Buffer // one frame at a time, reused: reading must not be the load tool's bottleneck
	for {
		_, r, err := ws.NextReader()
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return fmt.Errorf("closed by server: %d %s", ce.Code, ce.Text)
			}
			return err
		}
		lat = st.frame(buf.Bytes(), lat)
	}
}

// frame counts a server frame: an events frame's events and their
// latencies while measuring; other frames not. lat is scratch space.
func (s *stats) frame(data []byte, lat []time.Duration) []time.Duration {
	if !bytes.HasPrefix(data, []byte(`{"type":"events"`)) {
		return lat
	}
	now := time.Now().UnixMicro()
	lat = scanLatencies(data, now, lat[:0])
	if s.measuring.Load() {
		s.events.Add(int64(len(lat)))
		s.frames.Add(1)
		s.record(lat)
	}
	return lat
}

// scanLatencies appends to lat, for every event of an events frame, now
// (µs) minus the event's "ts" (ms).
func scanLatencies(frame []byte, now int64, lat []time.Duration) []time.Duration {
	rest := frame
	for {
		i := bytes.Index(rest, tsKey)
		if i < 0 {
			return lat
		}
		rest = rest[i+len(tsKey):]
		ts, n := leadingInt(rest)
		if n == 0 {
			continue
		}
		rest = rest[n:]
		lat = append(lat, time.Duration(now-ts*1000)*time.Microsecond)
	}
}

// leadingInt parses the decimal digits at the start of b and returns the
// number and how many bytes it took (0: none).
func leadingInt(b []byte) (v int64, n int) {
	for n < len(b) && n < 18 && b[n] >= '0' && b[n] <= '9' {
		v = v*10 + int64(b[n]-'0')
		n++
	}
	return v, n
}

func json(ss []string) (string, error) {
	quoted := make([]string, 0, len(ss))
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			quoted = append(quoted, strconv.Quote(s))
		}
	}
	if len(quoted) == 0 {
		return "", errors.New("no channels")
	}
	return "[" + strings.Join(quoted, ",") + "]", nil
}

// scrapeMem reads process_resident_memory_bytes and
// go_memstats_heap_inuse_bytes from a /metrics page (0 when missing).
func scrapeMem(url string) (rss, heap float64) {
	m, err := benchkit.Scrape(url, "process_resident_memory_bytes", "go_memstats_heap_inuse_bytes")
	if err != nil {
		return 0, 0
	}
	return m["process_resident_memory_bytes"], m["go_memstats_heap_inuse_bytes"]
}
