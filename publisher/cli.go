package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tickwire/tickwire/publisher/internal/server"
	"github.com/tickwire/tickwire/publisher/internal/status"
	"github.com/tickwire/tickwire/publisher/internal/tail"
	"github.com/tickwire/tickwire/shared/cli"
	"github.com/tickwire/tickwire/shared/config"
	"github.com/tickwire/tickwire/shared/event"
)

const synopsis = `publisher: a tickwire publisher replica. It reads the market event streams
from Redis with a consumer group of its own and pushes the events to web users
over WebSocket.

Usage:
  publisher [serve]                 run a replica (the default)
  publisher token --sub NAME [--ttl 1h] [--channels trade:*,quote:AAPL]
                                    print a development HS256 token signed with JWT_SECRET
  publisher status [--json]         the collector, the feeds and every replica, from Redis;
                                    exit 1 when a replica is stalled or down or no collector writes
  publisher tail [--json] [--last N | --since ID] CHANNEL...
                                    print events of CHANNELs (trade:AAPL, quote:*) as they arrive
  publisher healthcheck             exit 0 when the replica at PUBLISHER_ADDR is ready (for images
                                    without curl)
  publisher version                 print the version
  publisher --help                  print this help`

// Exit codes of the tools.
const (
	exitOK      = 0
	exitProblem = 1 // status found a problem; a command failed
	exitUsage   = 2
)

// tool runs the commands other than serve and token. ok is false for
// those, which main runs.
func tool(cmd string, args []string) (code int, ok bool) {
	switch {
	case cli.IsHelp(cmd), cmd == "serve" && len(args) > 0 && cli.IsHelp(args[0]):
		return report(cli.Usage(os.Stdout, synopsis, &server.Config{}, &status.Config{})), true
	case cmd == "version", cmd == "--version":
		return report(cli.Version(os.Stdout, "publisher")), true
	case cmd == "healthcheck":
		var c struct {
			Addr string `envconfig:"PUBLISHER_ADDR" default:":8080"`
		}
		if err := config.Load(&c); err != nil {
			return report(err), true
		}
		return report(cli.Healthcheck(context.Background(), c.Addr)), true
	case cmd == "status":
		return runStatus(args), true
	case cmd == "tail":
		return runTail(args), true
	}
	return 0, false
}

// report prints err, if any, and returns the exit code.
func report(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, tail.ErrUsage):
		fmt.Fprintln(os.Stderr, "publisher:", err)
		return exitUsage
	}
	fmt.Fprintln(os.Stderr, "publisher:", err)
	return exitProblem
}

// runStatus prints the status report; exit 1 when it has problems.
func runStatus(args []string) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return report(err)
	}
	var cfg status.Config
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := withRedis(ctx, &cfg, &cfg.Common, func(ctx context.Context, rc redisUse) (*status.Report, error) {
		return status.Collect(ctx, rc.client, rc.layout, cfg.StallAfter)
	})
	if err != nil {
		return report(err)
	}
	write := rep.WriteText
	if *asJSON {
		write = rep.WriteJSON
	}
	if err := write(os.Stdout); err != nil {
		return report(err)
	}
	if !rep.Healthy() {
		return exitProblem
	}
	return exitOK
}

// runTail follows the channels until Ctrl-C.
func runTail(args []string) int {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	var o tail.Options
	fs.BoolVar(&o.JSON, "json", false, "print each event as the protocol's JSON object")
	fs.IntVar(&o.Last, "last", 0, "first print the last `N` events of the channels")
	fs.StringVar(&o.Since, "since", "", "first print every event after stream `ID` still in the feed")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: publisher tail [--json] [--last N | --since ID] CHANNEL...   (trade:AAPL, quote:*)")
		fs.PrintDefaults()
	}
	if err := parseInterspersed(fs, args); err != nil {
		return report(err)
	}
	for _, name := range fs.Args() {
		ch, err := event.ParseChannel(name)
		if err != nil {
			return report(fmt.Errorf("%w: %v", tail.ErrUsage, err))
		}
		o.Channels = append(o.Channels, ch)
	}
	o.Notes = os.Stderr
	var cfg config.Common
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err := withRedis(ctx, &cfg, &cfg, func(ctx context.Context, rc redisUse) (struct{}, error) {
		return struct{}{}, tail.Run(ctx, rc.client, rc.layout, o, os.Stdout)
	})
	return report(err)
}

// parseInterspersed parses flags before and after the channels, so that
// `tail trade:AAPL --json` works as `tail --json trade:AAPL`.
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(rest) // flags are done; rest are the channels
}
