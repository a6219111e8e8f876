package keyindex

import (
	"context"
	"fmt"
	"strings"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/storage"
)

// Store holds the index's segment files. It is the index's only access to
// storage, so that a table in object storage keeps its index in the same
// bucket. Names are flat (no slashes). Methods may be called concurrently.
type Store interface {
	// List returns the names of the stored segments, in no order; a
	// store that does not exist yet lists nothing (nil, nil).
	List(ctx context.Context) ([]string, error)
	// Read returns a segment's bytes.
	Read(ctx context.Context, name string) ([]byte, error)
	// Write stores a segment whole or not at all (readers never see a
	// partial segment). Names are unique: a name is written once.
	Write(ctx context.Context, name string, data []byte) error
	// Delete removes a segment; deleting a missing one is not an error.
	Delete(ctx context.Context, name string) error
}

// FromStorage returns the Store of the index of the table whose storage is
// s (the index lives under Dir, beside the data files).
func FromStorage(s storage.Store) Store { return tableStore{s} }

// TableStore returns the Store of the index of the local table at root.
func TableStore(root string) Store { return FromStorage(storage.NewDir(root)) }

type tableStore struct{ s storage.Store }

const prefix = Dir + "/"

func (t tableStore) List(ctx context.Context) ([]string, error) {
	infos, err := t.s.List(ctx, prefix, "", 0)
	if err != nil {
		return nil, fmt.Errorf("list key index of %s: %w", t.s.Location(), err)
	}
	var out []string
	for _, in := range infos {
		name := strings.TrimPrefix(in.Key, prefix)
		// Temporary files of writes in progress start with a dot.
		if !strings.Contains(name, "/") && !strings.HasPrefix(name, ".") {
			out = append(out, name)
		}
	}
	return out, nil
}

func (t tableStore) Read(ctx context.Context, name string) ([]byte, error) {
	return storage.ReadAll(ctx, t.s, prefix+name)
}

func (t tableStore) Write(ctx context.Context, name string, data []byte) error {
	if err := storage.PutBytes(ctx, t.s, prefix+name, data); err != nil {
		return fmt.Errorf("write key index segment %s: %w", name, err)
	}
	return nil
}

func (t tableStore) Delete(ctx context.Context, name string) error {
	if err := t.s.Delete(ctx, prefix+name); err != nil {
		return fmt.Errorf("delete key index segment %s: %w", name, err)
	}
	return nil
}

// ReadFromStorage is an UpdateOptions.Read for the data files of the table
// whose storage is s: a remote file's two key columns are read by ranged
// reads (the footer and the two column chunks of each row group), not
// downloaded whole; a local file is opened in place. A file's size, when
// known (> 0, as the Delta log records it), saves a Stat.
func ReadFromStorage(s storage.Store) func(context.Context, DataFile) (Keys, int64, error) {
	return func(ctx context.Context, f DataFile) (Keys, int64, error) {
		key, err := delta.Key(f.Path)
		if err != nil {
			return nil, 0, err
		}
		size := f.Size
		if size <= 0 {
			size = -1
		}
		r, _, err := storage.OpenSized(ctx, s, key, size)
		if err != nil {
			return nil, 0, err
		}
		defer r.Close()
		return ReadKeys(ctx, r)
	}
}
