package planning

import (
	"context"
	"errors"
	"log/slog"

	"github.com/certlake/certlake/internal/gaps"
	"github.com/certlake/certlake/internal/keyindex"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/storage"
)

// Tables are the tables a plan reads.
type Tables struct {
	MainPath    string // main; a missing table is an empty lake
	StagingPath string // staging whose rows count as present; "" for none
	// Workers read main's files the key index lacks; 0 means GOMAXPROCS.
	Workers int
	Logger  *slog.Logger // nil discards
	// Storage opens remote tables (nil: local paths, s3 with the AWS
	// defaults); Scratch holds local copies of their files (nil: the OS
	// temp dir).
	Storage *storage.Opener
	Scratch *lake.Scratch
}

// options are lake.Options of role with t's storage, scratch and logger.
func (t Tables) options(role lake.Role) lake.Options {
	return lake.Options{Role: role, AcceptUnmarked: role == lake.RoleStaging, Logger: t.Logger, Storage: t.Storage, Scratch: t.Scratch}
}

// Detected is a plan's missing ranges and what it read.
type Detected struct {
	Ranges []gaps.Range // sorted by (SourceURL, Start); never nil
	Stats  gaps.LakeStats
	// StagingUnmarked: staging lacks certlake's marker (another tool
	// wrote it); its rows count as present all the same.
	StagingUnmarked bool
}

// Ceilings turns targets into gap detection's logs.
func Ceilings(targets []Target) []gaps.LogCeiling {
	out := make([]gaps.LogCeiling, 0, len(targets))
	for _, t := range targets {
		out = append(out, gaps.LogCeiling{URL: t.URL, Ceiling: t.Ceiling})
	}
	return out
}

// Detect plans the missing ranges of logs over main ∪ staging with
// gaps.DetectLake (main's keys from its key index, brought up to date;
// see gaps.Detect for the modes and the ceiling rule).
func Detect(ctx context.Context, t Tables, logs []gaps.LogCeiling, opts gaps.Options) (Detected, error) {
	d := Detected{Ranges: []gaps.Range{}}
	main, err := lake.Open(ctx, t.MainPath, t.options(lake.RoleAny))
	if errors.Is(err, lake.ErrNotExist) {
		main, err = nil, nil
	}
	if err != nil {
		return d, err
	}
	lo := gaps.LakeOptions{Workers: t.Workers, Logger: t.Logger}
	var stagingFiles []lake.FileInfo
	if t.StagingPath != "" {
		staging, snap, files, err := lake.LiveFiles(ctx, t.StagingPath, t.options(lake.RoleStaging))
		if err != nil {
			return d, err
		}
		if staging != nil {
			// A remote table's files have no LocalPath: gap detection
			// reads their key columns from the store by ranged reads,
			// without copying them whole.
			stagingFiles, lo.StagingStore, d.StagingUnmarked = files, staging.Store(), !staging.Marked()
			if staging.Marked() {
				// Staging's own key index: each staging file is read
				// once. Not in a table another tool wrote.
				lo.StagingIndex, lo.StagingTableID = keyindex.FromStorage(staging.Store()), snap.Metadata.ID
			}
		}
	}
	d.Stats.StagingFiles = len(stagingFiles)
	if len(logs) == 0 {
		return d, nil
	}
	ranges, st, err := gaps.DetectLake(ctx, main, stagingFiles, logs, opts, lo)
	if err != nil {
		return d, err
	}
	d.Ranges, d.Stats = append(d.Ranges, ranges...), st
	return d, nil
}
