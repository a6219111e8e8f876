package e2e

// Reliability with the lake in a bucket of a real S3-compatible server
// (versitygw): workers on several hosts, one killed; a live writer beside
// the merge; the server itself stopped and restarted. Every scenario ends
// with main downloaded and checked key by key.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/certlake/certlake/internal/keyindex"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/record"
	"github.com/certlake/certlake/internal/scenario"
	"github.com/certlake/certlake/internal/storage"
	"github.com/certlake/certlake/workflows"
)

// tableOptions opens the bucket's tables from the test (as another host
// would: its own scratch).
func (w *s3World) tableOptions(role lake.Role) lake.Options {
	return lake.Options{Role: role, AcceptUnmarked: role == lake.RoleStaging,
		Storage: &storage.Opener{S3: w.srv.Config()}, Scratch: &lake.Scratch{Dir: w.t.TempDir()}}
}

// rowsIn counts the rows of the table at uri from its log's stats; 0 when
// it does not exist or cannot be read at this instant.
func (w *s3World) rowsIn(uri string, role lake.Role) int64 {
	tb, err := lake.Open(w.t.Context(), uri, w.tableOptions(role))
	if err != nil {
		return 0
	}
	snap, err := tb.Snapshot(w.t.Context())
	if err != nil {
		return 0
	}
	var n int64
	for _, f := range tb.Files(snap) {
		n += max(f.NumRecords, 0)
	}
	return n
}

// version is the latest version of the table at uri, -1 when unreadable.
func (w *s3World) version(uri string, role lake.Role) int64 {
	tb, err := lake.Open(w.t.Context(), uri, w.tableOptions(role))
	if err != nil {
		return -1
	}
	snap, err := tb.Snapshot(w.t.Context())
	if err != nil {
		return -1
	}
	return snap.Version
}

// checkMergedOnce checks the end state of a merge of every hole: main in
// the bucket holds every entry of every log exactly once, staging holds
// no data object (only its log, see merge.Retire), no plan is left.
func (w *s3World) checkMergedOnce(o *outcome, mr workflows.MergeResult) {
	w.t.Helper()
	want := missingTotal(w.sc)
	if mr.TotalStagingRows != want || mr.TotalInserted != want || mr.TotalSkipped != 0 || !mr.StagingRetired {
		w.t.Fatalf("merge result = %+v, want %d staged and inserted, staging retired", mr, want)
	}
	if err := w.sc.CheckComplete(w.keys(w.download("main"))); err != nil {
		w.t.Fatalf("main in the bucket after merge: %v", err)
	}
	o.check("main in the bucket holds every entry of every log exactly once (%d merged)", want)
	// Every file staging's log ever added is deleted. An upload whose
	// commit never landed (its worker was killed, or the store went down
	// before the upload could be deleted again) is invisible to readers
	// and left for table vacuum.
	added := fileVersions(w.t, w.download("staging"))
	orphans := 0
	for k := range w.srv.Keys(w.t, w.bucket) {
		switch {
		case strings.HasPrefix(k, "lake/staging/"+keyindex.Dir+"/"):
			w.t.Errorf("staging's key index %s left in the bucket after retirement", k)
		case strings.HasPrefix(k, "lake/staging/") && !strings.HasPrefix(k, "lake/staging/_delta_log/"):
			if _, ok := added[path.Base(k)]; ok {
				w.t.Errorf("merged staging file %s left in the bucket after retirement", k)
			} else {
				orphans++
			}
		case strings.HasPrefix(k, "lake/.certlake-plans/"):
			w.t.Errorf("plan %s left in the bucket", k)
		}
	}
	if n := w.rowsIn(w.stagingURI, lake.RoleStaging); n != 0 {
		w.t.Errorf("staging's log lists %d live rows after retirement, want 0", n)
	}
	o.check("staging retired: every file its log added is deleted, its log lists no file; no plan left")
	o.figure("%d never-committed uploads left in staging for table vacuum", orphans)
}

// pendingActivity is an activity a running workflow of the queue waits for.
type pendingActivity struct {
	workflowID, activity, worker, lastFailure string
	state                                     enumspb.PendingActivityState
	attempt                                   int32
}

// pendingActivities lists the pending activities of the queue's runs.
func (e *env) pendingActivities() []pendingActivity {
	e.t.Helper()
	resp, err := e.c.ListWorkflow(e.t.Context(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("TaskQueue = '%s' AND ExecutionStatus = 'Running'", e.queue)})
	if err != nil {
		e.t.Fatalf("list workflows of %s: %v", e.queue, err)
	}
	var out []pendingActivity
	for _, ex := range resp.Executions {
		d, err := e.c.DescribeWorkflow(e.t.Context(), ex.Execution.WorkflowId, ex.Execution.RunId)
		if err != nil {
			continue // ended meanwhile
		}
		for _, a := range d.RawResponse.GetPendingActivities() {
			p := pendingActivity{workflowID: ex.Execution.WorkflowId, activity: a.ActivityType.GetName(),
				worker: a.LastWorkerIdentity, state: a.State, attempt: a.Attempt}
			if f := a.LastFailure; f != nil {
				p.lastFailure = f.Message
			}
			out = append(out, p)
		}
	}
	return out
}

// holdsActivity reports whether the worker process runs an activity of
// type name right now (its identity is "pid@host...").
func (e *env) holdsActivity(wp *workerProc, name string) bool {
	prefix := fmt.Sprintf("%d@", wp.cmd.Process.Pid)
	for _, a := range e.pendingActivities() {
		if a.activity == name && a.state == enumspb.PENDING_ACTIVITY_STATE_STARTED && strings.HasPrefix(a.worker, prefix) {
			return true
		}
	}
	return false
}

// failedAttempts returns, from the histories of the queue's runs, the
// failures that made Temporal retry an activity (the last failure of each
// attempt beyond the first).
func (e *env) failedAttempts() []string {
	e.t.Helper()
	resp, err := e.c.ListWorkflow(e.t.Context(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("TaskQueue = '%s'", e.queue), PageSize: 1000})
	if err != nil {
		e.t.Fatalf("list workflows of %s: %v", e.queue, err)
	}
	var out []string
	for _, ex := range resp.Executions {
		it := e.c.GetWorkflowHistory(e.t.Context(), ex.Execution.WorkflowId, ex.Execution.RunId, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				e.t.Fatalf("history of %s: %v", ex.Execution.WorkflowId, err)
			}
			if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && a.Attempt > 1 && a.LastFailure != nil {
				out = append(out, a.LastFailure.Message)
			}
		}
	}
	return out
}

// host is what one worker process owns on its "host": its scratch
// directory ("" = worker.scratch_dir left at its default, a directory the
// worker makes under its OS temp dir), and a working directory that is
// also its OS temp dir.
type host struct {
	scratch, home string
	cfg           string
}

func (w *s3World) newHost(defaultScratch bool) *host {
	h := &host{home: w.t.TempDir()}
	if !defaultScratch {
		h.scratch = w.t.TempDir()
	}
	c := *w.cfg
	c.Worker.ScratchDir = h.scratch
	h.cfg = writeConfig(w.t, &c)
	return h
}

func (w *s3World) startOn(h *host, name string, env ...string) *workerProc {
	return startWorkerProcWith(w.t, name, h.cfg, procOptions{dir: h.home, env: append([]string{"TMPDIR=" + h.home}, env...)})
}

// entries lists the paths under dir, relative to it.
func entries(t *testing.T, dir string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// checkHostClean checks what a worker stopped by SIGTERM leaves on its
// host: in its configured scratch only the download cache, nothing in its
// working directory or OS temp dir (where a default scratch lives until
// the worker removes it on the way out). It returns the number of cached
// files.
func checkHostClean(t *testing.T, name string, h *host) int {
	t.Helper()
	if e := entries(t, h.home); len(e) > 0 {
		t.Errorf("%s left %v in its working directory / OS temp dir after it stopped", name, e)
	}
	cached := 0
	if h.scratch == "" {
		return 0
	}
	for _, p := range entries(t, h.scratch) {
		switch {
		case p == "cache":
		case strings.HasPrefix(p, "cache"+string(filepath.Separator)):
			cached++
		default:
			t.Errorf("%s left %s in its scratch after it stopped (only cache/ should stay)", name, p)
		}
	}
	return cached
}

// TestReliabilityS3TwoWorkersOneKilledDuringBackfill: two worker processes,
// each with its own scratch directory (worker-1 a configured one, worker-2
// the default under its OS temp dir), working directory and OS temp dir,
// share only the bucket and Temporal. One is SIGKILLed while it runs a
// FetchRange; the other finishes the backfill, the killed one is started
// again (its scratch cleared of the dead run's files) and both merge.
// Every hole is filled exactly once, and nothing was written on either
// host outside that worker's own scratch.
func TestReliabilityS3TwoWorkersOneKilledDuringBackfill(t *testing.T) {
	t.Parallel()
	o := report(t)
	w := newS3World(t, scenario.Options{Logs: twoLogs(3000, 2000), HoleEvery: 40})
	guard(t, w.sc.Dir)
	want := missingTotal(w.sc)
	slowFetch(w.cfg)
	w.cfg.Backfill.Window = 2 // two ranges per log in flight: work for both workers
	w.cfg.Merge.BatchRows = 400
	w.cfg.Merge.Window = 2
	w.cfg.Merge.HeartbeatTimeout = 10 * time.Second
	w.cfg.Lake.DuckDB.Threads = 1
	// worker-2 leaves worker.scratch_dir at its default (a directory it
	// makes under its own OS temp dir and removes when it stops).
	h1, h2 := w.newHost(false), w.newHost(true)
	w1 := w.startOn(h1, "worker-1")
	w2 := w.startOn(h2, "worker-2")

	run := w.start("backfill-2w", workflows.BackfillWorkflowName, workflows.BackfillInput{StagingPath: w.stagingURI})
	waitFor(t, 2*time.Minute, "worker-1 running a FetchRange with a fifth of the rows staged", func() bool {
		return w.rowsIn(w.stagingURI, lake.RoleStaging) >= want/5 && w.holdsActivity(w1, "FetchRange")
	})
	w1.kill()
	killed := time.Now()
	atKill := w.rowsIn(w.stagingURI, lake.RoleStaging)
	o.figure("worker-1 SIGKILLed while running a FetchRange, %d of %d rows staged", atKill, want)
	if atKill >= want {
		t.Fatalf("the kill came after the backfill had staged everything (%d of %d)", atKill, want)
	}
	var res workflows.BackfillResult
	if err := run.Get(t.Context(), &res); err != nil {
		t.Fatalf("backfill after the kill: %v", err)
	}
	o.figure("backfill completed by worker-2 alone %.0f s after the kill (heartbeat timeout 10 s)", time.Since(killed).Seconds())
	retries, hb := activityRetries(t, w.c, w.queue)
	o.figure("%d activity retries, %d of them after a heartbeat timeout", retries, hb)
	if hb == 0 {
		t.Fatalf("no activity was retried after a heartbeat timeout: the FetchRange worker-1 held was not taken over")
	}
	if res.RecordsWritten != want || res.LogsSucceeded != 2 || res.LogsFailed != 0 || len(res.FailedRanges) != 0 {
		t.Fatalf("backfill result = %+v, want %d records from 2 logs", res, want)
	}
	if err := w.sc.CheckStaging(w.keys(w.download("staging"))); err != nil {
		t.Fatalf("staging in the bucket after the kill: %v", err)
	}
	o.check("staging in the bucket holds exactly the %d missing keys once each; records_written = %d", want, res.RecordsWritten)

	// worker-1 comes back on its host and merges beside worker-2.
	w1 = w.startOn(h1, "worker-1-again")
	mr, err := w.merge("merge-2w", workflows.MergeInput{StagingPath: w.stagingURI})
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	w.checkMergedOnce(o, mr)
	merged1, merged2 := w1.countLog("batch merged"), w2.countLog("batch merged")
	o.figure("%d merge batches: %d run by worker-1, %d by worker-2", mr.Batches, merged1, merged2)
	if merged1+merged2 != mr.Batches {
		t.Errorf("the workers' logs show %d + %d merged batches, want %d", merged1, merged2, mr.Batches)
	}

	madeScratch := false
	for _, p := range entries(t, h2.home) {
		madeScratch = madeScratch || strings.HasPrefix(p, "certlake-scratch-") && !strings.ContainsRune(p, filepath.Separator)
	}
	if !madeScratch {
		t.Errorf("worker-2 made no default scratch under its OS temp dir: %v", entries(t, h2.home))
	}
	w1.stop()
	w2.stop()
	cached := checkHostClean(t, "worker-1", h1)
	checkHostClean(t, "worker-2", h2)
	o.figure("after SIGTERM: %d files in worker-1's download cache and nothing else on its host; nothing at all left on worker-2's", cached)
	o.check("each worker wrote only under its own scratch: worker-1's configured one keeps only its download cache (no uploads or DuckDB spill), worker-2's default one under its OS temp dir is removed on exit; nothing in either working directory")
	if _, err := os.Stat(filepath.Join(w.sc.Dir, "lake", "staging")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a local staging directory exists beside the scenario's main: %v", err)
	}
}

// TestReliabilityS3LiveWriterDuringMerge: a Delta writer commits rows to
// main in the bucket (through the storage layer: conditional puts of each
// version) all through a MergeWorkflow, either keys of its own (new_keys,
// as the live ingester appends new entries) or the staged keys themselves
// in random order (overlapping_keys: some land before the merge reaches
// them, some between a batch's read of main and its commit). The merge
// finishes; every hole is in main, the merge never adds a key main
// already holds, and every one of the writer's rows is kept.
func TestReliabilityS3LiveWriterDuringMerge(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"new_keys", "overlapping_keys"} {
		t.Run(mode, func(t *testing.T) {
			o := report(t)
			w := newS3World(t, scenario.Options{Logs: twoLogs(3000, 2000)})
			want := missingTotal(w.sc)
			w.cfg.Backfill.StageBatchRows = 64
			w.cfg.Merge.BatchRows = 150
			w.cfg.Merge.Window = 1
			w.startWorker()
			if res, err := w.backfill("backfill", workflows.BackfillInput{StagingPath: w.stagingURI}); err != nil || res.RecordsWritten != want {
				t.Fatalf("backfill = %+v, %v; want %d records", res, err, want)
			}
			var rows []record.Row
			for i, r := range tableRows(t, w.download("staging")) {
				r.SourceName = writerMark
				if mode == "new_keys" {
					r.CertIndex = 10_000_000 + uint64(i)
				}
				rows = append(rows, r)
			}
			per, every := 20, 40*time.Millisecond
			if mode == "overlapping_keys" {
				rng := rand.New(rand.NewPCG(1, 2))
				rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
				per, every = 2, 25*time.Millisecond // spans the whole merge
			}

			stop := make(chan struct{})
			before := w.version(w.mainURI, lake.RoleMain)
			run := w.start("merge-live", workflows.MergeWorkflowName, workflows.MergeInput{StagingPath: w.stagingURI})
			lw := startLiveWriterWith(t, w.mainURI, w.tableOptions(lake.RoleMain), rows, per, every, stop)
			var mr workflows.MergeResult
			err := run.Get(t.Context(), &mr)
			close(stop)
			<-lw.done
			if err != nil {
				t.Fatalf("merge beside a live writer: %v", err)
			}
			if lw.err != nil {
				t.Fatalf("live writer: %v", lw.err)
			}
			o.figure("%d writer commits (%d rows) during a merge of %d batches; main went from version %d to %d",
				lw.commits, lw.written, mr.Batches, before, w.version(w.mainURI, lake.RoleMain))
			if lw.commits < 3 {
				t.Fatalf("only %d writer commits landed during the merge: no race was tested", lw.commits)
			}
			// The writer's own keys (new_keys) among the rows it wrote
			// before the merge ended.
			extra := map[string]map[uint64]bool{}
			for _, r := range rows[:lw.written] {
				if mode == "new_keys" {
					if extra[r.SourceURL] == nil {
						extra[r.SourceURL] = map[uint64]bool{}
					}
					extra[r.SourceURL][r.CertIndex] = true
				}
			}
			if mr.TotalStagingRows != want || mr.TotalInserted+mr.TotalSkipped != want || !mr.StagingRetired {
				t.Fatalf("merge result = %+v, want %d staging rows = inserted + skipped, staging retired", mr, want)
			}
			if mode == "new_keys" && mr.TotalInserted != want {
				t.Fatalf("merge inserted %d, want %d (the writer's keys are its own)", mr.TotalInserted, want)
			}

			mainDir := w.download("main")
			got := w.keys(mainDir)
			writerLate := 0
			for k, cs := range duplicateCopies(t, mainDir) {
				// A copy the writer added after the merge's is the
				// writer's own duplicate (the ingester does not read main);
				// a merge copy added after any other copy is a merge bug.
				sort.Slice(cs, func(i, j int) bool { return cs[i].version < cs[j].version })
				for _, c := range cs[1:] {
					if !c.writer {
						t.Errorf("the merge added %s at version %d although main held it since version %d", k, c.version, cs[0].version)
					}
				}
				if mode == "new_keys" {
					t.Errorf("%s held %d times in main", k, len(cs))
				}
				if len(cs) == 2 && cs[1].writer && !cs[0].writer {
					writerLate++
				}
			}
			for _, l := range w.sc.Logs {
				m := got[l.Source.URL]
				for i := uint64(0); i < l.Entries; i++ {
					if m[i] == 0 {
						t.Errorf("%s: key %d missing from main", l.Source.URL, i)
					}
				}
				for i := range m {
					if i >= l.Entries && !extra[l.Source.URL][i] {
						t.Errorf("%s: unexpected key %d in main", l.Source.URL, i)
					}
				}
				for i := range extra[l.Source.URL] {
					if m[i] != 1 {
						t.Errorf("%s: writer key %d held %d times in main, want 1", l.Source.URL, i, m[i])
					}
				}
			}
			if t.Failed() {
				return
			}
			if mode == "new_keys" {
				o.check("every entry once in main and every one of the writer's %d rows once, main in the bucket", lw.written)
			} else {
				o.check("every entry in main; no key added by the merge while main already held it (%d keys appended by the writer after the merge had inserted them: the writer's own duplicates)", writerLate)
				o.figure("merge skipped %d staged keys the writer had appended first, inserted %d", mr.TotalSkipped, mr.TotalInserted)
			}
		})
	}
}

// TestReliabilityS3ServerRestart: the S3 server is killed in
// the middle of a backfill, and again in the middle of a merge, and comes
// back on the same address and data directory. While it is down the
// activities fail with retryable errors and Temporal retries them; both
// runs then complete exactly once.
//
// The worker's S3 client retries a failed request itself (10 attempts,
// backoff up to 10 s: a restart shorter than about a minute may cost only
// a pause). The worker is started with the standard AWS_MAX_ATTEMPTS=2, so
// that an outage of a few seconds outlasts the client's retries and the
// workflow level has to act.
func TestReliabilityS3ServerRestart(t *testing.T) {
	t.Parallel()
	o := report(t)
	w := newS3World(t, scenario.Options{Logs: twoLogs(3000, 2000), HoleEvery: 40})
	want := missingTotal(w.sc)
	slowFetch(w.cfg)
	w.cfg.Backfill.Window = 2
	w.cfg.Merge.BatchRows = 250
	w.cfg.Merge.Window = 1
	w.cfg.Lake.DuckDB.Threads = 1
	h := w.newHost(false)
	wp := w.startOn(h, "worker", "AWS_MAX_ATTEMPTS=2")

	// outage stops the server until Temporal has scheduled a retry of an
	// activity that failed for it, then starts it again.
	const refused = "connection refused"
	outage := func(what string) {
		w.srv.Stop()
		down := time.Now()
		var failure string
		waitFor(t, time.Minute, what+": an activity failed and is retried while the server is down", func() bool {
			for _, a := range w.pendingActivities() {
				// A failure of this outage: the server refused the
				// connection (other transient failures may come before).
				if a.attempt > 1 && strings.Contains(a.lastFailure, refused) {
					failure = a.activity + ": " + a.lastFailure
					return true
				}
			}
			return false
		})
		time.Sleep(time.Until(down.Add(3 * time.Second))) // down 3 s at least
		w.srv.Restart(0)
		o.figure("%s: server down %.1f s; a retried activity's last failure: %s", what, time.Since(down).Seconds(), firstLines(failure, 1))
		if strings.Contains(failure, w.srv.Secret) {
			t.Errorf("%s: an activity failure shows the secret key", what)
		}
	}

	run := w.start("backfill-restart", workflows.BackfillWorkflowName, workflows.BackfillInput{StagingPath: w.stagingURI})
	waitFor(t, 2*time.Minute, "a fifth of the rows staged", func() bool { return w.rowsIn(w.stagingURI, lake.RoleStaging) >= want/5 })
	outage("backfill")
	var res workflows.BackfillResult
	if err := run.Get(t.Context(), &res); err != nil {
		t.Fatalf("backfill across the restart: %v", err)
	}
	if res.RecordsWritten != want || res.LogsSucceeded != 2 || res.LogsFailed != 0 || len(res.FailedRanges) != 0 {
		t.Fatalf("backfill result = %+v, want %d records from 2 logs", res, want)
	}
	if err := w.sc.CheckStaging(w.keys(w.download("staging"))); err != nil {
		t.Fatalf("staging in the bucket after the restart: %v", err)
	}
	o.check("backfill completed across the restart: staging holds exactly the %d missing keys once each", want)
	byOutage := func() (n int) {
		for _, f := range w.failedAttempts() {
			if strings.Contains(f, refused) {
				n++
			}
		}
		return n
	}
	afterBackfill := byOutage()

	before := w.version(w.mainURI, lake.RoleMain)
	mrun := w.start("merge-restart", workflows.MergeWorkflowName, workflows.MergeInput{StagingPath: w.stagingURI})
	waitFor(t, 2*time.Minute, "a merge batch committed", func() bool { return w.version(w.mainURI, lake.RoleMain) > before })
	outage("merge")
	var mr workflows.MergeResult
	if err := mrun.Get(t.Context(), &mr); err != nil {
		t.Fatalf("merge across the restart: %v", err)
	}
	if mr.Batches < 3 {
		t.Errorf("the merge had %d batches: too few for the outage to fall between two", mr.Batches)
	}
	w.checkMergedOnce(o, mr)
	all := w.failedAttempts()
	total := byOutage()
	o.figure("activity attempts retried after the server refused connections: %d in the backfill, %d in the merge (%d retries in all)", afterBackfill, total-afterBackfill, len(all))
	if afterBackfill == 0 || total == afterBackfill {
		t.Errorf("activity retries for the outage: %d in the backfill, %d in the merge; want some in each", afterBackfill, total-afterBackfill)
	}
	for _, f := range all {
		if !strings.Contains(f, refused) {
			t.Logf("retried after another failure: %s", f)
		}
	}
	wp.stop()
	checkHostClean(t, "worker", h)
}

// TestReliabilityS3DownAtWorkerStart: the S3 server is down when the worker
// starts and the backfill begins, so the worker's first check of the bucket
// cannot reach it. For a worker that is an outage, not a configuration
// error: the activity fails retryably (naming storage.s3.endpoint), the
// failed check is not remembered, and once the server is back on the same
// data directory the backfill completes exactly once.
func TestReliabilityS3DownAtWorkerStart(t *testing.T) {
	t.Parallel()
	o := report(t)
	w := newS3World(t, scenario.Options{Logs: twoLogs(1000, 500), HoleEvery: 40})
	want := missingTotal(w.sc)
	w.srv.Stop()
	down := time.Now()
	h := w.newHost(false)
	wp := w.startOn(h, "worker", "AWS_MAX_ATTEMPTS=2")

	run := w.start("backfill-s3-down", workflows.BackfillWorkflowName, workflows.BackfillInput{StagingPath: w.stagingURI})
	var failure string
	waitFor(t, time.Minute, "an activity failed for the unreachable endpoint and is retried", func() bool {
		for _, a := range w.pendingActivities() {
			if a.attempt > 1 && strings.Contains(a.lastFailure, "cannot reach") {
				failure = a.activity + ": " + a.lastFailure
				return true
			}
		}
		return false
	})
	time.Sleep(time.Until(down.Add(4 * time.Second)))
	w.srv.Restart(0)
	o.figure("server down %.1f s from before the worker started; a retried activity's last failure: %s", time.Since(down).Seconds(), firstLines(failure, 1))
	if !strings.Contains(failure, "storage.s3.endpoint") {
		t.Errorf("retried failure %q does not name storage.s3.endpoint", failure)
	}
	if strings.Contains(failure, w.srv.Secret) {
		t.Errorf("an activity failure shows the secret key")
	}

	var res workflows.BackfillResult
	if err := run.Get(t.Context(), &res); err != nil {
		t.Fatalf("backfill with the server down at worker start: %v", err)
	}
	if res.RecordsWritten != want || res.LogsSucceeded != 2 || res.LogsFailed != 0 || len(res.FailedRanges) != 0 {
		t.Fatalf("backfill result = %+v, want %d records from 2 logs", res, want)
	}
	if err := w.sc.CheckStaging(w.keys(w.download("staging"))); err != nil {
		t.Fatalf("staging in the bucket: %v", err)
	}
	o.check("backfill completed once the server was back: staging holds exactly the %d missing keys once each", want)
	wp.stop()
	checkHostClean(t, "worker", h)
}
