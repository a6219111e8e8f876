package activities

import (
	"log/slog"
	"strings"

	"github.com/certlake/certlake/internal/allowed"
	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/ctlog"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/record"
	"github.com/certlake/certlake/internal/storage"
)

// New builds the activity structs from the worker's configuration. metrics
// and ctMetrics may be nil.
func New(cfg *config.Config, logger *slog.Logger, metrics Metrics, ctMetrics ctlog.Metrics) (*Backfill, *Merge) {
	if metrics == nil {
		metrics = NopMetrics{}
	}
	allowedList, err := allowed.New(cfg.Lake.Allowed())
	if err != nil { // config.Load has refused it already; by hand, nothing is allowed
		logger.Error("lake.allowed_locations", "err", err)
		allowedList = &allowed.List{}
	}
	lk := LakeSettings{
		Allowed:            allowedList,
		MainPath:           cfg.Lake.MainPath,
		PlanDir:            cfg.Lake.PlanDir,
		CheckpointInterval: cfg.Lake.CheckpointInterval,
		AsDERBinary:        cfg.Lake.AsDERBinary,
		CompactStaging:     cfg.Lake.CompactStaging,
		DB: lake.DBOptions{
			MemoryLimit: cfg.Lake.DuckDB.MemoryLimit,
			Threads:     cfg.Lake.DuckDB.Threads,
			TempDir:     cfg.Lake.DuckDB.TempDir,
		},
		Buffers: lake.NewBufferPool(),
		Storage: &storage.Opener{S3: storage.S3Config(cfg.Storage.S3), Logger: logger},
		Scratch: &lake.Scratch{Dir: cfg.Worker.ScratchDir},
	}
	ops := map[string]ctlog.Limit{}
	for name, o := range cfg.CT.Operators {
		ops[name] = ctlog.Limit{Rate: o.RateLimit, Burst: o.Burst, Concurrency: o.Concurrency}
	}
	// Per-log overrides are keyed by lower-cased normalized URL: config keys
	// arrive lower-cased (viper), log URLs may not be.
	overrides := map[string]LogOverride{}
	for u, o := range cfg.CT.Logs {
		overrides[strings.ToLower(record.NormalizeURL(u))] = LogOverride{RateLimit: o.RateLimit, Burst: o.Burst,
			Concurrency: o.Concurrency, Window: o.Window, Verify: o.Verify}
	}
	configLogs := func(ls []config.Log) []ctlog.ConfigLog {
		var out []ctlog.ConfigLog
		for _, l := range ls {
			key, _ := config.LogKeyDER(l.Key) // validated by config.Load
			out = append(out, ctlog.ConfigLog{Name: l.Name, URL: l.URL, Key: key, Origin: l.Origin})
		}
		return out
	}
	b := &Backfill{
		Lake: lk,
		Logs: LogSettings{
			LogListURL:     cfg.CT.LogListURL,
			IncludeRetired: cfg.CT.IncludeRetired,
			Custom:         configLogs(cfg.CT.CustomLogs),
			Static:         configLogs(cfg.CT.StaticLogs),
			StateFile:      cfg.CT.StateFile,
			Verify:         cfg.CT.Verify,
			Overrides:      overrides,
			Client: ctlog.Config{
				UserAgent:          cfg.CT.UserAgent,
				RequestTimeout:     cfg.CT.RequestTimeout,
				MaxAttempts:        cfg.CT.MaxAttempts,
				BackoffInitial:     cfg.CT.BackoffInitial,
				BackoffMax:         cfg.CT.BackoffMax,
				DefaultRateLimit:   cfg.CT.RateLimit, // 0 = unlimited in both
				DefaultBurst:       cfg.CT.Burst,
				DefaultConcurrency: cfg.CT.Concurrency,
				OperatorLimits:     ops,
				Limiters:           ctlog.NewLimiters(ops),
				BatchSize:          cfg.CT.BatchSize,
				Logger:             logger,
				Metrics:            ctMetrics,
			},
		},
		Defaults: BackfillSettings{
			ChunkSize:        cfg.Backfill.ChunkSize,
			Window:           cfg.Backfill.Window,
			StageBatchRows:   cfg.Backfill.StageBatchRows,
			FlushInterval:    cfg.Backfill.FlushInterval,
			Ceiling:          cfg.Backfill.Ceiling,
			FetchAttempts:    cfg.Backfill.FetchAttempts,
			HeartbeatTimeout: cfg.Backfill.HeartbeatTimeout,
		},
		Logger:  logger,
		Metrics: metrics,
	}
	m := &Merge{
		Lake: lk,
		Defaults: MergeSettings{BatchRows: cfg.Merge.BatchRows, Window: cfg.Merge.Window,
			HeartbeatTimeout: cfg.Merge.HeartbeatTimeout},
		Logger:  logger,
		Metrics: metrics,
	}
	return b, m
}
