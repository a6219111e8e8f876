package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/coverage"
	"github.com/certlake/certlake/internal/gaps"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/options"
)

// runCoverage writes the lake's coverage as one self-contained HTML page:
// per log a bar over [0, ceiling) (in main, only in staging, missing, past
// the ceiling), its counts, its plan as starter gaps computes it, and its
// largest holes.
func coverageCommand(c *cli) *cobra.Command {
	cmd, fs := newCommand("coverage", "write the lake's coverage per log as one HTML page")
	cmd.GroupID = groupLocal
	pf := addPlanFlags(fs)
	out := fs.String("out", "", "HTML file to write (required)")
	bins := fs.Int("bins", 600, "bins per log bar")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if len(args) > 0 {
			return usageError("coverage takes no arguments, got %q", args)
		}
		if *out == "" {
			return usageError("coverage needs --out FILE.html, the page to write")
		}
		if *bins < 1 || *bins > 100_000 {
			return usageError("--bins must be between 1 and 100000, got %d", *bins)
		}
		cfg, err := loadConfig(fs)
		if err != nil {
			return err
		}
		v, err := pf.plan(ctx, cfg)
		if err != nil {
			return err
		}
		logs, err := coverageLogs(ctx, cfg, pf.staging(cfg), v)
		if err != nil {
			return err
		}
		title := fmt.Sprintf("certlake coverage of %s", cfg.Lake.MainPath)
		if v.StagingPath != "" {
			title += " and staging " + v.StagingPath
		}
		rep := coverage.Build(title+", "+time.Now().UTC().Format("2006-01-02 15:04 MST"), logs, coverage.Options{Bins: *bins})
		if err := writeFileAtomic(*out, func(f *os.File) error { return coverage.WriteHTML(f, rep) }); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "wrote %s: %d logs, %d in main, %d only in staging, %d missing below the ceilings, %d past them; %d planned in %d ranges\n",
			*out, len(rep.Logs), rep.Main, rep.Staged, rep.Missing, rep.PastCeiling, rep.PlannedEntries, rep.PlannedRanges)
		return nil
	}
	return cmd
}

// coverageLogs finds, per log of the plan v, what main and main ∪ staging
// lack over [0, ceiling) (gap detection from 0 with the frontier) and how
// many of their keys lie past the ceiling.
func coverageLogs(ctx context.Context, cfg *config.Config, staging string, v *gapsView) ([]coverage.Log, error) {
	mainFiles, _, err := liveFiles(ctx, cfg, cfg.Lake.MainPath, lake.RoleAny)
	if err != nil {
		return nil, err
	}
	var stagingFiles []lake.FileInfo
	if staging != "" {
		if stagingFiles, _, err = liveFiles(ctx, cfg, staging, lake.RoleStaging); err != nil {
			return nil, err
		}
	}
	mainKeys, err := lake.KeysSQL(mainFiles)
	if err != nil {
		return nil, err
	}
	allKeys, err := lake.UnionKeysSQL(mainFiles, stagingFiles)
	if err != nil {
		return nil, err
	}
	db, err := lake.OpenDB(ctx, options.DB(cfg))
	if err != nil {
		return nil, err
	}
	defer db.Close()

	var ceilings []gaps.LogCeiling
	for _, l := range v.Logs {
		ceilings = append(ceilings, gaps.LogCeiling{URL: l.SourceURL, Ceiling: l.Ceiling})
	}
	zero := uint64(0)
	everything := gaps.Options{From: &zero, IncludeFrontier: true}
	absMain, err := gaps.Detect(ctx, db, mainKeys, ceilings, everything)
	if err != nil {
		return nil, err
	}
	absAll := absMain
	if len(stagingFiles) > 0 {
		if absAll, err = gaps.Detect(ctx, db, allKeys, ceilings, everything); err != nil {
			return nil, err
		}
	}
	past, err := pastCeiling(ctx, db, allKeys, ceilings)
	if err != nil {
		return nil, err
	}
	byLog := func(rs []gaps.Range) map[string][]gaps.Range {
		m := map[string][]gaps.Range{}
		for _, r := range rs {
			m[r.SourceURL] = append(m[r.SourceURL], r)
		}
		return m
	}
	mainBy, allBy, planBy := byLog(absMain), byLog(absAll), byLog(v.Items)
	out := make([]coverage.Log, 0, len(v.Logs))
	for _, l := range v.Logs {
		out = append(out, coverage.Log{URL: l.SourceURL, Name: l.Name, Ceiling: l.Ceiling,
			AbsentMain: mainBy[l.SourceURL], AbsentAll: allBy[l.SourceURL], PastCeiling: past[l.SourceURL],
			Planned: planBy[l.SourceURL], PlannedRequests: l.Requests, ETASeconds: l.ETASeconds})
	}
	return out, nil
}

// pastCeiling counts each log's distinct keys at or above its ceiling.
func pastCeiling(ctx context.Context, db *sql.DB, keys string, logs []gaps.LogCeiling) (map[string]uint64, error) {
	out := map[string]uint64{}
	if len(logs) == 0 {
		return out, nil
	}
	var values []string
	var args []any
	for _, l := range logs {
		values = append(values, "(?, ?::UBIGINT)")
		args = append(args, l.URL, l.Ceiling)
	}
	rows, err := db.QueryContext(ctx, `WITH c(url, ceil) AS (VALUES `+strings.Join(values, ", ")+`)
SELECT k.source_url, count(DISTINCT k.cert_index) FROM `+keys+` AS k JOIN c ON k.source_url = c.url
WHERE k.cert_index >= 0 AND k.cert_index::UBIGINT >= c.ceil GROUP BY k.source_url`, args...)
	if err != nil {
		return nil, fmt.Errorf("count keys past the ceilings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var u string
		var n uint64
		if err := rows.Scan(&u, &n); err != nil {
			return nil, fmt.Errorf("count keys past the ceilings: %w", err)
		}
		out[u] = n
	}
	return out, rows.Err()
}

// writeFileAtomic writes path through a temporary file renamed into place,
// so a failed write leaves no half page.
func writeFileAtomic(path string, write func(*os.File) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
