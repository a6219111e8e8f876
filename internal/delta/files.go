package delta

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The file-system calls a commit makes on the data files it adds, apart
// from the log itself. Each is one small helper so a storage layer can take
// it over: on an object store a PUT is durable when it returns (syncAddedDirs
// has nothing to do) and existence is a HEAD.

// checkAddedFilesExist refuses a commit that adds a data file which is not
// there (deleted by a vacuum that judged it abandoned, or never written) or
// whose size differs from the add's: committing it would break every reader
// of the table. Retrying cannot help, so the error wraps ErrInvalidAction.
func (t *Table) checkAddedFilesExist(ctx context.Context, actions []Action) error {
	for _, a := range actions {
		if a.Add == nil {
			continue
		}
		if t.local != "" {
			fi, err := os.Stat(localPath(t.root, a.Add.Path))
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return fmt.Errorf("%w: add %s: the data file does not exist (deleted as abandoned by a vacuum, or never written); write it again", ErrInvalidAction, a.Add.Path)
			case err != nil:
				return fmt.Errorf("add %s: %w", a.Add.Path, err)
			case !fi.Mode().IsRegular():
				return fmt.Errorf("%w: add %s: not a regular file", ErrInvalidAction, a.Add.Path)
			}
			if fi.Size() != a.Add.Size {
				return fmt.Errorf("%w: add %s: size %d in the add action, %d on disk", ErrInvalidAction, a.Add.Path, a.Add.Size, fi.Size())
			}
			continue
		} else {
			key, err := Key(a.Add.Path)
			if err != nil {
				return fmt.Errorf("%w: add %s: %w", ErrInvalidAction, a.Add.Path, err)
			}
			info, err := t.store.Stat(ctx, key)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return fmt.Errorf("%w: add %s: the data file does not exist in %s (deleted as abandoned by a vacuum, or never written); write it again", ErrInvalidAction, a.Add.Path, t.root)
			case err != nil:
				return fmt.Errorf("add %s: %w", a.Add.Path, err)
			}
			if info.Size != a.Add.Size {
				return fmt.Errorf("%w: add %s: size %d in the add action, %d stored", ErrInvalidAction, a.Add.Path, a.Add.Size, info.Size)
			}
		}
	}
	return nil
}

// syncAddedDirs fsyncs every directory between the added files and the
// table root, root included, each once. Writers fsync a data file's content
// but creating it (and its partition directory) changes the directories;
// without this, after a power loss the durable log could name a file whose
// directory entry was lost.
func (t *Table) syncAddedDirs(actions []Action) error {
	if t.noSync || t.local == "" {
		return nil // an object store's PUT is durable when it returns
	}
	done := map[string]bool{}
	for _, a := range actions {
		if a.Add == nil {
			continue
		}
		rel, ok := relUnder(t.root, localPath(t.root, a.Add.Path))
		if !ok {
			continue
		}
		for dir := pathDir(rel); ; dir = pathDir(dir) {
			if done[dir] {
				break
			}
			done[dir] = true
			if err := t.syncDir(filepath.Join(t.root, filepath.FromSlash(dir))); err != nil {
				return fmt.Errorf("fsync directory of %s: %w", a.Add.Path, err)
			}
			if dir == "." {
				break
			}
		}
	}
	return nil
}

// syncCreatedRoot fsyncs the table root and its parent after Create made
// them, so the new table's directory entries survive a power loss along
// with its first commit.
func (t *Table) syncCreatedRoot() error {
	if t.noSync {
		return nil
	}
	if err := t.syncDir(t.root); err != nil {
		return err
	}
	return t.syncDir(filepath.Dir(t.root))
}
