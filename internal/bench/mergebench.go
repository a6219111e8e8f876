package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/lake/laketest"
	"github.com/certlake/certlake/internal/merge"
)

// mergeRun is what one merge child reports, plus what the parent measured.
type mergeRun struct {
	merge.Totals
	Seconds float64 `json:"seconds"`
	Batches int     `json:"batches"`
	// MaxRSS is the child's own peak resident set (VmHWM, read by the child
	// at its end), in bytes. Not rusage maxrss: Linux charges a child with
	// its parent's peak from before the exec.
	MaxRSS int64   `json:"max_rss_bytes"`
	CPU    float64 `json:"-"` // user + system seconds of the child
	Main   digest  `json:"-"`
}

func (r mergeRun) wall() time.Duration { return time.Duration(r.Seconds * float64(time.Second)) }

// runMergeChild runs one merge ("certlake" or "reference") of d in a child
// process, on its own copy of the tables, and digests the resulting main.
func (b *bench) runMergeChild(ctx context.Context, d dataset, mode string) (mergeRun, error) {
	var res mergeRun
	runs := filepath.Join(b.dir, "runs")
	if err := os.MkdirAll(runs, 0o755); err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp(runs, "merge-"+mode+"-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	m, st := filepath.Join(dir, "main"), filepath.Join(dir, "staging")
	if err := laketest.CloneTable(d.mainPath, m); err != nil {
		return res, err
	}
	if err := laketest.CloneTable(d.stagingPath, st); err != nil {
		return res, err
	}
	exe, err := os.Executable()
	if err != nil {
		return res, err
	}
	args := []string{"-child", "merge-" + mode, "-child-main", m, "-child-staging", st}
	if b.opts.verbose {
		args = append(args, "-v")
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	if err := cmd.Start(); err != nil {
		return res, err
	}
	found := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "BENCH-RESULT "); ok {
			if err := json.Unmarshal([]byte(rest), &res); err != nil {
				return res, err
			}
			found = true
		}
	}
	if err := cmd.Wait(); err != nil || !found {
		return res, fmt.Errorf("%s merge child: %v (result found: %v)", mode, err, found)
	}
	res.CPU = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	if res.Main, err = digestTable(ctx, m); err != nil {
		return res, err
	}
	if res.Inserted+res.Skipped != res.StagingRows {
		return res, fmt.Errorf("%w: %s merge: inserted %d + skipped %d != staging rows %d",
			errAssertion, mode, res.Inserted, res.Skipped, res.StagingRows)
	}
	if res.Main.Rows != res.Main.Keys {
		return res, fmt.Errorf("%w: %s merge: main holds %d rows for %d keys (duplicates)",
			errAssertion, mode, res.Main.Rows, res.Main.Keys)
	}
	return res, nil
}

// childMerge is the child side of runMergeChild.
func childMerge(ctx context.Context, mode string, a childArgs, verbose bool) error {
	var res mergeRun
	start := time.Now()
	switch mode {
	case "certlake":
		var log *slog.Logger
		if verbose { // phase timings of every batch
			log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		r, err := merge.Merge(ctx, a.mainPath, a.stagingPath, merge.Options{Logger: log})
		if err != nil {
			return err
		}
		res.Totals, res.Batches = r.Totals, r.Batches
	case "reference":
		mt, err := lake.Open(ctx, a.mainPath, lake.Options{})
		if err != nil {
			return err
		}
		st, err := lake.Open(ctx, a.stagingPath, lake.Options{})
		if err != nil {
			return err
		}
		if res.Totals, err = merge.MergeReference(ctx, mt, st, merge.DBOptions{}); err != nil {
			return err
		}
		res.Batches = int((res.StagingRows + merge.ReferenceBatchRows - 1) / merge.ReferenceBatchRows)
	default:
		return fmt.Errorf("unknown merge mode %q", mode)
	}
	res.Seconds = time.Since(start).Seconds()
	if hwm, err := laketest.PeakRSS(); err == nil {
		res.MaxRSS = hwm
	}
	out, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Printf("BENCH-RESULT %s\n", out)
	return nil
}

// mergeItem is item 2: the merge at 1x main, certlake against the reference.
func (b *bench) mergeItem(ctx context.Context) error {
	d, err := b.ensure(ctx, 1)
	if err != nil {
		return err
	}
	cl, err := b.runMergeChild(ctx, d, "certlake")
	if err != nil {
		return err
	}
	b.merge1x = &cl
	if b.opts.noRefMerge {
		b.table.add(row{
			what:     fmt.Sprintf("merge, %s staging rows into %s main", count(d.stagingRows), count(d.mainRows)),
			certlake: secs(cl.wall()), reference: "not run (-no-reference-merge)", target: ">= 10x faster", result: "not measured",
		})
		b.table.add(row{what: "merge: CPU time (all threads)", certlake: fmt.Sprintf("%.2f s", cl.CPU)})
		b.table.add(row{what: "merge: peak RSS", certlake: mib(cl.MaxRSS), target: "certlake <= 2048 MiB", result: passIf(cl.MaxRSS <= 2<<30)})
		b.table.add(row{what: "merge: no duplicates in main", certlake: fmt.Sprintf("%s rows, +%s, %d batches", count(cl.Main.Rows), count(cl.Inserted), cl.Batches), result: "ok"})
		return nil
	}
	ref, err := b.runMergeChild(ctx, d, "reference")
	if err != nil {
		return err
	}
	ratio := ref.Seconds / cl.Seconds
	b.table.add(row{
		what:     fmt.Sprintf("merge, %s staging rows into %s main", count(d.stagingRows), count(d.mainRows)),
		certlake: secs(cl.wall()), reference: secs(ref.wall()), ratio: times(ratio),
		target: ">= 10x faster", result: passIf(ratio >= 10),
	})
	b.table.add(row{
		what:     "merge: CPU time (all threads)",
		certlake: fmt.Sprintf("%.2f s", cl.CPU), reference: fmt.Sprintf("%.2f s", ref.CPU), ratio: times(ref.CPU / cl.CPU),
	})
	b.table.add(row{
		what:     "merge: peak RSS",
		certlake: mib(cl.MaxRSS), reference: mib(ref.MaxRSS), ratio: times(float64(ref.MaxRSS) / float64(cl.MaxRSS)),
		target: "certlake <= 2048 MiB", result: passIf(cl.MaxRSS <= 2<<30),
	})
	same := cl.Main == ref.Main && cl.Totals == ref.Totals
	b.table.add(row{
		what:      "merge: identical main, no duplicates",
		certlake:  fmt.Sprintf("%s rows, +%s, %d batches", count(cl.Main.Rows), count(cl.Inserted), cl.Batches),
		reference: fmt.Sprintf("%s rows, +%s, %d batches", count(ref.Main.Rows), count(ref.Inserted), ref.Batches),
		result:    map[bool]string{true: "ok", false: "FAIL"}[same],
	})
	if !same {
		return fmt.Errorf("%w: certlake main %+v totals %+v, reference main %+v totals %+v", errAssertion,
			cl.Main, cl.Totals, ref.Main, ref.Totals)
	}
	return nil
}

// runChild dispatches the hidden -child modes.
func runChild(ctx context.Context, o options) error {
	switch {
	case strings.HasPrefix(o.child, "merge-"):
		return childMerge(ctx, strings.TrimPrefix(o.child, "merge-"), o.args, o.verbose)
	case o.child == "serve-log":
		return childServeLog(ctx, o.args, o.seed)
	}
	return fmt.Errorf("unknown child mode %q", o.child)
}
