// Package options turns certlake's configuration into the engine's options:
// the one place that reads the ct, lake and storage sections for ctlog,
// planning and lake, so that the worker's activities and the starter's
// local tools (gaps, coverage, fetch, table) read logs and tables alike.
package options

import (
	"log/slog"

	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/ctlog"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/planning"
	"github.com/certlake/certlake/internal/storage"
)

// Catalog is the log catalog of the ct section: log list, custom and static
// logs, verification, per-log overrides, default and operator limits. The
// client has no shared limiters, logger or metrics: a worker sets its own.
func Catalog(cfg *config.Config) *ctlog.Catalog {
	ct := cfg.CT
	ops := map[string]ctlog.Limit{}
	for name, o := range ct.Operators {
		ops[name] = ctlog.Limit{Rate: o.RateLimit, Burst: o.Burst, Concurrency: o.Concurrency}
	}
	overrides := map[string]ctlog.Override{}
	for u, o := range ct.Logs {
		overrides[ctlog.OverrideKey(u)] = ctlog.Override{RateLimit: o.RateLimit, Burst: o.Burst,
			Concurrency: o.Concurrency, Window: o.Window, Verify: o.Verify}
	}
	return &ctlog.Catalog{
		LogListURL:     ct.LogListURL,
		IncludeRetired: ct.IncludeRetired,
		Custom:         configLogs(ct.CustomLogs),
		Static:         configLogs(ct.StaticLogs),
		Verify:         ct.Verify,
		Overrides:      overrides,
		Client: ctlog.Config{
			UserAgent:          ct.UserAgent,
			RequestTimeout:     ct.RequestTimeout,
			MaxAttempts:        ct.MaxAttempts,
			BackoffInitial:     ct.BackoffInitial,
			BackoffMax:         ct.BackoffMax,
			DefaultRateLimit:   ct.RateLimit, // 0 = unlimited in both
			DefaultBurst:       ct.Burst,
			DefaultConcurrency: ct.Concurrency,
			OperatorLimits:     ops,
			BatchSize:          ct.BatchSize,
		},
	}
}

// Logs are the catalog and the live ingester's state file: what a plan's
// logs and ceilings come from.
func Logs(cfg *config.Config) planning.Logs {
	return planning.Logs{Catalog: Catalog(cfg), StateFile: cfg.CT.StateFile}
}

// DB is the embedded DuckDB's settings (lake.duckdb).
func DB(cfg *config.Config) lake.DBOptions {
	d := cfg.Lake.DuckDB
	return lake.DBOptions{MemoryLimit: d.MemoryLimit, Threads: d.Threads, TempDir: d.TempDir}
}

// Storage reaches the tables of the configuration: local paths, file:///
// and s3:// URIs (storage.s3.*).
func Storage(cfg *config.Config, logger *slog.Logger) *storage.Opener {
	return &storage.Opener{S3: storage.S3Config(cfg.Storage.S3), Logger: logger}
}

func configLogs(ls []config.Log) []ctlog.ConfigLog {
	var out []ctlog.ConfigLog
	for _, l := range ls {
		key, _ := config.LogKeyDER(l.Key) // validated by config.Load
		out = append(out, ctlog.ConfigLog{Name: l.Name, URL: l.URL, Key: key, Origin: l.Origin})
	}
	return out
}
