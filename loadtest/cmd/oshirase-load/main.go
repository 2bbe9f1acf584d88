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

// freePort prints a TCP port that is free on 127.0.0.1 right now.
func freePort() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	return nil
}
