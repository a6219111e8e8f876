package delta

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/certlake/certlake/internal/storage"
	"golang.org/x/sync/errgroup"
)

// Vacuum reclaims the files a crashed writer leaves in a table directory:
// data files written before a commit that never landed, and the scratch
// directories of certlake's merge. Readers never see them; they only take
// disk space. Unlike Delta's VACUUM it never deletes a file the log still
// names: time travel to every version the log can rebuild keeps working.

const (
	// DefaultVacuumRetention is the retention when VacuumOptions.Retention
	// is 0: the same default as Delta's VACUUM.
	DefaultVacuumRetention = 7 * 24 * time.Hour
	// MinVacuumRetention is the shortest retention Vacuum accepts. Fetch
	// and merge activities run for up to 2 h between writing a data file
	// and committing it, but age is judged by mtime alone: a writer held
	// up (retries, a paused worker) or a skewed clock can make a file in
	// flight look older than it is. 24 h leaves a wide margin; Commit
	// also refuses to add a file that is gone (checkAddedFilesExist).
	MinVacuumRetention = 24 * time.Hour
	// ScratchDirPrefix names the scratch directories certlake's merge
	// writes inside main (internal/merge); everything in them is
	// uncommitted.
	ScratchDirPrefix = "_certlake_merge_tmp-"
)

// ErrRetentionTooShort: VacuumOptions.Retention is under MinVacuumRetention.
var ErrRetentionTooShort = errors.New("delta: vacuum retention too short")

// VacuumOptions tunes Vacuum. The zero value deletes uncommitted files
// older than a week.
type VacuumOptions struct {
	// Retention: only files last modified more than this long ago are
	// deleted. 0 means DefaultVacuumRetention; under MinVacuumRetention is
	// refused with ErrRetentionTooShort.
	Retention time.Duration
	// DryRun lists what would be deleted and deletes nothing.
	DryRun bool
	// Logger gets one debug line per deleted file; nil discards.
	Logger *slog.Logger
	// Storage opens a root given as a URI; nil = the defaults.
	Storage *storage.Opener
}

// VacuumResult is what Vacuum deleted (or, in a dry run, would delete).
type VacuumResult struct {
	Version   int64         // the table version whose log protected files
	Retention time.Duration // the retention applied
	DryRun    bool
	// Files are the deleted files, sorted by path.
	Files []VacuumFile
	Count int   // len(Files)
	Bytes int64 // sum of their sizes
	// Dirs are the directories removed because the vacuum emptied them
	// (partition directories, scratch directories), relative and slash
	// separated, deepest first.
	Dirs []string
	// Young counts uncommitted files kept because they are newer than the
	// retention (possibly being written right now).
	Young int
}

// VacuumFile is one deleted file.
type VacuumFile struct {
	Path    string // relative to the table root, slash separated, not URI-encoded
	Size    int64
	ModTime time.Time
}

// Vacuum deletes, under root, the files no version of the table refers to
// and that were last modified more than opts.Retention ago. A file is kept
// when any of these names it: a live add of the latest snapshot, a
// tombstone (remove) the latest state still holds, an add or remove of any
// commit JSON still in _delta_log, or an add or remove of a checkpoint
// that time travel can start from. So only never-committed files go.
//
// The walk skips _delta_log and every file or directory whose name starts
// with '_' or '.' (the key index in _certlake_keyindex, checksum files,
// writers' temporary files), except the merge's ScratchDirPrefix
// directories at the top level: every file in those is a candidate, and
// the scratch directory is removed once empty. Outside scratch
// directories only data files (".parquet") are candidates. Partition
// directories the vacuum emptied are removed.
//
// errors.Is(err, ErrNotATable) when root is not a Delta table,
// ErrRetentionTooShort for a retention under MinVacuumRetention,
// ErrUnsupported for a table this package cannot write to (its files
// might be referenced in ways it does not understand). Nothing is deleted
// before the log has been read; on a later error the result holds what
// was deleted until then.
func Vacuum(ctx context.Context, root string, opts VacuumOptions) (VacuumResult, error) {
	res, err := vacuum(ctx, root, opts, time.Now())
	if err != nil {
		return res, fmt.Errorf("vacuum %s: %w", root, err)
	}
	return res, nil
}

func vacuum(ctx context.Context, root string, opts VacuumOptions, now time.Time) (VacuumResult, error) {
	retention := opts.Retention
	if retention == 0 {
		retention = DefaultVacuumRetention
	}
	res := VacuumResult{Version: -1, Retention: retention, DryRun: opts.DryRun}
	if retention < MinVacuumRetention {
		return res, fmt.Errorf("%w: retention %s is under %s: fetch and merge activities commit the files they wrote hours later when held up or retried, and a skewed mtime makes a new file look old, so younger uncommitted files may still be in flight",
			ErrRetentionTooShort, retention, MinVacuumRetention)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t, err := Open(ctx, root, Options{Logger: opts.Logger, Storage: opts.Storage})
	if err != nil {
		return res, err
	}
	// The cutoff is taken before the log is read: a file older than it
	// that a commit names must be in the log we read (writers commit
	// within MinVacuumRetention of writing), and commits landing during
	// the walk are read again below.
	cutoff := now.Add(-retention)
	keep, version, err := t.referencedPaths(ctx)
	if err != nil {
		return res, err
	}
	res.Version = version

	if t.local == "" {
		return t.vacuumObjects(ctx, res, cutoff, keep, opts.DryRun, log)
	}
	// Walk the directory a symlinked root points to.
	dirRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return res, err
	}
	w := &vacuumWalk{root: dirRoot, cutoff: cutoff, keep: keep, dirs: map[string]*walkDir{}}
	if err := w.walk(ctx); err != nil {
		return res, err
	}
	res.Young = w.young

	// Commits that landed while we walked: never delete what they name.
	if err := t.addNewerReferences(ctx, version, keep); err != nil {
		return res, err
	}
	cands := slices.DeleteFunc(w.cands, func(f VacuumFile) bool { return keep[f.Path] })
	slices.SortFunc(cands, func(a, b VacuumFile) int { return strings.Compare(a.Path, b.Path) })

	removed := map[string]bool{} // candidate files gone (deleted, or already gone)
	for _, f := range cands {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if !opts.DryRun {
			err := os.Remove(filepath.Join(dirRoot, filepath.FromSlash(f.Path)))
			if errors.Is(err, fs.ErrNotExist) {
				removed[f.Path] = true
				continue // someone else removed it; not ours to count
			}
			if err != nil {
				return res, fmt.Errorf("delete %s: %w", f.Path, err)
			}
			log.DebugContext(ctx, "delta: vacuum deleted", "root", root, "path", f.Path, "size", f.Size)
		}
		removed[f.Path] = true
		res.Files = append(res.Files, f)
		res.Bytes += f.Size
	}
	res.Count = len(res.Files)
	res.Dirs, err = w.removeDirs(removed, opts.DryRun)
	if err != nil {
		return res, err
	}
	log.InfoContext(ctx, "delta: vacuum", "root", root, "version", version, "files", res.Count, "bytes", res.Bytes,
		"dirs", len(res.Dirs), "young", res.Young, "dry_run", opts.DryRun)
	return res, nil
}

// referencedPaths returns every file path (relative to the root, slash
// separated, decoded) that the log refers to, and the latest version.
// It refuses tables this package may not write to.
func (t *Table) referencedPaths(ctx context.Context) (map[string]bool, int64, error) {
	l, err := listLog(ctx, t.log)
	if err != nil {
		return nil, 0, err
	}
	st, err := t.load(ctx, -1)
	if err != nil {
		return nil, 0, err
	}
	if err := st.check(); err != nil {
		return nil, 0, err
	}
	if err := checkWritable(*st.protocol, *st.metadata, st.schema); err != nil {
		return nil, 0, err
	}
	keep := map[string]bool{}
	t.addState(st, keep)

	// Every commit JSON: removes whose tombstones a checkpoint has
	// dropped still let time travel reach the versions before them.
	var commits []int64
	for _, v := range l.commits {
		if v <= st.version {
			commits = append(commits, v)
		}
	}
	if err := t.addCommits(ctx, commits, keep); err != nil {
		return nil, 0, err
	}

	// A checkpoint some commit after it is missing for (the log was
	// cleaned up) is the only record of the versions time travel can
	// start from it: what it names is kept too. The latest state covers
	// checkpoints after which every commit is still there.
	first := st.version + 1 // first version of the unbroken run of commits ending at the latest
	for first > 0 && l.hasCommit(first-1) {
		first--
	}
	for _, cp := range l.checkpoints {
		if cp.version+1 >= first || cp.version > st.version {
			continue
		}
		cs := newState()
		if err := readCheckpoint(ctx, t.log, cp, cs, nil); err != nil {
			return nil, 0, fmt.Errorf("read checkpoint %d (its files must be kept): %w", cp.version, err)
		}
		t.addState(cs, keep)
	}
	return keep, st.version, nil
}

// vacuumObjects is the vacuum of a table in an object store: the same
// candidates as the walk of a directory, found in one listing of the
// table's keys, deleted one object at a time. There are no directories to
// remove.
func (t *Table) vacuumObjects(ctx context.Context, res VacuumResult, cutoff time.Time, keep map[string]bool, dryRun bool, log *slog.Logger) (VacuumResult, error) {
	objs, err := t.store.List(ctx, "", "", 0)
	if err != nil {
		return res, err
	}
	var cands []VacuumFile
	for _, o := range objs {
		segs := strings.Split(o.Key, "/")
		scratch := len(segs) > 1 && strings.HasPrefix(segs[0], ScratchDirPrefix)
		hidden := slices.ContainsFunc(segs, func(s string) bool { return s[0] == '_' || s[0] == '.' })
		switch {
		case !scratch && hidden:
			// _delta_log, the key index, checksums, temporary files.
		case !scratch && path.Ext(o.Key) != ".parquet":
		case keep[o.Key]:
		case !o.ModTime.Before(cutoff):
			res.Young++
		default:
			cands = append(cands, VacuumFile{Path: o.Key, Size: o.Size, ModTime: o.ModTime})
		}
	}
	if err := t.addNewerReferences(ctx, res.Version, keep); err != nil {
		return res, err
	}
	cands = slices.DeleteFunc(cands, func(f VacuumFile) bool { return keep[f.Path] })
	for _, f := range cands {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if !dryRun {
			if err := t.store.Delete(ctx, f.Path); err != nil {
				return res, fmt.Errorf("delete %s: %w", f.Path, err)
			}
			log.DebugContext(ctx, "delta: vacuum deleted", "root", t.root, "path", f.Path, "size", f.Size)
		}
		res.Files = append(res.Files, f)
		res.Bytes += f.Size
	}
	res.Count = len(res.Files)
	log.InfoContext(ctx, "delta: vacuum", "root", t.root, "version", res.Version, "files", res.Count, "bytes", res.Bytes,
		"young", res.Young, "dry_run", dryRun)
	return res, nil
}

// addState adds the live files and tombstones of st to keep.
func (t *Table) addState(st *state, keep map[string]bool) {
	for p := range st.files {
		t.keepPath(p, keep)
	}
	for p := range st.tombstones {
		t.keepPath(p, keep)
	}
}

// addCommits adds the paths of the adds and removes of commits vs to keep,
// reading a few commits at a time.
func (t *Table) addCommits(ctx context.Context, vs []int64, keep map[string]bool) error {
	paths := make([][]string, len(vs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, v := range vs {
		g.Go(func() error {
			c, err := readCommit(gctx, t.log, v)
			if err != nil {
				return err
			}
			for _, a := range c.actions {
				switch {
				case a.Add != nil:
					paths[i] = append(paths[i], a.Add.Path)
				case a.Remove != nil:
					paths[i] = append(paths[i], a.Remove.Path)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, ps := range paths {
		for _, p := range ps {
			t.keepPath(p, keep)
		}
	}
	return nil
}

// addNewerReferences adds to keep the paths of the commits after version.
func (t *Table) addNewerReferences(ctx context.Context, version int64, keep map[string]bool) error {
	l, err := listLog(ctx, t.log)
	if err != nil {
		return err
	}
	var newer []int64
	for _, v := range l.commits {
		if v > version {
			newer = append(newer, v)
		}
	}
	for _, cp := range l.checkpoints {
		if cp.version > version && !slices.Contains(newer, cp.version) {
			// A checkpoint without its commit: a writer that cleans up
			// logs as fast as this is not something to race against.
			return fmt.Errorf("%w: checkpoint %d appeared without its commit during the vacuum; run it again", ErrConflict, cp.version)
		}
	}
	return t.addCommits(ctx, newer, keep)
}

// keepPath adds log path p, as a path relative to the root, to keep.
// Paths outside the root (absolute URIs elsewhere) cannot be under it. An
// absolute path is also compared with symlinks resolved, so a table opened
// through a symlink still keeps files its log names by their real path.
func (t *Table) keepPath(p string, keep map[string]bool) {
	if t.local == "" {
		if k, err := Key(p); err == nil {
			keep[k] = true
		}
		return
	}
	local := localPath(t.root, p)
	if rel, ok := relUnder(t.root, local); ok {
		keep[rel] = true
		return
	}
	realRoot, err1 := filepath.EvalSymlinks(t.root)
	realLocal, err2 := filepath.EvalSymlinks(local)
	if err1 != nil || err2 != nil {
		return // a missing file needs no keeping
	}
	if rel, ok := relUnder(realRoot, realLocal); ok {
		keep[rel] = true
	}
}

// relUnder returns p relative to root, slash separated, when p is under root.
func relUnder(root, p string) (string, bool) {
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

// vacuumWalk is one walk of the table directory.
type vacuumWalk struct {
	root   string
	cutoff time.Time
	keep   map[string]bool
	cands  []VacuumFile
	young  int
	dirs   map[string]*walkDir // every directory walked, by relative path
}

// walkDir is what the walk saw of one directory.
type walkDir struct {
	rel     string
	entries int  // entries of any kind
	scratch bool // inside (or is) a merge scratch directory
	old     bool // its own mtime is before the cutoff
}

func (w *vacuumWalk) walk(ctx context.Context) error {
	return filepath.WalkDir(w.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != w.root {
				return nil // removed while we walked (a merge cleaning its scratch)
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == w.root {
			w.dirs["."] = &walkDir{rel: "."}
			return nil
		}
		rel, err := filepath.Rel(w.root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		parentRel := pathDir(rel)
		parent := w.dirs[parentRel]
		if parent == nil {
			return fmt.Errorf("walk %s: directory %s not seen before its entries", w.root, parentRel)
		}
		parent.entries++
		name := d.Name()
		top := parentRel == "."
		scratch := parent.scratch || (top && d.IsDir() && strings.HasPrefix(name, ScratchDirPrefix))
		if !scratch && (name[0] == '_' || name[0] == '.') {
			// _delta_log, the key index, checksums, temporary files.
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			parent.entries--
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if err != nil {
			return err
		}
		old := info.ModTime().Before(w.cutoff)
		switch {
		case d.IsDir():
			w.dirs[rel] = &walkDir{rel: rel, scratch: scratch, old: old}
		case !info.Mode().IsRegular():
			// Symlinks, sockets: not something a writer leaves.
		case !scratch && filepath.Ext(name) != ".parquet":
			// Not a data file: not ours to judge.
		case w.keep[rel]:
		case !old:
			w.young++
		default:
			w.cands = append(w.cands, VacuumFile{Path: rel, Size: info.Size(), ModTime: info.ModTime()})
		}
		return nil
	})
}

// removeDirs removes (or, in a dry run, lists) the directories that hold
// nothing once the removed files are gone: directories the vacuum emptied,
// and in scratch directories also empty ones, when they have not changed
// since the cutoff (a merge may have just created one). The root stays.
func (w *vacuumWalk) removeDirs(removed map[string]bool, dryRun bool) ([]string, error) {
	// gone counts, per directory, the entries known to be gone.
	gone := map[string]int{}
	emptied := map[string]bool{} // directories that lost an entry to the vacuum
	for p := range removed {
		gone[pathDir(p)]++
		emptied[pathDir(p)] = true
	}
	dirs := make([]*walkDir, 0, len(w.dirs))
	for _, d := range w.dirs {
		if d.rel != "." {
			dirs = append(dirs, d)
		}
	}
	// Deepest first, so a parent is judged after its children.
	slices.SortFunc(dirs, func(a, b *walkDir) int {
		return cmp.Or(cmp.Compare(strings.Count(b.rel, "/"), strings.Count(a.rel, "/")), strings.Compare(a.rel, b.rel))
	})
	var out []string
	for _, d := range dirs {
		if d.entries-gone[d.rel] > 0 {
			continue
		}
		if !emptied[d.rel] && !(d.scratch && d.old) {
			continue
		}
		if !dryRun {
			err := os.Remove(filepath.Join(w.root, filepath.FromSlash(d.rel)))
			switch {
			case errors.Is(err, fs.ErrNotExist):
			case err != nil:
				// Not empty any more: a writer put a file there since the
				// walk. It stays, and so do its parents.
				if errors.Is(err, fs.ErrExist) { // ENOTEMPTY (or EEXIST) on Unix
					continue
				}
				return out, fmt.Errorf("remove directory %s: %w", d.rel, err)
			}
		}
		out = append(out, d.rel)
		parent := pathDir(d.rel)
		gone[parent]++
		emptied[parent] = true
	}
	return out, nil
}

// pathDir is path.Dir for the walk's relative paths ("." for top level).
func pathDir(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return "."
}
