package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/ctlog"
	"github.com/certlake/certlake/internal/estimate"
	"github.com/certlake/certlake/internal/gaps"
	"github.com/certlake/certlake/internal/options"
)

// estimatePlan fills the requests and ETA of every log of v, and the
// totals, at the configured limits (internal/estimate). With probe, each
// RFC 6962 log with work is asked for one batch to learn how many entries
// it answers per request.
func estimatePlan(ctx context.Context, cfg *config.Config, v *gapsView, latency time.Duration, probe bool) error {
	byLog := map[string][]gaps.Range{}
	for _, r := range v.Items {
		byLog[r.SourceURL] = append(byLog[r.SourceURL], r)
	}
	cat := options.Catalog(cfg)
	ops := map[string]estimate.Limit{}
	for name, o := range cat.Client.OperatorLimits {
		// A zero operator rate only passes the default on to its logs:
		// the shared budget has no rate then (ctlog.NewLimiters).
		ops[name] = estimate.Limit{Rate: o.Rate, Burst: o.Burst, Concurrency: o.Concurrency}
	}
	bs := uint64(max(cfg.CT.BatchSize, 1))
	logs := make([]estimate.Log, len(v.Logs))
	for i := range v.Logs {
		lv := &v.Logs[i]
		// The limits and verification the worker's reader of the log has.
		l := ctlog.Log{URL: lv.SourceURL, Operator: lv.Operator}
		lim := cat.Limit(l)
		el := estimate.Log{
			URL: lv.SourceURL, Operator: lv.Operator, Static: lv.Kind == "static-ct",
			Ranges: byLog[lv.SourceURL], BatchSize: bs, Window: cat.Window(lv.SourceURL), Verified: !cat.Tune(l).Unverified,
			// ctlog: a rate of 0 is unlimited; estimate: so is <= 0.
			Limit: estimate.Limit{Rate: lim.Rate, Burst: lim.Burst, Concurrency: lim.Concurrency},
		}
		lv.RateLimit, lv.Concurrency, lv.Verified = max(lim.Rate, 0), el.Limit.Concurrency, el.Verified
		switch {
		case el.Static:
			lv.EntriesPerRequest, lv.PerRequestFrom = estimate.TileWidth, "tile"
		case probe && len(el.Ranges) > 0:
			n, err := probeServed(ctx, cat, lv, el.Ranges[0].Start, bs)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				lv.EntriesPerRequest, lv.PerRequestFrom = bs, "batch_size (probe failed: "+oneLine(err.Error())+")"
				break
			}
			lv.EntriesPerRequest, lv.PerRequestFrom = n, "probed"
			el.Served = n
		default:
			lv.EntriesPerRequest, lv.PerRequestFrom = bs, "batch_size"
		}
		logs[i] = el
	}
	est := estimate.Plan(logs, estimate.Options{
		ChunkSize: cfg.Backfill.ChunkSize, Window: cfg.Backfill.Window, Latency: latency, Operators: ops,
	})
	for i, e := range est.Logs {
		v.Logs[i].Requests, v.Logs[i].ETASeconds, v.Logs[i].Bound = e.Requests, e.Duration.Seconds(), e.Bound
	}
	v.TotalRequests, v.ETASeconds, v.LatencySeconds = est.Requests, est.Duration.Seconds(), latency.Seconds()
	return nil
}

var errProbed = errors.New("probed")

// probeServed asks the log for the batch holding index from and returns
// how many entries its first answer held: the most it serves per request,
// up to bs.
func probeServed(ctx context.Context, cat *ctlog.Catalog, lv *gapsLogView, from, bs uint64) (uint64, error) {
	start := from - from%bs
	end := start + bs - 1
	if lv.Ceiling > 0 && end >= lv.Ceiling {
		end = lv.Ceiling - 1
	}
	// Only the count of entries matters here: their proofs are not checked.
	r := ctlog.New(ctlog.Log{URL: lv.SourceURL, Operator: lv.Operator, Unverified: true}, cat.Client)
	var n uint64
	err := r.Entries(ctx, start, end, func(b ctlog.Batch) error {
		n = b.End - b.Start + 1
		return errProbed
	})
	if !errors.Is(err, errProbed) {
		if err == nil {
			err = errors.New("no answer")
		}
		return 0, fmt.Errorf("get-entries [%d, %d]: %w", start, end, err)
	}
	return n, nil
}

// humanDuration prints d in its two largest units: "3d4h", "2h5m", "42s".
func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d.Seconds()))
	}
	days := d / (24 * time.Hour)
	h := (d % (24 * time.Hour)) / time.Hour
	m := (d % time.Hour) / time.Minute
	s := (d % time.Minute) / time.Second
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh%dm", h, m)
	}
	return fmt.Sprintf("%dm%ds", m, s)
}
