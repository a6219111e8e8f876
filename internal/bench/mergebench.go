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

	"github.com/certlake/certlake/internal/keyindex"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/lake/laketest"
	"github.com/certlake/certlake/internal/merge"
	"github.com/certlake/certlake/internal/reference"
)

// mergeRun is what one merge child reports, plus what the parent measured.
type mergeRun struct {
	merge.Totals
	Seconds float64 `json:"seconds"`
	Batches int     `json:"batches"`
	// MaxRSS is the child's own peak resident set (VmHWM, read by the child
	// at its end), in bytes. Not rusage maxrss: Linux charges a child with
	// its parent's peak from before the exec.
	MaxRSS int64 `json:"max_rss_bytes"`
	// Index is what merge.IndexMain did (modes certlake*, index).
	Index merge.IndexResult `json:"index"`
	CPU   float64           `json:"-"` // user + system seconds of the child
	Main  digest            `json:"-"`
}

func (r mergeRun) wall() time.Duration { return time.Duration(r.Seconds * float64(time.Second)) }

// Merge child modes.
const (
	// certlake's merge with main's key index as the previous merge left
	// it (the steady state of a nightly merge).
	modeWarm = "certlake"
	// certlake's merge of a main that has no key index yet (the first
	// merge: it indexes every main file first).
	modeCold = "certlake-cold"
	// The original's approach.
	modeReference = "reference"
	// Only merge.IndexMain on a main without index (its cost alone).
	modeIndex = "index"
)

// runMergeChild runs one merge (a mode above) of d in a child process, on
// its own copy of the tables, and digests the resulting main. Every mode
// but modeWarm starts from a main without key index.
func (b *bench) runMergeChild(ctx context.Context, d dataset, mode string) (mergeRun, error) {
	if mode == modeWarm {
		if err := b.ensureIndex(ctx, d); err != nil {
			return mergeRun{}, err
		}
	}
	var res mergeRun
	dir, err := b.runDir("merge-" + mode + "-")
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
	if mode != modeWarm {
		if err := os.RemoveAll(filepath.Join(m, keyindex.Dir)); err != nil {
			return res, err
		}
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
	if d.narrow {
		// Digesting a billion keys takes longer than the merge; the
		// caller checks the counts instead.
		if res.Inserted+res.Skipped != res.StagingRows {
			return res, fmt.Errorf("%w: %s merge: inserted %d + skipped %d != staging rows %d",
				errAssertion, mode, res.Inserted, res.Skipped, res.StagingRows)
		}
		return res, nil
	}
	if mode == modeIndex {
		// Keep the index with the generated data: the warm merges' clones
		// start from it, as a nightly merge starts from the last one's.
		return res, keepIndex(filepath.Join(m, keyindex.Dir), filepath.Join(d.mainPath, keyindex.Dir))
	}
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
	var log *slog.Logger
	if verbose { // phase timings of every batch
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	switch mode {
	case modeWarm, modeCold:
		// The options the worker's activities use: the defaults.
		r, err := merge.Merge(ctx, a.mainPath, a.stagingPath, merge.Options{Logger: log})
		if err != nil {
			return err
		}
		res.Totals, res.Batches, res.Index = r.Totals, r.Batches, r.Index
	case modeIndex:
		mt, err := lake.Open(ctx, a.mainPath, lake.Options{})
		if err != nil {
			return err
		}
		if res.Index, err = merge.IndexMain(ctx, mt, merge.IndexOptions{Logger: log}); err != nil {
			return err
		}
	case modeReference:
		mt, err := lake.Open(ctx, a.mainPath, lake.Options{})
		if err != nil {
			return err
		}
		st, err := lake.Open(ctx, a.stagingPath, lake.Options{})
		if err != nil {
			return err
		}
		if res.Totals, err = reference.Merge(ctx, mt, st, merge.DBOptions{}); err != nil {
			return err
		}
		res.Batches = int((res.StagingRows + reference.MergeBatchRows - 1) / reference.MergeBatchRows)
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

// ensureIndex gives d's main the key index a previous merge would have
// left, built (and measured) once by an index child.
func (b *bench) ensureIndex(ctx context.Context, d dataset) error {
	if _, err := os.Stat(filepath.Join(d.mainPath, keyindex.Dir)); err == nil {
		return nil
	}
	_, err := b.runMergeChild(ctx, d, modeIndex)
	return err
}

// keepIndex copies the index directory src to dst unless dst exists (via
// a temporary directory, so an interrupted copy leaves no partial index).
func keepIndex(src, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	tmp := dst + ".tmp"
	os.RemoveAll(tmp)
	if err := laketest.CloneTable(src, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// mergeItem is item 2: the merge at 1x main, certlake against the
// reference. certlake is measured in its steady state (main's key index as
// the last merge left it) and as a first merge (no index yet), and the
// index build on its own.
func (b *bench) mergeItem(ctx context.Context) error {
	d, err := b.ensure(ctx, 1)
	if err != nil {
		return err
	}
	ix, err := b.runMergeChild(ctx, d, modeIndex)
	if err != nil {
		return err
	}
	b.index1x = &ix
	cl, err := b.runMergeChild(ctx, d, modeWarm)
	if err != nil {
		return err
	}
	b.merge1x = &cl
	cold, err := b.runMergeChild(ctx, d, modeCold)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("merge, %s staging rows into %s main (key index current)", count(d.stagingRows), count(d.mainRows))
	if b.opts.noRefMerge {
		b.table.add(row{what: what, certlake: secs(cl.wall()), reference: "not run (-no-reference-merge)",
			target: ">= 10x faster, <= 15 s", result: "not measured; " + passIf(cl.Seconds <= 15)})
	} else {
		ref, err := b.runMergeChild(ctx, d, modeReference)
		if err != nil {
			return err
		}
		ratio := ref.Seconds / cl.Seconds
		b.table.add(row{what: what, certlake: secs(cl.wall()), reference: secs(ref.wall()), ratio: times(ratio),
			target: ">= 10x faster, <= 15 s", result: passIf(ratio >= 10 && cl.Seconds <= 15)})
		b.table.add(row{what: "merge: CPU time (all threads)",
			certlake: fmt.Sprintf("%.2f s", cl.CPU), reference: fmt.Sprintf("%.2f s", ref.CPU), ratio: times(ref.CPU / cl.CPU)})
		b.table.add(row{what: "merge: peak RSS",
			certlake: mib(cl.MaxRSS), reference: mib(ref.MaxRSS), ratio: times(float64(ref.MaxRSS) / float64(cl.MaxRSS)),
			target: "certlake <= 2048 MiB", result: passIf(cl.MaxRSS <= 2<<30)})
		same := cl.Main == ref.Main && cl.Totals == ref.Totals && cold.Main == ref.Main && cold.Totals == ref.Totals
		b.table.add(row{
			what:      "merge: identical main, no duplicates",
			certlake:  fmt.Sprintf("%s rows, +%s, %d batches", count(cl.Main.Rows), count(cl.Inserted), cl.Batches),
			reference: fmt.Sprintf("%s rows, +%s, %d batches", count(ref.Main.Rows), count(ref.Inserted), ref.Batches),
			result:    map[bool]string{true: "ok", false: "FAIL"}[same],
		})
		if !same {
			return fmt.Errorf("%w: certlake main %+v totals %+v, first merge main %+v totals %+v, reference main %+v totals %+v",
				errAssertion, cl.Main, cl.Totals, cold.Main, cold.Totals, ref.Main, ref.Totals)
		}
	}
	if b.opts.noRefMerge {
		b.table.add(row{what: "merge: CPU time (all threads)", certlake: fmt.Sprintf("%.2f s", cl.CPU)})
		b.table.add(row{what: "merge: peak RSS", certlake: mib(cl.MaxRSS), target: "certlake <= 2048 MiB", result: passIf(cl.MaxRSS <= 2<<30)})
		same := cold.Main == cl.Main && cold.Totals == cl.Totals
		b.table.add(row{what: "merge: no duplicates, first merge identical",
			certlake: fmt.Sprintf("%s rows, +%s, %d batches", count(cl.Main.Rows), count(cl.Inserted), cl.Batches),
			result:   map[bool]string{true: "ok", false: "FAIL"}[same]})
		if !same {
			return fmt.Errorf("%w: merge with index %+v %+v, first merge %+v %+v", errAssertion, cl.Main, cl.Totals, cold.Main, cold.Totals)
		}
	}
	b.table.add(row{
		what:     fmt.Sprintf("merge: first merge, main without key index (indexes %d files first)", cold.Index.Indexed),
		certlake: fmt.Sprintf("%s, %s", secs(cold.wall()), mib(cold.MaxRSS)), target: "<= 15 s", result: passIf(cold.Seconds <= 15),
	})
	b.table.add(row{
		what:     fmt.Sprintf("merge: key index build alone, %s main rows in %d files (once per file)", count(ix.Index.Rows), ix.Index.Indexed),
		certlake: fmt.Sprintf("%s, %s", secs(ix.wall()), mib(ix.MaxRSS)),
	})
	return nil
}

// runChild dispatches the hidden -child modes.
func runChild(ctx context.Context, o options) error {
	if o.cpuProfile != "" { // a child run by hand, to see where its time goes
		stop, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	switch {
	case strings.HasPrefix(o.child, "keys-"):
		return childKeys(ctx, strings.TrimPrefix(o.child, "keys-"), o.args)
	case strings.HasPrefix(o.child, "merge-"):
		return childMerge(ctx, strings.TrimPrefix(o.child, "merge-"), o.args, o.verbose)
	case o.child == "serve-log":
		return childServeLog(ctx, o.args, o.seed)
	}
	return fmt.Errorf("unknown child mode %q", o.child)
}
