// Command oshirase-load opens many GraphQL (or Centrifugo) subscriptions on
// loopback, publishes notices that carry their send time, and reports
// connect rate, memory per idle subscription, deliveries per second,
// latency percentiles, time to reach every tab, losses and errors.
//
//	oshirase-load run    -peer NAME -url ws://127.0.0.1:8081/graphql … -phases idle,s3:1000:5s,…
//	oshirase-load report -in DIR -out DIR        merge runs into results.{json,md} and plot.svg
//	oshirase-load redis-bench -json OUT …        wrap redis-benchmark PUBLISH as an S5 run
//
// It only talks to 127.0.0.0/8, and every phase is bounded in count and time.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/oshirase/oshirase/loadtest/fleet"
	"github.com/oshirase/oshirase/loadtest/sysinfo"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: oshirase-load run|report|redis-bench [flags]")
		os.Exit(2)
	}
	if _, err := sysinfo.RaiseNoFile(); err != nil {
		log.Warn("could not raise the file limit", "err", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "worker":
		err = fleet.Serve(os.Stdin, os.Stdout)
	case "run":
		err = runCmd(ctx, log, os.Args[2:])
	case "report":
		err = reportCmd(os.Args[2:])
	case "redis-bench":
		err = redisBenchCmd(ctx, os.Args[2:])
	case "freeport":
		err = freePort()
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		log.Error("oshirase-load", "err", err)
		os.Exit(1)
	}
}

// freePort prints a TCP port that is free right now, chosen below the
// kernel's ephemeral range (32768+) so that the load tool's own client
// sockets never take it between this check and the server's bind.
func freePort() error {
	for i := 0; i < 200; i++ {
		port := 20000 + rand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		fmt.Println(port)
		return nil
	}
	return fmt.Errorf("no free port in 20000-31999")
}
