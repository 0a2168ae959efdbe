package main

import (
	"errors"
	"flag"
	"os"
	"strings"
	"time"
)

type options struct {
	urls     []string // publisher endpoints; client i uses urls[i%len]
	secret   string
	clients  int
	procs    int
	srcs     int
	channels []string // pool: client i subscribes to per channels from it
	per      int
	inflight int           // dials in progress at once, per child
	storm    time.Duration // connect deadline; the storm must fit in it
	warmup   time.Duration
	duration time.Duration
	metrics  []string // publisher /metrics URLs, summed
	gcURL    []string // URLs to GET to force a GC before reading memory
	cpu      string   // name=pid,pid;name=pid: processes whose CPU is reported
	cpuProf  string   // child k writes its CPU profile of the storm to cpuProf.k
	child    int      // >= 0: this process is child number child
	t0       int64    // child: storm start, Unix ns
	first    int      // child: index of its first client
}

func parseFlags(args []string) (options, error) {
	var o options
	var urls, chans, metrics, gc string
	fs := flag.NewFlagSet("tickstorm", flag.ContinueOnError)
	fs.StringVar(&urls, "url", "ws://127.0.0.1:8080/v1/stream", "comma list of publisher WebSocket endpoints")
	fs.StringVar(&o.secret, "secret", os.Getenv("JWT_SECRET"), "HS256 secret to mint one token per client with (default $JWT_SECRET)")
	fs.IntVar(&o.clients, "clients", 1000, "clients in all")
	fs.IntVar(&o.procs, "procs", 1, "child processes sharing the clients")
	fs.IntVar(&o.srcs, "srcs", 16, "loopback source addresses per child (127.0.0.2 and up); 0: let the kernel pick")
	fs.StringVar(&chans, "channels", "trade:AAPL,quote:AAPL,trade:MSFT,quote:MSFT,trade:NVDA,quote:NVDA,trade:AMZN,quote:AMZN,trade:GOOGL,quote:GOOGL", "channel pool")
	fs.IntVar(&o.per, "per", 3, "channels each client subscribes to, taken in turn from the pool")
	fs.IntVar(&o.inflight, "inflight", 512, "dials in progress at once per child")
	fs.DurationVar(&o.storm, "storm", 10*time.Second, "time allowed for every client to connect and subscribe")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "wait after the storm before measuring")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "measurement window")
	fs.StringVar(&metrics, "metrics", "", "comma list of publisher /metrics URLs (default: derived from -url)")
	fs.StringVar(&gc, "gc", "", "comma list of URLs that force a GC (e.g. http://127.0.0.1:6060/debug/pprof/heap?gc=1)")
	fs.StringVar(&o.cpu, "cpu", "", "CPU to report: name=pid,pid;name=pid")
	fs.StringVar(&o.cpuProf, "cpuprofile", "", "file name prefix: child k writes its CPU profile of the storm to PREFIX.k")
	fs.IntVar(&o.child, "child", -1, "internal: child number")
	fs.Int64Var(&o.t0, "t0", 0, "internal: storm start (Unix ns)")
	fs.IntVar(&o.first, "first", 0, "internal: first client index")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.urls = split(urls)
	o.channels = split(chans)
	o.gcURL = split(gc)
	o.metrics = split(metrics)
	if len(o.metrics) == 0 {
		for _, u := range o.urls {
			u = strings.Replace(strings.Replace(u, "ws", "http", 1), "/v1/stream", "/metrics", 1)
			o.metrics = append(o.metrics, u)
		}
	}
	switch {
	case len(o.urls) == 0:
		return o, errors.New("no -url")
	case o.clients < 1 || o.procs < 1 || o.per < 1 || o.inflight < 1:
		return o, errors.New("-clients, -procs, -per and -inflight must be positive")
	case o.srcs < 0 || o.srcs > 250:
		return o, errors.New("-srcs must be within 0..250")
	case len(o.channels) == 0:
		return o, errors.New("no -channels")
	case o.secret == "":
		return o, errors.New("no -secret and no $JWT_SECRET")
	}
	return o, nil
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
