// Command publisher is a tickwire publisher replica: it reads the market
// event streams from Redis with a consumer group of its own and pushes the
// events to web users over WebSocket.
//
//	publisher [serve]                               run a replica (the default)
//	publisher token --sub NAME [--ttl 1h] [--channels trade:*,quote:AAPL]
//	                                                print a development HS256 token signed with JWT_SECRET
//	publisher status | tail | healthcheck | version | --help   operators' tools (cli.go)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/tickwire/tickwire/publisher/internal/server"
	"github.com/tickwire/tickwire/shared/auth"
	"github.com/tickwire/tickwire/shared/config"
	"github.com/tickwire/tickwire/shared/obs"
)

// httpShutdownTimeout bounds the HTTP server's Shutdown: plain requests
// finishing. WebSockets are drained afterwards, within
// PUBLISHER_DRAIN_TIMEOUT.
const httpShutdownTimeout = 5 * time.Second

func main() {
	args := os.Args[1:]
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	if code, ok := tool(cmd, args); ok {
		os.Exit(code)
	}
	switch cmd {
	case "serve":
		os.Exit(serve())
	case "token":
		if err := token(os.Stdout, args); err != nil {
			fmt.Fprintln(os.Stderr, "publisher:", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintf(os.Stderr, "publisher: unknown command %q: want serve, token, status, tail, healthcheck, version or --help\n", cmd)
		os.Exit(2)
	}
}

// serve builds the logger, runs a replica until SIGINT or SIGTERM, and
// returns the exit code.
func serve() int {
	var common config.Common // LOG_LEVEL and LOG_FORMAT; run reads the rest
	if err := config.Load(&common); err != nil {
		fmt.Fprintln(os.Stderr, "publisher:", err)
		return 1
	}
	log, err := obs.NewLogger(os.Stderr, common.LogLevel, common.LogFormat)
	if err != nil {
		fmt.Fprintln(os.Stderr, "publisher:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log); err != nil {
		log.Error("publisher stopped", "err", err)
		return 1
	}
	return 0
}

// run serves a replica until ctx ends or a part fails, then shuts down in
// order: stop accepting and send 1001 to every WebSocket (the HTTP
// server's Shutdown, with the replica's hook), drain the connections within
// PUBLISHER_DRAIN_TIMEOUT, stop the readers, remove the groups, and close
// Redis last.
func run(ctx context.Context, log *slog.Logger) error {
	cfg, err := server.LoadConfig()
	if err != nil {
		return err
	}
	log = log.With("replica", cfg.ReplicaID)
	redis.SetLogger(obs.RedisLogger{Log: log.With("component", "go-redis")}) // process-wide, like the log
	log.Info("starting publisher", obs.ConfigAttr(cfg.Redacted()))

	srv, err := server.New(cfg, log, obs.NewRegistry(), cfg.NewRedis)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	httpSrv := srv.HTTPServer(slog.NewLogLogger(log.Handler(), slog.LevelDebug))
	log.Info("listening", "addr", ln.Addr().String())

	g, gctx := errgroup.WithContext(ctx)
	// The replica's context ends only once the HTTP server has stopped
	// accepting: its Run then drains, and closes Redis last.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	g.Go(func() error { return srv.Run(runCtx) })
	g.Go(func() error {
		if err := httpSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	if cfg.DebugAddr != "" {
		runDebug(gctx, g, cfg.DebugAddr, log)
	}
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
		defer cancel()
		if err := httpSrv.Shutdown(sctx); err != nil {
			log.Warn("http shutdown incomplete; closing the remaining requests", "err", err)
			_ = httpSrv.Close()
		}
		stopRun()
		return nil
	})
	err = g.Wait()
	log.Info("stopped")
	return err
}

// runDebug serves the runtime profiles on addr in g until ctx ends. A
// debug server that cannot listen is logged, and the replica runs on.
func runDebug(ctx context.Context, g *errgroup.Group, addr string, log *slog.Logger) {
	dbg := &http.Server{Addr: addr, Handler: debugMux(), ReadHeaderTimeout: 5 * time.Second}
	g.Go(func() error {
		log.Info("pprof listening", "addr", addr)
		if err := dbg.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("debug server", "addr", addr, "err", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		return dbg.Close()
	})
}

// debugMux serves the runtime profiles.
func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// token prints a development token signed with JWT_SECRET.
func token(w io.Writer, args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	sub := fs.String("sub", "", "subject (user name); required")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	chans := fs.String("channels", "", "comma list of allowed channel patterns (trade:*,quote:AAPL); empty: all")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sub == "" {
		return errors.New("token: --sub is required")
	}
	var c struct {
		Secret string `envconfig:"JWT_SECRET"`
	}
	if err := config.Load(&c); err != nil {
		return err
	}
	if c.Secret == "" {
		return errors.New("token: set JWT_SECRET to the publisher's HS256 secret")
	}
	var channels []string
	if *chans != "" {
		channels = strings.Split(*chans, ",")
	}
	t, err := auth.Mint(c.Secret, *sub, *ttl, channels, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, t)
	return err
}
