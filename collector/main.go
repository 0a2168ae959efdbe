// Command collector reads market events from a source (synthetic, a
// replayed file, or stdin), adds the 1-second bars and signals it derives
// from trades, and writes them in batches to Redis Streams, where
// publishers read them.
// It serves /healthz, /readyz and /metrics on COLLECTOR_ADDR. docs/design.md
// describes the layout it writes and the variables it reads.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/tickwire/tickwire/collector/internal/batch"
	"github.com/tickwire/tickwire/collector/internal/derive"
	"github.com/tickwire/tickwire/collector/internal/lease"
	"github.com/tickwire/tickwire/collector/internal/pipeline"
	"github.com/tickwire/tickwire/shared/config"
	"github.com/tickwire/tickwire/shared/obs"
	"github.com/tickwire/tickwire/shared/streams"
)

// Bounds of shutdown.
const (
	finalFlushTimeout = 5 * time.Second // writing what is buffered
	shutdownTimeout   = 5 * time.Second // draining HTTP requests
)

func main() {
	if code, ok := tool(os.Args[1:]); ok { // --help, version, healthcheck (cli.go)
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log, err := newLogger()
	if err != nil {
		fmt.Fprintln(os.Stderr, "collector:", err)
		os.Exit(1)
	}
	if err := run(ctx, log); err != nil {
		log.Error("collector failed", "err", err)
		stop()
		os.Exit(1)
	}
}

// newLogger builds the process's logger from LOG_LEVEL and LOG_FORMAT, so
// that even an error in the rest of the configuration is logged as asked.
func newLogger() (*slog.Logger, error) {
	var c config.Common
	if err := config.Load(&c); err != nil {
		return nil, err
	}
	return obs.NewLogger(os.Stderr, c.LogLevel, c.LogFormat)
}

// run wires the collector and runs it until ctx ends or a finite source's
// input does.
func run(ctx context.Context, log *slog.Logger) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log.Info("collector starting", obs.ConfigAttr(cfg.Redacted()))
	redis.SetLogger(obs.RedisLogger{Log: log.With("component", "go-redis")}) // process-wide, like the log itself
	return runConfig(ctx, log, cfg)
}

// runConfig is run after the configuration is read and checked; tests call
// it to run several collectors in one process. It wires the parts, runs
// them in an errgroup and stops them in order: the source, then the final
// flush (still under the lease), then the lease is released and HTTP shut
// down, and Redis closes last.
func runConfig(ctx context.Context, log *slog.Logger, cfg Config) error {
	reg := obs.NewRegistry()
	client, err := cfg.NewRedis(config.ClientOptions{Name: "tickwire-collector", MaxRetries: -1})
	if err != nil {
		return fmt.Errorf("redis client: %w", err)
	}
	defer func() { // deferred first, so Redis closes last
		if err := client.Close(); err != nil {
			log.Warn("close redis client", "err", err)
		}
	}()
	layout, _ := cfg.Layout() // checked by Validate
	p, err := buildParts(cfg, client, layout, log, reg)
	if err != nil {
		return err
	}
	pipe, batcher, keeper := p.pipe, p.batcher, p.keeper

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("COLLECTOR_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	obs.Mount(mux, reg, batcher.Ready)
	srv := obs.NewServer(mux, log, obs.ServerLimits{})
	log.Info("collector running", "addr", ln.Addr().String(), "source", cfg.Source)

	if keeper != nil {
		keeper.Start(ctx) // the first batch then finds the lease state known
	}
	g, gctx := errgroup.WithContext(ctx)
	// afterPipe ends once the pipeline has made its final flush: the lease
	// is kept, and health served, until then.
	afterPipe, pipeDone := context.WithCancel(context.WithoutCancel(ctx))
	defer pipeDone()
	janitorCtx, stopJanitor := context.WithCancel(gctx)
	defer stopJanitor()
	g.Go(func() error {
		defer pipeDone()
		defer stopJanitor()
		return pipe.Run(gctx)
	})
	if r := cfg.shortestRetention(); r > 0 {
		// History keys expire after the retention; the janitor takes their
		// channels out of the channel sets.
		jan := streams.NewJanitor(client, layout, janitorPeriod(r), log)
		g.Go(func() error { return jan.Run(janitorCtx) })
	}
	g.Go(func() error {
		err := obs.Serve(afterPipe, srv, ln, shutdownTimeout)
		pipeDone() // a failed server stops the rest too
		return err
	})
	if keeper != nil {
		g.Go(func() error { return keeper.Run(afterPipe) })
	}
	if err := g.Wait(); err != nil {
		return err // main logs it
	}
	log.Info("collector stopped")
	return nil
}

// newKeeper returns the lease keeper (nil without a lease,
// COLLECTOR_LEASE_TTL=0) and the writer the batcher writes through: the
// keeper, or w itself when there is no lease.
func newKeeper(cfg Config, client redis.UniversalClient, layout streams.Layout, w *streams.Writer,
	log *slog.Logger, reg prometheus.Registerer) (*lease.Keeper, batch.Writer, error) {
	m, err := lease.NewMetrics(reg)
	if err != nil {
		return nil, nil, err
	}
	if cfg.LeaseTTL == 0 {
		m.Active.Set(1)
		return nil, w, nil
	}
	l, err := streams.NewLease(client, layout.Leader(), cfg.holderID(), cfg.LeaseTTL)
	if err != nil {
		return nil, nil, fmt.Errorf("COLLECTOR_LEASE_TTL: %w", err)
	}
	log.Info("collector lease", "key", layout.Leader(), "holder", cfg.holderID(), "ttl", cfg.LeaseTTL)
	k := lease.New(l, w, log, m)
	return k, k, nil
}

// janitorPeriod is how often the channel sets are swept: a tenth of the
// retention, between 1 s and 10 min.
func janitorPeriod(retention time.Duration) time.Duration {
	return min(max(retention/10, time.Second), 10*time.Minute)
}

// parts are the collector's stages, built but not started.
type parts struct {
	pipe    *pipeline.Pipeline
	batcher *batch.Batcher
	keeper  *lease.Keeper // nil without a lease
}

// buildParts builds the stages from the end of an event's path to its
// start: the writer, the lease keeper in front of it, the batcher, derive,
// and the source.
func buildParts(cfg Config, client redis.UniversalClient, layout streams.Layout, log *slog.Logger, reg *prometheus.Registry) (parts, error) {
	wcfg := cfg.writerConfig()
	if cfg.LeaseTTL > 0 { // the script refuses writes unless we hold the lease
		wcfg.Lease, wcfg.Holder = layout.Leader(), cfg.holderID()
	}
	writer := streams.NewWriter(client, layout, wcfg)
	keeper, out, err := newKeeper(cfg, client, layout, writer, log, reg)
	if err != nil {
		return parts{}, err
	}
	batchMetrics, err := batch.NewMetrics(reg)
	if err != nil {
		return parts{}, err
	}
	batcher, err := batch.New(out, batch.Config{
		FlushInterval: cfg.FlushInterval,
		MaxBatch:      cfg.MaxBatch,
		Buffer:        cfg.Buffer,
		FinalFlush:    finalFlushTimeout,
		Ping:          func(ctx context.Context) error { return client.Ping(ctx).Err() },
	}, log, batchMetrics)
	if err != nil {
		return parts{}, fmt.Errorf("batcher: %w", err)
	}
	stage, err := derive.New(cfg.deriveConfig(), pipeline.Encode(batcher.Add, log), log, reg)
	if err != nil {
		return parts{}, fmt.Errorf("derive: %w", err)
	}
	src, err := newSource(cfg, batcher, log, reg)
	if err != nil {
		return parts{}, err
	}
	return parts{pipe: pipeline.New(src, stage, batcher), batcher: batcher, keeper: keeper}, nil
}
