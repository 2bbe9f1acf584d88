// Command pub accepts notices from backend services over GraphQL and
// publishes each on its recipient's Redis channel, for sub to deliver.
// Configuration comes from the environment; see the README.
package main

import (
	"context"
	"fmt"
	"net/http"
	_ "net/http/pprof" // served only on PPROF_ADDR
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/oshirase/oshirase/pub/internal/app"
	"github.com/oshirase/oshirase/pub/internal/config"
	"github.com/oshirase/oshirase/service/logging"
)

// gcPercent is pub's GOGC unless the environment sets one. pub's live
// heap is a few megabytes, and nearly all a request allocates is garbage
// once it is answered: at Go's default (100) the collector ran every few
// hundred publishes and took about a fifth of pub's CPU under load
// (marking, assists, returning pages). At 400 the heap grows to a few
// tens of megabytes and a publish costs less CPU (README, "Benchmarks").
const gcPercent = 400

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	cfg, err := config.Load(nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pub: invalid configuration:\n%v\n", err)
		os.Exit(2)
	}
	log := logging.NewLogger(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	logging.RouteLibraryLogs(log)
	if cfg.PprofAddr != "" {
		go func() {
			log.Info("pprof listening", "addr", cfg.PprofAddr)
			log.Warn("pprof stopped", "err", http.ListenAndServe(cfg.PprofAddr, nil))
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, cfg, log); err != nil {
		log.Error("pub stopped", "err", err)
		os.Exit(1)
	}
}
