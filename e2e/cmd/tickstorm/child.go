package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickwire/tickwire/shared/auth"
)

// result is what a child reports to the parent, as one JSON line.
type result struct {
	Connected int64  `json:"connected"`
	Failed    int64  `json:"failed"`
	FirstErr  string `json:"first_err,omitempty"`
	StormEnd  int64  `json:"storm_end"` // Unix ns of the last subscribed client
	// Ramp counts the clients subscribed in each stormBin since the start.
	Ramp    []int64       `json:"ramp"`
	Events  int64         `json:"events"`
	Frames  int64         `json:"frames"`
	Seconds float64       `json:"seconds"`
	Buckets map[int]int64 `json:"buckets"` // latency in units of bucketUnit
	Worst   time.Duration `json:"worst"`
	Pid     int           `json:"pid"`
}

const bucketUnit = 100 * time.Microsecond

// stormBin is the resolution of the storm's ramp.
const stormBin = 100 * time.Millisecond

// counters are shared by one child's clients.
type counters struct {
	connected, failed, events, frames atomic.Int64
	stormEnd                          atomic.Int64
	t0                                time.Time
	ramp                              []atomic.Int64 // per stormBin since t0; the last bin takes the rest
	measuring                         atomic.Bool
	mu                                sync.Mutex
	buckets                           map[int]int64
	worst                             time.Duration
	firstErr                          string
}

func (c *counters) fail(err error) {
	c.failed.Add(1)
	c.mu.Lock()
	if c.firstErr == "" {
		c.firstErr = err.Error()
	}
	c.mu.Unlock()
}

// subscribedAt counts a client subscribed at t in the storm's ramp.
func (c *counters) subscribedAt(t time.Time) {
	c.ramp[min(max(0, int(t.Sub(c.t0)/stormBin)), len(c.ramp)-1)].Add(1)
}

func (c *counters) rampCounts() []int64 {
	out := make([]int64, len(c.ramp))
	for i := range c.ramp {
		out[i] = c.ramp[i].Load()
	}
	return out
}

func (c *counters) record(lat []time.Duration) {
	c.mu.Lock()
	for _, l := range lat {
		c.worst = max(c.worst, l)
		c.buckets[max(0, int(l/bucketUnit))]++
	}
	c.mu.Unlock()
}

// runChild runs this child's share of the clients: the storm from o.t0,
// then the measurement window; it prints its result and holds the
// connections until its stdin closes (the parent reads memory meanwhile).
func runChild(ctx context.Context, o options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // the parent closes our stdin when it is done with us
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	t0 := time.Unix(0, o.t0)
	c := &counters{buckets: map[int]int64{}, t0: t0, ramp: make([]atomic.Int64, int(o.storm/stormBin)+1)}
	var wg sync.WaitGroup
	defer wg.Wait()
	// Tokens are minted before the storm: the storm measures the server.
	toks := make([]string, o.clients)
	for k := range toks {
		tok, err := auth.Mint(o.secret, "storm-"+strconv.Itoa(o.first+k), 24*time.Hour, nil, time.Now())
		if err != nil {
			return fmt.Errorf("mint: %w", err)
		}
		toks[k] = tok
	}
	sleep(ctx, time.Until(t0))
	if o.cpuProf != "" {
		stop, err := profileCPU(fmt.Sprintf("%s.%d", o.cpuProf, o.child))
		if err != nil {
			return err
		}
		time.AfterFunc(o.storm, stop)
	}
	sem := make(chan struct{}, o.inflight)
	dialers := newDialers(o)
	stormCtx, stormCancel := context.WithDeadline(ctx, t0.Add(o.storm))
	defer stormCancel()
	for i := o.first; i < o.first+o.clients && ctx.Err() == nil; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws, err := connect(stormCtx, o, dialers[i%len(dialers)], i, toks[i-o.first], c)
			<-sem
			if err != nil {
				c.fail(err)
				return
			}
			read(ctx, ws, c)
		}()
	}
	measureAt := t0.Add(o.storm + o.warmup)
	sleep(ctx, time.Until(measureAt))
	c.measuring.Store(true)
	ev0, fr0, start := c.events.Load(), c.frames.Load(), time.Now()
	sleep(ctx, o.duration)
	c.measuring.Store(false)
	r := result{Connected: c.connected.Load(), Failed: c.failed.Load(), StormEnd: c.stormEnd.Load(), Ramp: c.rampCounts(),
		Events: c.events.Load() - ev0, Frames: c.frames.Load() - fr0, Seconds: time.Since(start).Seconds(), Pid: os.Getpid()}
	c.mu.Lock()
	r.Buckets, r.Worst, r.FirstErr = c.buckets, c.worst, c.firstErr
	err := json.NewEncoder(os.Stdout).Encode(r)
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	<-ctx.Done()
	return nil
}

// newDialers returns one dialer per loopback source address (one in all
// when srcs is 0). A websocket.Dialer is safe for concurrent use, so the
// clients share them rather than build one each.
func newDialers(o options) []*websocket.Dialer {
	ds := make([]*websocket.Dialer, max(1, o.srcs))
	for k := range ds {
		nd := &net.Dialer{Timeout: o.storm}
		if o.srcs > 0 { // 127.0.0.2 .. 127.0.0.(srcs+1): loopback only
			nd.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+k))}
		}
		// The write buffer comes from a pool while a frame is written: a
		// held client writes nothing after its subscribe.
		ds[k] = &websocket.Dialer{NetDialContext: nd.DialContext, HandshakeTimeout: o.storm,
			ReadBufferSize: 2048, WriteBufferSize: 512, WriteBufferPool: &sync.Pool{}}
	}
	return ds
}

// connect dials, reads the welcome, subscribes and waits for subscribed.
func connect(ctx context.Context, o options, d *websocket.Dialer, i int, tok string, c *counters) (*websocket.Conn, error) {
	ws, _, err := d.DialContext(ctx, o.urls[i%len(o.urls)]+"?access_token="+tok, nil)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = ws.SetReadDeadline(dl)
	}
	if _, _, err := ws.ReadMessage(); err != nil {
		_ = ws.Close()
		return nil, fmt.Errorf("welcome: %w", err)
	}
	chans := make([]string, 0, o.per)
	for k := 0; k < o.per; k++ {
		chans = append(chans, strconv.Quote(o.channels[(i*o.per+k)%len(o.channels)]))
	}
	sub := `{"op":"subscribe","id":"1","snapshot":false,"channels":[` + strings.Join(chans, ",") + `]}`
	if err := ws.WriteMessage(websocket.TextMessage, []byte(sub)); err != nil {
		_ = ws.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			_ = ws.Close()
			return nil, fmt.Errorf("subscribed: %w", err)
		}
		if bytes.HasPrefix(data, []byte(`{"type":"subscribed"`)) {
			break
		}
		if bytes.HasPrefix(data, []byte(`{"type":"error"`)) {
			_ = ws.Close()
			return nil, fmt.Errorf("subscribe refused: %s", data)
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	c.connected.Add(1)
	c.subscribedAt(time.Now())
	for now := time.Now().UnixNano(); ; {
		old := c.stormEnd.Load()
		if old >= now || c.stormEnd.CompareAndSwap(old, now) {
			break
		}
	}
	return ws, nil
}

var tsKey = []byte(`"ts":`)

// read counts events and their latency until ctx ends or the server closes.
func read(ctx context.Context, ws *websocket.Conn, c *counters) {
	stop := context.AfterFunc(ctx, func() { _ = ws.Close() })
	defer stop()
	defer ws.Close()
	lat := make([]time.Duration, 0, 64)
	var buf bytes.Buffer // reused: one frame at a time, no allocation per frame
	for {
		data, err := readFrame(ws, &buf)
		if err != nil {
			if ctx.Err() == nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					err = fmt.Errorf("closed by server: %d %s", ce.Code, ce.Text)
				}
				c.fail(fmt.Errorf("after subscribing: %w", err))
			}
			return
		}
		if !c.measuring.Load() || !bytes.HasPrefix(data, []byte(`{"type":"events"`)) {
			continue
		}
		now := time.Now().UnixMicro()
		lat = lat[:0]
		for rest := data; ; {
			i := bytes.Index(rest, tsKey)
			if i < 0 {
				break
			}
			rest = rest[i+len(tsKey):]
			j := bytes.IndexAny(rest, ",}")
			if j < 0 {
				break
			}
			if ts, err := strconv.ParseInt(string(rest[:j]), 10, 64); err == nil {
				lat = append(lat, time.Duration(now-ts*1000)*time.Microsecond)
			}
		}
		c.events.Add(int64(len(lat)))
		c.frames.Add(1)
		c.record(lat)
	}
}

// readFrame reads the next message into buf, which it reuses: the bytes
// returned are valid until the next call.
func readFrame(ws *websocket.Conn, buf *bytes.Buffer) ([]byte, error) {
	_, r, err := ws.NextReader()
	if err != nil {
		return nil, err
	}
	buf.Reset()
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// profileCPU starts a CPU profile into file; stop ends it.
func profileCPU(file string) (stop func(), err error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
