// Package e2e runs certlake end to end: a real Temporal dev server (the
// Temporal CLI), real CT logs in-process, real Delta tables on disk and real
// DuckDB. The tests are skipped with -short.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"k8s.io/klog/v2"

	"github.com/certlake/certlake/activities"
	"github.com/certlake/certlake/e2e/devserver"
	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/scenario"
	"github.com/certlake/certlake/workflows"
)

// devServer is the dev server shared by the package's tests; each test uses
// its own task queue and lake, so they do not see each other's work.
var devServer *testsuite.DevServer

func TestMain(m *testing.M) {
	flag.Parse()
	// Trillian, inside the in-process RFC 6962 log, logs through klog.
	klog.LogToStderr(false)
	klog.SetOutput(io.Discard)
	if testing.Short() {
		os.Exit(m.Run())
	}
	var err error
	devServer, err = devserver.Start(context.Background(), devserver.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = devServer.Stop()
	os.Exit(code)
}

// temporalCLI finds the Temporal CLI (installed by scripts/ensure-temporal.sh).
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// env is one test's world: logs, lake, config and an in-process worker.
type env struct {
	t     *testing.T
	sc    *scenario.Scenario
	cfg   *config.Config
	queue string
	c     client.Client
	w     worker.Worker
}

var queueSeq atomic.Int64

// newEnv starts a scenario and a worker on a fresh task queue.
func newEnv(t *testing.T, opts scenario.Options) *env {
	t.Helper()
	e := newWorld(t, opts, "certlake-e2e")
	e.startWorker()
	return e
}

// newWorld starts a scenario and prepares its configuration on a fresh task
// queue, without a worker: the test starts one (startWorker) or worker
// processes itself.
func newWorld(t *testing.T, opts scenario.Options, queuePrefix string) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("end to end test; skipped with -short")
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	sc, err := scenario.Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("scenario: %v", err)
	}
	t.Cleanup(func() { sc.Close() })
	e := &env{t: t, sc: sc, c: devServer.Client(),
		queue: fmt.Sprintf("%s-%d-%d", queuePrefix, os.Getpid(), queueSeq.Add(1))}
	e.cfg = testConfig(sc, e.queue)
	// The worker's own scratch (remote downloads, uploads, the merge's
	// DuckDB spill) inside the test's directory: removed with it even when
	// a worker process is killed, never left in the OS temp dir.
	e.cfg.Worker.ScratchDir = t.TempDir()
	return e
}

// defaultConfig is the configuration a user gets without tuning: every
// window, chunk, batch and rate limit at its default.
func defaultConfig(sc *scenario.Scenario, queue string) *config.Config {
	cfg := config.Defaults()
	cfg.Temporal.TaskQueue = queue
	cfg.Temporal.Address = devServer.FrontendHostPort()
	cfg.Lake.MainPath = sc.MainPath
	cfg.Lake.StagingPath = sc.StagingPath
	cfg.Lake.PlanDir = sc.PlanDir
	cfg.CT.LogListURL = ""
	cfg.CT.StateFile = sc.StateFile
	for _, l := range sc.Logs {
		cl := l.ConfigLog()
		if l.Source.Static {
			cfg.CT.StaticLogs = append(cfg.CT.StaticLogs, cl)
		} else {
			cfg.CT.CustomLogs = append(cfg.CT.CustomLogs, cl)
		}
	}
	return &cfg
}

// testConfig is defaultConfig with small chunks, so that every run has
// several ranges per log, and no rate limit.
func testConfig(sc *scenario.Scenario, queue string) *config.Config {
	cfg := defaultConfig(sc, queue)
	cfg.CT.RateLimit = -1
	cfg.CT.BackoffInitial = 50 * time.Millisecond
	cfg.CT.BackoffMax = time.Second
	cfg.CT.RequestTimeout = 10 * time.Second
	cfg.Backfill.ChunkSize = 500
	cfg.Backfill.Window = 3
	cfg.Backfill.StageBatchRows = 200
	cfg.Merge.BatchRows = 700
	cfg.Merge.Window = 2
	return cfg
}

func (e *env) startWorker() { e.startWorkerWith(quietLogger()) }

// startWorkerWith starts an in-process worker whose activities log to logger.
func (e *env) startWorkerWith(logger *slog.Logger) {
	w := worker.New(e.c, e.queue, worker.Options{})
	b, m := activities.New(e.cfg, logger, nil, nil)
	w.RegisterWorkflowWithOptions(workflows.BackfillWorkflow, workflow.RegisterOptions{Name: workflows.BackfillWorkflowName})
	w.RegisterWorkflowWithOptions(workflows.LogBackfillWorkflow, workflow.RegisterOptions{Name: workflows.LogBackfillWorkflowName})
	w.RegisterWorkflowWithOptions(workflows.MergeWorkflow, workflow.RegisterOptions{Name: workflows.MergeWorkflowName})
	w.RegisterActivity(b)
	w.RegisterActivity(m)
	if err := w.Start(); err != nil {
		e.t.Fatalf("start worker: %v", err)
	}
	e.w = w
	e.t.Cleanup(w.Stop)
}

// start starts a workflow on the test's queue.
func (e *env) start(id, wf string, in any) client.WorkflowRun {
	e.t.Helper()
	run, err := e.c.ExecuteWorkflow(e.t.Context(), client.StartWorkflowOptions{
		ID: id + "-" + e.queue, TaskQueue: e.queue, WorkflowExecutionTimeout: 10 * time.Minute,
	}, wf, in)
	if err != nil {
		e.t.Fatalf("start %s: %v", wf, err)
	}
	return run
}

// backfill runs BackfillWorkflow to its end.
func (e *env) backfill(id string, in workflows.BackfillInput) (workflows.BackfillResult, error) {
	var res workflows.BackfillResult
	err := e.start(id, workflows.BackfillWorkflowName, in).Get(e.t.Context(), &res)
	return res, err
}

// merge runs MergeWorkflow to its end.
func (e *env) merge(id string, in workflows.MergeInput) (workflows.MergeResult, error) {
	var res workflows.MergeResult
	err := e.start(id, workflows.MergeWorkflowName, in).Get(e.t.Context(), &res)
	return res, err
}

func (e *env) keys(path string) scenario.KeyCounts {
	e.t.Helper()
	k, err := scenario.Keys(e.t.Context(), path)
	if err != nil {
		e.t.Fatalf("keys of %s: %v", path, err)
	}
	return k
}
