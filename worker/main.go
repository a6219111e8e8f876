// Command worker runs a certlake worker: it registers the backfill and merge
// workflows and activities on the certlake task queue, serves Prometheus
// metrics and a health check, and stops gracefully on SIGINT or SIGTERM.
//
//	go run ./worker [--config certlake.yaml] [--set key=value ...]
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/certlake/certlake/activities"
	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/workflows"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "certlake worker:", err)
		os.Exit(1)
	}
}

// tuneGC sets the garbage collector's target to pct (worker.gc_percent)
// unless pct is 0 or the GOGC environment variable is set.
func tuneGC(pct int) (int, bool) {
	if pct <= 0 || os.Getenv("GOGC") != "" {
		return 0, false
	}
	debug.SetGCPercent(pct)
	return pct, true
}

func run() error {
	fs := pflag.NewFlagSet("worker", pflag.ContinueOnError)
	config.AddFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	cfg, err := config.Load("", fs)
	if err != nil {
		return err
	}
	logger := cfg.Logger()
	if pct, ok := tuneGC(cfg.Worker.GCPercent); ok {
		logger.Debug("garbage collector target set", "gc_percent", pct)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sdk, err := sdkMetricsHandler(reg, logger)
	if err != nil {
		return err
	}
	metrics := newCertlakeMetrics(reg)

	c, err := dial(cfg.Temporal, logger, sdk)
	if err != nil {
		return err
	}
	defer c.Close()

	w := worker.New(c, cfg.Temporal.TaskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: cfg.Worker.MaxConcurrentActivities,
		// Give running activities time to commit what they hold on shutdown;
		// whatever is not committed is refetched by the retry.
		WorkerStopTimeout: 20 * time.Second,
	})
	backfill, merge := activities.New(cfg, logger, metrics, metrics)
	register(w, backfill, merge)
	// Uploads and DuckDB spill files a killed run left in this worker's
	// scratch are of no use to anyone: clear them now and on the way out.
	scratch := backfill.Lake.Scratch
	if err := scratch.Clean(); err != nil {
		logger.Warn("worker scratch", "err", err)
	}
	defer func() {
		if err := scratch.Clean(); err != nil {
			logger.Warn("worker scratch", "err", err)
		}
	}()

	if cfg.Worker.MetricsAddress != "" {
		srv, err := serveMetrics(cfg.Worker.MetricsAddress, reg, c)
		if err != nil {
			return err
		}
		defer srv.Close()
		logger.Info("serving metrics", "address", cfg.Worker.MetricsAddress)
	}
	logger.Info("worker starting", "task_queue", cfg.Temporal.TaskQueue, "namespace", cfg.Temporal.Namespace,
		"temporal", cfg.Temporal.Address, "main_path", cfg.Lake.MainPath)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	<-ctx.Done()
	logger.Info("stopping worker")
	w.Stop()
	return nil
}

// register puts every certlake workflow and activity on w.
func register(w worker.Registry, b *activities.Backfill, m *activities.Merge) {
	w.RegisterWorkflowWithOptions(workflows.BackfillWorkflow, workflow.RegisterOptions{Name: workflows.BackfillWorkflowName})
	w.RegisterWorkflowWithOptions(workflows.LogBackfillWorkflow, workflow.RegisterOptions{Name: workflows.LogBackfillWorkflowName})
	w.RegisterWorkflowWithOptions(workflows.MergeWorkflow, workflow.RegisterOptions{Name: workflows.MergeWorkflowName})
	w.RegisterActivity(b)
	w.RegisterActivity(m)
}

// dial connects to Temporal with the configured namespace, TLS and API key.
func dial(t config.Temporal, logger *slog.Logger, mh client.MetricsHandler) (client.Client, error) {
	opts := client.Options{
		HostPort:       t.Address,
		Namespace:      t.Namespace,
		Logger:         sdklog.NewStructuredLogger(logger),
		MetricsHandler: mh,
	}
	tc, err := t.TLSConfig()
	if err != nil {
		return nil, err
	}
	opts.ConnectionOptions.TLS = tc
	if t.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(t.APIKey)
	}
	c, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (temporal.address): %w", t.Address, err)
	}
	return c, nil
}

// serveMetrics serves /metrics and /healthz (Temporal reachable) on addr.
func serveMetrics(addr string, reg *prometheus.Registry, c client.Client) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			http.Error(w, "temporal unreachable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (worker.metrics_address): %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("metrics server", "err", err)
		}
	}()
	return srv, nil
}
