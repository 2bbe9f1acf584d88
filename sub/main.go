// Command sub serves GraphQL subscriptions for notices: browsers subscribe
// over WebSocket, and every notice pub publishes for them arrives once per
// subscription. Configuration comes from the environment; see the README.
package main

import (
	"context"
	"fmt"
	"net/http"
	_ "net/http/pprof" // served only on PPROF_ADDR
	"os"
	"os/signal"
	"syscall"

	"github.com/oshirase/oshirase/service/logging"
	"github.com/oshirase/oshirase/sub/internal/app"
	"github.com/oshirase/oshirase/sub/internal/config"
)

func main() {
	cfg, err := config.Load(nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sub: invalid configuration:\n%v\n", err)
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
	// The first signal starts the drain (see app.Run); a second one stops
	// the process at once.
	go func() { <-ctx.Done(); stop() }()
	if err := app.Run(ctx, cfg, log); err != nil {
		log.Error("sub stopped", "err", err)
		os.Exit(1)
	}
}
