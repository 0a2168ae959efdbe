// Command tickstorm connects many authenticated WebSocket clients to one or
// more publishers at once (a connection storm), holds them, and reports how
// long the storm took, the deliveries per second and the latency from each
// event's ts to its receipt, the publishers' memory per connection, and the
// CPU that named processes spent.
//
// The clients run in -procs child processes (the same binary, re-executed)
// so that none holds more than its share of file descriptors; each child
// spreads its clients over -srcs loopback source addresses (127.0.0.2 and
// up) so that the ephemeral ports of one source address do not run short.
// The parent only schedules, scrapes and merges.
//
//	tickstorm -url ws://127.0.0.1:8080/v1/stream -secret $JWT_SECRET -clients 15000 -procs 2
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
)

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "tickstorm:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if o.child >= 0 {
		err = runChild(ctx, o)
	} else {
		err = runParent(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tickstorm:", err)
		os.Exit(1)
	}
}
