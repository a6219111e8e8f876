package activities

import (
	"log/slog"

	"github.com/certlake/certlake/internal/allowed"
	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/ctlog"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/options"
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
		DB:                 options.DB(cfg),
		Buffers:            lake.NewBufferPool(),
		Storage:            options.Storage(cfg, logger),
		Scratch:            &lake.Scratch{Dir: cfg.Worker.ScratchDir},
	}
	logs := options.Logs(cfg)
	logs.Client.Limiters = ctlog.NewLimiters(logs.Client.OperatorLimits)
	logs.Client.Logger, logs.Client.Metrics = logger, ctMetrics
	b := &Backfill{
		Lake: lk,
		Logs: logs,
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
