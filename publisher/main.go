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

	"github.com/tickwire/tickwire/publisher/internal/server"
	"github.com/tickwire/tickwire/shared/auth"
	"github.com/tickwire/tickwire/shared/config"
	"github.com/tickwire/tickwire/shared/obs"
)

func main() {
	args := os.Args[1:]
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	if code, ok := tool(cmd, args); ok {
		os.Exit(code)
	}
	var err error
	switch cmd {
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err = serve(ctx)
		stop()
	case "token":
		err = token(os.Stdout, args)
	default:
		err = fmt.Errorf("unknown command %q: want serve, token, status, tail, healthcheck, version or --help", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "publisher:", err)
		os.Exit(1)
	}
}

// serve runs a replica until ctx ends, then shuts down in order: drain the
// WebSockets (1001), stop the readers, remove the groups, stop HTTP.
func serve(ctx context.Context) error {
	cfg, err := server.LoadConfig()
	if err != nil {
		return err
	}
	log, err := obs.NewLogger(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	log = log.With("replica", cfg.ReplicaID)
	redis.SetLogger(obs.RedisLogger{Log: log.With("component", "go-redis")}) // process-wide, like the log
	log.Info("starting publisher", "config", fmt.Sprintf("%+v", cfg.Redacted()))

	reg := obs.NewRegistry()
	srv, err := server.New(cfg, log, reg, cfg.NewRedis)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	httpErr := make(chan error, 1)
	go func() { httpErr <- httpSrv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())

	if cfg.DebugAddr != "" {
		dbg := &http.Server{Addr: cfg.DebugAddr, Handler: debugMux(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := dbg.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Warn("debug server", "addr", cfg.DebugAddr, "err", err)
			}
		}()
		defer dbg.Close()
		log.Info("pprof listening", "addr", cfg.DebugAddr)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- srv.Run(runCtx) }()

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-httpErr:
		err = fmt.Errorf("http server: %w", err)
	}
	cancel()
	if rerr := <-runErr; rerr != nil && err == nil {
		err = rerr
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if serr := httpSrv.Shutdown(sctx); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		log.Warn("http shutdown", "err", serr)
	}
	log.Info("stopped")
	return err
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
