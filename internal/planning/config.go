package planning

import (
	"strings"

	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/ctlog"
	"github.com/certlake/certlake/internal/record"
)

// FromConfig turns the ct section into Logs. The client has no shared
// limiters, logger or metrics: a worker sets its own.
func FromConfig(cfg *config.Config) Logs {
	ops := map[string]ctlog.Limit{}
	for name, o := range cfg.CT.Operators {
		ops[name] = ctlog.Limit{Rate: o.RateLimit, Burst: o.Burst, Concurrency: o.Concurrency}
	}
	// Per-log overrides are keyed by lower-cased normalized URL: config keys
	// arrive lower-cased (viper), log URLs may not be.
	overrides := map[string]Override{}
	for u, o := range cfg.CT.Logs {
		overrides[strings.ToLower(record.NormalizeURL(u))] = Override{RateLimit: o.RateLimit, Burst: o.Burst,
			Concurrency: o.Concurrency, Window: o.Window, Verify: o.Verify}
	}
	return Logs{
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
			BatchSize:          cfg.CT.BatchSize,
		},
	}
}

func configLogs(ls []config.Log) []ctlog.ConfigLog {
	var out []ctlog.ConfigLog
	for _, l := range ls {
		key, _ := config.LogKeyDER(l.Key) // validated by config.Load
		out = append(out, ctlog.ConfigLog{Name: l.Name, URL: l.URL, Key: key, Origin: l.Origin})
	}
	return out
}
