package merge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/keyindex"
	"github.com/certlake/certlake/internal/lake"
)

// ErrIncomplete: Retire was asked to retire a plan some of whose batches
// are not in main.
var ErrIncomplete = errors.New("merge: not every batch is merged")

// RetireOptions tune Retire.
type RetireOptions struct {
	// Logger receives info logs; nil discards.
	Logger *slog.Logger
}

// RetireResult tells what Retire did to staging.
type RetireResult struct {
	RemovedFiles     int   `json:"removed_files"`     // files of snapshot V removed from staging's log
	DeletedFiles     int   `json:"deleted_files"`     // their data files deleted from disk (table kept)
	LiveFilesLeft    int   `json:"live_files_left"`   // files staged after V, still in staging
	DirectoryDeleted bool  `json:"directory_deleted"` // the staging directory is gone
	StagingVersion   int64 `json:"staging_version"`   // staging's version after the remove commit
}

// RetireAppID is the txn appId of the commit retiring a plan's files, so a
// retried Retire does not commit twice.
func RetireAppID(p Plan) string {
	return fmt.Sprintf("certlake-retire-%s-v%d", p.StagingTableID, p.StagingVersion)
}

// Retire retires the staging files a completed plan merged. It refuses
// (ErrIncomplete) unless main's snapshot holds the txn of every batch. It
// then commits to staging a remove for exactly the live files of snapshot
// V (a concurrent commit that removed any of them is a conflict), and:
//   - when staging has no live file left and carries the staging marker,
//     deletes the staging directory (renamed aside first, so a backfill
//     commit racing the deletion fails instead of being lost, and checked
//     again after the rename);
//   - otherwise (a backfill staged rows after V) keeps the table and deletes
//     only the data files of V, which are in main now.
//
// Nothing outside the staging directory is ever deleted, nor a directory
// holding anything a Delta table does not (lake.Delete). Retire is
// idempotent: retrying it after any step finishes the remaining ones.
func Retire(ctx context.Context, main, staging *lake.Table, p Plan, opts RetireOptions) (RetireResult, error) {
	var res RetireResult
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if staging == nil || p.StagingTableID == "" {
		return res, nil // nothing was staged
	}
	root := staging.Path()
	if err := ValidatePaths(main.Path(), root); err != nil {
		return res, fmt.Errorf("retire staging: %w", err)
	}
	if p.StagingPath != "" {
		a, err1 := canonical(p.StagingPath)
		b, err2 := canonical(root)
		if err1 != nil || err2 != nil || a != b {
			return res, fmt.Errorf("retire staging %s: the plan is of %s", root, p.StagingPath)
		}
	}
	if staging.Role() != lake.RoleStaging {
		return res, fmt.Errorf("retire staging: %w: %s", ErrNotStaging, root)
	}
	mainSnap, err := main.Snapshot(ctx)
	if err != nil {
		return res, fmt.Errorf("retire staging: %w", err)
	}
	var missing []int
	for _, b := range p.Batches {
		if mainSnap.Txns[TxnAppID(p.Ref(), b.ID)] < txnVersion {
			missing = append(missing, b.ID)
		}
	}
	if len(missing) > 0 {
		return res, fmt.Errorf("retire staging %s: %w: batches %v are not in main", root, ErrIncomplete, missing)
	}

	snapV, err := staging.SnapshotAt(ctx, p.StagingVersion)
	if err != nil {
		return res, fmt.Errorf("retire staging: %w", err)
	}
	if snapV.Metadata.ID != p.StagingTableID {
		return res, fmt.Errorf("retire staging: %w: table id is %s, the plan's is %s (the table was recreated)", ErrNotStaging, snapV.Metadata.ID, p.StagingTableID)
	}
	if err := checkPlanCovers(snapV, p); err != nil {
		return res, fmt.Errorf("retire staging %s: %w", root, err)
	}
	mine := make(map[string]bool, len(snapV.Files))
	now := time.Now().UnixMilli()
	actions := make([]delta.Action, 0, len(snapV.Files))
	for _, a := range snapV.Files {
		mine[a.Path] = true
		size := a.Size
		actions = append(actions, delta.Action{Remove: &delta.Remove{
			Path: a.Path, DeletionTimestamp: &now, DataChange: true,
			ExtendedFileMetadata: true, PartitionValues: a.PartitionValues, Size: &size,
		}})
	}
	if len(actions) > 0 {
		cr, err := staging.Delta().Commit(ctx, p.StagingVersion, actions, delta.CommitOptions{
			Operation: "DELETE",
			Txn:       &delta.Txn{AppID: RetireAppID(p), Version: 1},
			Check: func(winning []delta.Action) error {
				for _, a := range winning {
					if a.Remove != nil && mine[a.Remove.Path] {
						return fmt.Errorf("%w: a concurrent commit removed staged file %s", delta.ErrConflict, a.Remove.Path)
					}
					if a.MetaData != nil && a.MetaData.ID != p.StagingTableID {
						return fmt.Errorf("%w: a concurrent commit replaced the staging table", delta.ErrConflict)
					}
				}
				return nil
			},
		})
		if err != nil {
			return res, fmt.Errorf("retire staging %s: remove %d merged files: %w", root, len(actions), err)
		}
		res.StagingVersion = cr.Version
		if !cr.Skipped {
			res.RemovedFiles = len(actions)
		}
	}

	latest, err := staging.Snapshot(ctx)
	if err != nil {
		return res, fmt.Errorf("retire staging: %w", err)
	}
	res.StagingVersion = latest.Version
	res.LiveFilesLeft = len(latest.Files)
	for _, a := range latest.Files {
		if mine[a.Path] {
			return res, fmt.Errorf("retire staging %s: merged file %s is still live at version %d", root, a.Path, latest.Version)
		}
	}
	// An object store has no atomic rename to take the table out of
	// writers' way first: a remote staging table is kept (its log says it
	// is empty) and only the merged objects are deleted below. Deleting
	// the log object by object could race a backfill's next commit, which
	// would then sit on a deleted history: an unreadable table, its rows
	// lost (docs/object-storage.md).
	if res.LiveFilesLeft == 0 && staging.IsLocal() && latest.Metadata.Configuration[lake.ConfigRole] == string(lake.RoleStaging) {
		deleted, err := deleteStaging(ctx, root, latest.Version)
		if err != nil {
			return res, fmt.Errorf("retire staging %s: %w", root, err)
		}
		if deleted {
			res.DirectoryDeleted = true
			log.InfoContext(ctx, "staging retired: directory deleted", "staging", root, "removed_files", res.RemovedFiles)
			return res, nil
		}
		// Something was staged between the check and the rename: keep it.
		if s, err := staging.Snapshot(ctx); err == nil {
			res.StagingVersion, res.LiveFilesLeft = s.Version, len(s.Files)
		}
	}
	// Keep the table: newer rows live in it. The merged data files are in
	// main now; delete them from disk if they lie inside staging.
	for _, a := range snapV.Files {
		if !staging.IsLocal() {
			key, err := delta.Key(a.Path)
			if err != nil {
				continue // not under the staging root: not ours to delete
			}
			if err := staging.Store().Delete(ctx, key); err != nil {
				return res, fmt.Errorf("retire staging %s: delete merged file: %w", root, err)
			}
			res.DeletedFiles++
			continue
		}
		lp := snapV.LocalPath(a)
		if !within(filepath.Clean(lp), filepath.Clean(root)) {
			continue
		}
		if err := os.Remove(lp); err == nil {
			res.DeletedFiles++
		} else if !errors.Is(err, fs.ErrNotExist) {
			return res, fmt.Errorf("retire staging %s: delete merged file: %w", root, err)
		}
	}
	if !staging.IsLocal() && res.LiveFilesLeft == 0 {
		dropStagingIndex(ctx, staging, log)
	}
	log.InfoContext(ctx, "staging retired: table kept, newer files staged", "staging", root,
		"removed_files", res.RemovedFiles, "live_files_left", res.LiveFilesLeft)
	return res, nil
}

// dropStagingIndex deletes the key index gap detection keeps in a remote
// staging table whose files are all retired: its entries describe files
// that are gone. It is a cache, so a failure only leaves it (the next
// compaction of the index drops the entries) and is logged.
func dropStagingIndex(ctx context.Context, staging *lake.Table, log *slog.Logger) {
	ix := keyindex.FromStorage(staging.Store())
	names, err := ix.List(ctx)
	for _, n := range names {
		if err == nil {
			err = ix.Delete(ctx, n)
		}
	}
	if err != nil {
		log.WarnContext(ctx, "staging's key index not deleted", "staging", staging.Path(), "err", err)
	}
}

// checkPlanCovers checks that every non-empty live file of snapshot V is in
// one of the plan's batches: retiring a file that was not merged would
// lose its rows.
func checkPlanCovers(snapV *delta.Snapshot, p Plan) error {
	inPlan := map[string]bool{}
	for _, b := range p.Batches {
		for _, f := range b.Files {
			inPlan[f] = true
		}
	}
	for _, a := range snapV.Files {
		if !inPlan[a.Path] && statsBox(a).Rows != 0 {
			// A file without a row count in stats may be empty; the plan
			// read it and left it out only if it was.
			if statsBox(a).Rows < 0 {
				continue
			}
			return fmt.Errorf("staged file %s of version %d is in no batch of the plan", a.Path, p.StagingVersion)
		}
	}
	return nil
}

// deleteStaging deletes the staging table at root if it is still at version
// checked. It first renames the directory aside (atomic): a backfill
// commit racing the deletion then fails on the missing directory and is
// retried by its activity into a new table, instead of landing in a
// directory about to be deleted. If a commit landed between the check and
// the rename, the directory is renamed back and kept.
func deleteStaging(ctx context.Context, root string, checked int64) (bool, error) {
	aside := filepath.Join(filepath.Dir(root), "."+filepath.Base(root)+".retiring-"+uuid.NewString())
	if err := os.Rename(root, aside); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return true, nil // a retried Retire already deleted it
		}
		return false, fmt.Errorf("rename staging aside: %w", err)
	}
	dt, err := delta.Open(ctx, aside, delta.Options{})
	var snap *delta.Snapshot
	if err == nil {
		snap, err = dt.Snapshot(ctx)
	}
	if err != nil || snap.Version != checked || len(snap.Files) > 0 {
		if rerr := os.Rename(aside, root); rerr != nil {
			return false, fmt.Errorf("staging changed during retirement and could not be put back (it is at %s): %w", aside, rerr)
		}
		if err != nil {
			return false, fmt.Errorf("re-read staging before deleting it: %w", err)
		}
		return false, nil
	}
	if err := lake.Delete(ctx, aside, lake.DeleteOptions{StagingOnly: true}); err != nil {
		if rerr := os.Rename(aside, root); rerr != nil {
			return false, fmt.Errorf("delete staging: %w (and it could not be put back, it is at %s: %v)", err, aside, rerr)
		}
		return false, fmt.Errorf("delete staging: %w", err)
	}
	return true, nil
}
