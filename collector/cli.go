package main

import (
	"context"
	"fmt"
	"os"

	"github.com/tickwire/tickwire/shared/cli"
	"github.com/tickwire/tickwire/shared/config"
)

const synopsis = `collector: reads market events from a source (synthetic, a replayed file, or
stdin), adds the 1-second bars and signals it derives from trades, and writes
them in batches to Redis Streams, where publishers read them. It serves
/healthz, /readyz and /metrics on COLLECTOR_ADDR.

Usage:
  collector               run (configured by the environment below)
  collector healthcheck   exit 0 when the collector at COLLECTOR_ADDR is ready (for images without curl)
  collector version       print the version
  collector --help        print this help`

// tool runs what is not the collector itself: help, version, healthcheck.
// ok is false when there are no arguments, and main runs the collector.
func tool(args []string) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	var err error
	switch {
	case cli.IsHelp(args[0]):
		err = cli.Usage(os.Stdout, synopsis, &Config{})
	case args[0] == "version", args[0] == "--version":
		err = cli.Version(os.Stdout, "collector")
	case args[0] == "healthcheck":
		var c struct {
			Addr string `envconfig:"COLLECTOR_ADDR" default:":9101"`
		}
		if err = config.Load(&c); err == nil {
			err = cli.Healthcheck(context.Background(), c.Addr)
		}
	default:
		fmt.Fprintf(os.Stderr, "collector: unknown argument %q: the collector is configured by the environment (see collector --help)\n", args[0])
		return 2, true
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "collector:", err)
		return 1, true
	}
	return 0, true
}
