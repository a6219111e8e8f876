package keyindex

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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

// DirStore returns the Store of the local directory dir, typically
// filepath.Join(tableRoot, Dir). Writes go to a temporary file that is
// synced and renamed into place.
func DirStore(dir string) Store { return dirStore(dir) }

type dirStore string

func (d dirStore) List(ctx context.Context) ([]string, error) {
	ents, err := os.ReadDir(string(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list key index %s: %w", string(d), err)
	}
	var out []string
	for _, e := range ents {
		// Temporary files of writes in progress start with a dot.
		if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func (d dirStore) Read(ctx context.Context, name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(string(d), name))
}

func (d dirStore) Write(ctx context.Context, name string, data []byte) error {
	if err := os.MkdirAll(string(d), 0o755); err != nil {
		return fmt.Errorf("create key index directory: %w", err)
	}
	tmp, err := os.CreateTemp(string(d), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write key index segment: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(string(d), name))
	}
	if err != nil {
		return fmt.Errorf("write key index segment %s: %w", name, err)
	}
	return nil
}

func (d dirStore) Delete(ctx context.Context, name string) error {
	err := os.Remove(filepath.Join(string(d), name))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete key index segment %s: %w", name, err)
	}
	return nil
}

// TableStore returns the Store of the index of the local table at root.
func TableStore(root string) Store { return DirStore(filepath.Join(root, Dir)) }
