package estimate_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/certlake/certlake/internal/ctlog"
	"github.com/certlake/certlake/internal/ctlogtest"
	"github.com/certlake/certlake/internal/estimate"
	"github.com/certlake/certlake/internal/gaps"
)

// TestPlanMatchesThrottledLogs fetches plans from real in-process logs (a
// static-ct-api log and an RFC 6962 log serving 32 entries per answer)
// through ctlog's readers under rate limits, the way a backfill's
// FetchRange activities do (a window of chunks per log, every log at
// once), and checks that the estimate is within 25% of the time taken.
// The estimate models the rate limits, not this machine's CPU: the same
// fetch unthrottled is timed first, and a run that took longer than
// the estimate's 125% is still right when the excess is no more than
// that unthrottled time (a loaded machine verifying proofs), so the test
// stays a check of the model rather than of the machine's load.
func TestPlanMatchesThrottledLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("fetches for several seconds at a throttled rate")
	}
	ctx := t.Context()
	gen, err := ctlogtest.NewGenerator(ctlogtest.GeneratorOptions{Seed: "estimate"})
	if err != nil {
		t.Fatal(err)
	}
	static := ctlogtest.NewStaticTB(t, ctlogtest.Options{Name: "est-static"})
	rfc := ctlogtest.NewRFC6962TB(t, ctlogtest.Options{Name: "est-rfc", MaxGetEntries: 32})
	if err := static.AddBulk(ctx, 30_000, gen, nil); err != nil {
		t.Fatal(err)
	}
	if err := rfc.AddBulk(ctx, 2_500, gen, nil); err != nil {
		t.Fatal(err)
	}
	staticURL, rfcURL := ctlog.Log{URL: static.URL}.Source().URL, ctlog.Log{URL: rfc.URL}.Source().URL
	keys, origins := map[string][]byte{}, map[string]string{staticURL: static.Origin}
	for u, l := range map[string]*ctlogtest.Log{staticURL: static, rfcURL: rfc} {
		der, err := x509.MarshalPKIXPublicKey(l.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		keys[u] = der
	}
	plan := map[string][]gaps.Range{
		// Holes as a live ingester leaves them: some inside a tile, some
		// across tile and batch borders.
		staticURL: {{SourceURL: staticURL, Start: 100, End: 5_099}, {SourceURL: staticURL, Start: 5_300, End: 5_310}, {SourceURL: staticURL, Start: 6_000, End: 29_999}},
		rfcURL:    {{SourceURL: rfcURL, Start: 10, End: 1_009}, {SourceURL: rfcURL, Start: 1_200, End: 2_399}},
	}
	const (
		chunk     = 2_000
		window    = 2
		batchSize = 64
	)
	tests := []struct {
		name   string
		limits map[string]estimate.Limit // per log URL
		ops    map[string]estimate.Limit
	}{
		{
			name: "PerLog",
			limits: map[string]estimate.Limit{
				staticURL: {Rate: 20, Burst: 2, Concurrency: 4},
				rfcURL:    {Rate: 15, Burst: 2, Concurrency: 4},
			},
		},
		{
			// Both logs under one operator's budget, smaller than the
			// sum of their own limits.
			name: "Operator",
			limits: map[string]estimate.Limit{
				staticURL: {Rate: 20, Burst: 2, Concurrency: 4},
				rfcURL:    {Rate: 15, Burst: 2, Concurrency: 4},
			},
			ops: map[string]estimate.Limit{"TestOp": {Rate: 24}},
		},
	}
	newReader := func(u string, lim estimate.Limit, cfg ctlog.Config) ctlog.Reader {
		// Read as a worker reads by default: every range proven.
		return ctlog.New(ctlog.Log{URL: u, Static: u == staticURL, Operator: "testop", Key: keys[u], Origin: origins[u],
			RateLimit: lim.Rate, Burst: lim.Burst, Concurrency: lim.Concurrency}, cfg)
	}
	fetchAll := func(ctx context.Context, cfg ctlog.Config, limits map[string]estimate.Limit) (map[string]time.Duration, time.Duration, error) {
		took := map[string]time.Duration{}
		var mu sync.Mutex
		start := time.Now()
		g, gctx := errgroup.WithContext(ctx)
		for _, u := range []string{staticURL, rfcURL} {
			r := newReader(u, limits[u], cfg)
			g.Go(func() error {
				if err := fetchWindowed(gctx, r, gaps.Chunk(plan[u], chunk), window); err != nil {
					return fmt.Errorf("%s: %w", u, err)
				}
				mu.Lock()
				took[u] = time.Since(start)
				mu.Unlock()
				return nil
			})
		}
		err := g.Wait()
		return took, time.Since(start), err
	}
	// The work the estimate does not model, on this machine now.
	unlimited := map[string]estimate.Limit{staticURL: {Concurrency: 4}, rfcURL: {Concurrency: 4}}
	cpuTook, cpuTotal, err := fetchAll(ctx, ctlog.Config{BatchSize: batchSize, MaxAttempts: 3}, unlimited)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("unthrottled: %v (%v)", cpuTotal.Round(time.Millisecond), cpuTook)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs []estimate.Log
			for _, u := range []string{staticURL, rfcURL} {
				logs = append(logs, estimate.Log{URL: u, Operator: "testop", Static: u == staticURL,
					Ranges: plan[u], BatchSize: batchSize, Served: 32, Limit: tc.limits[u], Verified: true})
			}
			est := estimate.Plan(logs, estimate.Options{ChunkSize: chunk, Latency: 5 * time.Millisecond, Operators: tc.ops})

			ops := map[string]ctlog.Limit{}
			for name, l := range tc.ops {
				ops[name] = ctlog.Limit{Rate: l.Rate, Burst: l.Burst, Concurrency: l.Concurrency}
			}
			cfg := ctlog.Config{BatchSize: batchSize, Limiters: ctlog.NewLimiters(ops), MaxAttempts: 3}
			took, total, err := fetchAll(ctx, cfg, tc.limits)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range est.Logs {
				t.Logf("%s: %d requests, estimate %v (%s), took %v", e.URL, e.Requests, e.Duration.Round(time.Millisecond), e.Bound, took[e.URL].Round(time.Millisecond))
				if !within(e.Duration, took[e.URL], cpuTook[e.URL], 0.25) {
					t.Errorf("estimate of %s = %v, took %v: more than 25%% apart", e.URL, e.Duration, took[e.URL])
				}
			}
			t.Logf("total: estimate %v, took %v", est.Duration.Round(time.Millisecond), total.Round(time.Millisecond))
			if !within(est.Duration, total, cpuTotal, 0.25) {
				t.Errorf("estimate of the plan = %v, took %v: more than 25%% apart", est.Duration, total)
			}
		})
	}
}

// fetchWindowed fetches chunks with up to window in flight, as
// LogBackfillWorkflow's sliding window of FetchRange activities does.
func fetchWindowed(ctx context.Context, r ctlog.Reader, chunks []gaps.Range, window int) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(window)
	for _, c := range chunks {
		g.Go(func() error {
			return r.Entries(ctx, c.Start, c.End, func(ctlog.Batch) error { return nil })
		})
	}
	return g.Wait()
}

// within: took is within tol of est, or above it by no more than the
// unmodelled work measured unthrottled.
func within(est, took, unmodelled time.Duration, tol float64) bool {
	if math.Abs(est.Seconds()-took.Seconds()) <= tol*took.Seconds() {
		return true
	}
	return took > est && took-est <= time.Duration(float64(est)*tol)+unmodelled
}
