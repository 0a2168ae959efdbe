// Command collector reads market events from a source (synthetic, a
// replayed file, or stdin), adds the 1-second bars and signals it derives
// from trades, and writes them in batches to Redis Streams, where
// publishers read them.
// It serves /healthz, /readyz and /metrics on COLLECTOR_ADDR. DESIGN.md
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

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/tickwire/tickwire/collector/internal/batch"
	"github.com/tickwire/tickwire/collector/internal/derive"
	"github.com/tickwire/tickwire/shared/config"
	"github.com/tickwire/tickwire/shared/obs"
	"github.com/tickwire/tickwire/shared/streams"
)

// Bounds of shutdown.
const (
	finalFlushTimeout = 5 * time.Second // writing what is buffered
	shutdownTimeout   = 5 * time.Second // draining HTTP requests
	readHeaderTimeout = 5 * time.Second
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
	log.Info("collector starting", "config", cfg.Redacted())
	redis.SetLogger(obs.RedisLogger{Log: log.With("component", "go-redis")}) // process-wide, like the log itself
	return runConfig(ctx, log, cfg)
}

// runConfig is run after the configuration is read and checked; tests call
// it to run several collectors in one process.
func runConfig(ctx context.Context, log *slog.Logger, cfg Config) error {
	layout, err := cfg.Layout()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
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
	writer := streams.NewWriter(client, layout, streams.WriterConfig{
		FeedLen: cfg.FeedLen, HistoryLen: cfg.HistoryLen, Retention: cfg.Retention,
	})

	leaderMetrics, err := newLeaderMetrics(reg)
	if err != nil {
		return err
	}
	var lead *leader // nil: no lease, always active
	var out batch.Writer = writer
	if cfg.LeaseTTL > 0 {
		lease, err := streams.NewLease(client, layout.Leader(), cfg.holderID(), cfg.LeaseTTL)
		if err != nil {
			return fmt.Errorf("COLLECTOR_LEASE_TTL: %w", err)
		}
		lead = newLeader(lease, writer, log, leaderMetrics)
		out = lead
		log.Info("collector lease", "key", layout.Leader(), "holder", cfg.holderID(), "ttl", cfg.LeaseTTL)
	} else {
		leaderMetrics.Active.Set(1)
	}

	metrics, err := batch.NewMetrics(reg)
	if err != nil {
		return err
	}
	batcher, err := batch.New(out, batch.Config{
		FlushInterval: cfg.FlushInterval,
		MaxBatch:      cfg.MaxBatch,
		Buffer:        cfg.Buffer,
		FinalFlush:    finalFlushTimeout,
		Ping:          func(ctx context.Context) error { return client.Ping(ctx).Err() },
	}, log, metrics)
	if err != nil {
		return fmt.Errorf("batcher: %w", err)
	}
	stage, err := derive.New(cfg.deriveConfig(), batcher.Add, log, reg)
	if err != nil {
		return fmt.Errorf("derive: %w", err)
	}
	src, err := newSource(cfg, batcher, log, reg)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("COLLECTOR_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	obs.Mount(mux, reg, batcher.Ready)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout}
	log.Info("collector running", "addr", ln.Addr().String(), "source", cfg.Source)

	if lead != nil {
		lead.Start(ctx)
	}
	g, gctx := errgroup.WithContext(ctx)
	pumped := make(chan struct{})
	g.Go(func() error {
		defer close(pumped)
		return pump(gctx, src, stage, batcher)
	})
	g.Go(func() error { return serve(srv, ln, pumped) })
	if lead != nil {
		// Renews until the final flush is done, then releases the lease.
		g.Go(func() error { return lead.Run(gctx, pumped) })
	}
	if err := g.Wait(); err != nil {
		return err // main logs it
	}
	log.Info("collector stopped")
	return nil
}
