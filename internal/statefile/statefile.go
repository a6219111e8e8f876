// Package statefile reads the live ingester's state file, whose current_index
// per log is the backfill's ceiling. The format is section 7 of
// spec/record-format.md ("State file").
//
// Unlike the original, which ignored a malformed file and went on with an
// empty state (planning nothing, silently), every problem here is an error
// naming the file, the log and what to fix. The errors wrap ErrNotFound or
// ErrMalformed, so callers can tell them from transient I/O errors: neither
// gets better by retrying.
package statefile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	"github.com/certlake/certlake/internal/record"
)

// Version is the only state file version the live ingester writes.
const Version = 1

var (
	// ErrNotFound reports a state file that does not exist.
	ErrNotFound = errors.New("state file not found")
	// ErrMalformed reports a state file that is not version 1 JSON with every
	// required field.
	ErrMalformed = errors.New("malformed state file")
)

// State is the content of a state file.
type State struct {
	Version int
	// Logs is keyed by normalized log URL (record.NormalizeURL), whatever
	// spelling the file used.
	Logs map[string]LogState
}

// LogState is what the live ingester recorded for one log.
type LogState struct {
	// CurrentIndex is the next index the ingester will request: an exclusive
	// bound of what it has attempted, not a promise that every index below is
	// in the lake (quirk Q12).
	CurrentIndex uint64
	TreeSize     uint64 // tree size of the STH or checkpoint seen in the same loop
	LastSuccess  int64  // Unix seconds of the update
}

// fileLog mirrors a log entry; pointers tell a missing field from zero.
type fileLog struct {
	CurrentIndex *uint64 `json:"current_index"`
	TreeSize     *uint64 `json:"tree_size"`
	LastSuccess  *int64  `json:"last_success"`
}

type file struct {
	Version *int                        `json:"version"`
	Logs    map[string]*json.RawMessage `json:"logs"`
}

// Load reads and checks the state file at path. Unknown fields are ignored,
// as the ingester does.
func Load(path string) (State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, fmt.Errorf("state file %s: %w: set ct.state_file to the live ingester's state file (certstream-server-rust's certstream_state.json), or use tree-size ceilings (backfill.ceiling: tree_size)", path, ErrNotFound)
	}
	if err != nil {
		return State{}, fmt.Errorf("read state file %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse checks the state file content data; name identifies it in errors.
func Parse(name string, data []byte) (State, error) {
	malformed := func(format string, args ...any) error {
		return fmt.Errorf("state file %s: %w: "+format, append([]any{name, ErrMalformed}, args...)...)
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return State{}, malformed("%v; the live ingester writes a JSON object {\"version\": 1, \"logs\": {...}}", err)
	}
	switch {
	case f.Version == nil:
		return State{}, malformed("missing \"version\"; want 1")
	case *f.Version != Version:
		return State{}, malformed("version %d, want %d; this file was written by an ingester certlake does not know", *f.Version, Version)
	case f.Logs == nil:
		return State{}, malformed("missing \"logs\"; want an object keyed by log URL")
	}
	// Sorted keys make the error for a file with several problems stable.
	keys := make([]string, 0, len(f.Logs))
	for k := range f.Logs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	st := State{Version: *f.Version, Logs: make(map[string]LogState, len(f.Logs))}
	spelling := make(map[string]string, len(f.Logs))
	for _, k := range keys {
		raw := f.Logs[k]
		if raw == nil || bytes.Equal(*raw, []byte("null")) {
			return State{}, malformed("log %q is null; want {\"current_index\", \"tree_size\", \"last_success\"}", k)
		}
		var l fileLog
		if err := json.Unmarshal(*raw, &l); err != nil {
			return State{}, malformed("log %q: %v; current_index and tree_size are unsigned integers, last_success Unix seconds", k, err)
		}
		for _, m := range []struct {
			name    string
			missing bool
		}{{"current_index", l.CurrentIndex == nil}, {"tree_size", l.TreeSize == nil}, {"last_success", l.LastSuccess == nil}} {
			if m.missing {
				return State{}, malformed("log %q: missing %q; every log needs current_index, tree_size and last_success (fix or remove the entry)", k, m.name)
			}
		}
		url := record.NormalizeURL(k)
		if other, dup := spelling[url]; dup {
			return State{}, malformed("logs %q and %q are the same log %s; keep one entry", other, k, url)
		}
		spelling[url] = k
		st.Logs[url] = LogState{CurrentIndex: *l.CurrentIndex, TreeSize: *l.TreeSize, LastSuccess: *l.LastSuccess}
	}
	return st, nil
}

// Ceiling returns the exclusive ceiling of the log at url (any spelling that
// normalizes to the same URL): its current_index. The second result is false
// for a log the file does not list; such a log has no state-file ceiling.
func (s State) Ceiling(url string) (uint64, bool) {
	l, ok := s.Logs[record.NormalizeURL(url)]
	return l.CurrentIndex, ok
}
