package delta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/certlake/certlake/internal/storage"
)

// The log is the _delta_log directory itself (never recursed into). It holds
// 20-digit zero-padded commits NNN.json, classic checkpoints
// NNN.checkpoint.parquet, multi-part checkpoints
// NNN.checkpoint.OOOOOOOOOO.PPPPPPPPPP.parquet and the _last_checkpoint hint.
// Anything else (.crc files, .tmp/, our own ".<name>.<rand>.tmp" files,
// UUID-named v2 checkpoints, compactions) is ignored.

const (
	logDirName         = "_delta_log"
	lastCheckpointName = "_last_checkpoint"
)

func commitName(v int64) string     { return fmt.Sprintf("%020d.json", v) }
func checkpointName(v int64) string { return fmt.Sprintf("%020d.checkpoint.parquet", v) }

// checkpointRef is one complete checkpoint: one classic file or all parts of
// a multi-part one, in part order.
type checkpointRef struct {
	version int64
	files   []string
}

// listing is one directory listing of _delta_log.
type listing struct {
	commits     []int64         // ascending
	checkpoints []checkpointRef // complete ones, ascending by version
}

func (l *listing) latest() int64 {
	v := int64(-1)
	if n := len(l.commits); n > 0 {
		v = l.commits[n-1]
	}
	if n := len(l.checkpoints); n > 0 {
		v = max(v, l.checkpoints[n-1].version)
	}
	return v
}

func (l *listing) hasCommit(v int64) bool {
	_, ok := slices.BinarySearch(l.commits, v)
	return ok
}

func parseVersion(s string) (int64, bool) {
	if len(s) != 20 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

// listLog lists the log once. errors.Is(err, ErrNotATable) when it holds
// nothing. Only the log's own level is listed: keys under a deeper prefix
// (_delta_log/_commits/, .tmp/) are not commits.
func listLog(ctx context.Context, log storage.Store) (*listing, error) {
	names, err := logNames(ctx, log)
	if err != nil {
		return nil, err
	}
	l := &listing{}
	type multi struct {
		parts int
		files map[int]string
	}
	classic := map[int64]string{}
	multis := map[[2]int64]*multi{} // (version, parts)
	for _, name := range names {
		if len(name) < 25 {
			continue
		}
		v, ok := parseVersion(name[:20])
		if !ok {
			continue
		}
		rest := name[20:]
		switch {
		case rest == ".json":
			l.commits = append(l.commits, v)
		case rest == ".checkpoint.parquet":
			classic[v] = name
		case len(rest) == 41 && rest[:12] == ".checkpoint." && rest[22] == '.' && rest[33:] == ".parquet":
			o, err1 := strconv.Atoi(rest[12:22])
			p, err2 := strconv.Atoi(rest[23:33])
			if err1 != nil || err2 != nil || p < 1 || o < 1 || o > p {
				continue
			}
			k := [2]int64{v, int64(p)}
			m := multis[k]
			if m == nil {
				m = &multi{parts: p, files: map[int]string{}}
				multis[k] = m
			}
			m.files[o] = name
		}
	}
	slices.Sort(l.commits)
	seen := map[int64]bool{}
	for v, name := range classic {
		l.checkpoints = append(l.checkpoints, checkpointRef{version: v, files: []string{name}})
		seen[v] = true
	}
	for k, m := range multis {
		// PROTOCOL.md: readers must ignore multi-part checkpoints with
		// missing parts. A classic checkpoint of the same version wins.
		if seen[k[0]] || len(m.files) != m.parts {
			continue
		}
		ref := checkpointRef{version: k[0]}
		for o := 1; o <= m.parts; o++ {
			ref.files = append(ref.files, m.files[o])
		}
		l.checkpoints = append(l.checkpoints, ref)
		seen[k[0]] = true
	}
	slices.SortFunc(l.checkpoints, func(a, b checkpointRef) int { return int(a.version - b.version) })
	return l, nil
}

// logNames lists the names at the log's own level. A local log is read
// with one getdents pass and no stat per file (a log the live ingester
// writes to every few seconds holds a hundred thousand files).
func logNames(ctx context.Context, log storage.Store) ([]string, error) {
	if dir, ok := storage.LocalPath(log, ""); ok {
		f, err := os.Open(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%w: no %s in %s", ErrNotATable, logDirName, filepath.Dir(dir))
			}
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
		defer f.Close()
		names, err := f.Readdirnames(-1)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
		return names, nil
	}
	objs, err := log.List(ctx, "", "", 0)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", log.Location(), err)
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("%w: no %s in %s", ErrNotATable, logDirName, strings.TrimSuffix(log.Location(), "/"+logDirName))
	}
	names := make([]string, 0, len(objs))
	for _, o := range objs {
		if !strings.Contains(o.Key, "/") {
			names = append(names, o.Key)
		}
	}
	return names, nil
}

// hasLogFile reports whether the log holds at least one commit or
// checkpoint. Versions are zero-padded to 20 digits, so every commit and
// checkpoint starts with '0' (until version 10^19) and sorts first; a
// commit is among any few consecutive log files (a checksum or a
// checkpoint part per version at most), so one short listing answers.
func hasLogFile(ctx context.Context, log storage.Store) (bool, error) {
	if dir, ok := storage.LocalPath(log, ""); ok {
		// A local log is read in small batches, stopping at the first hit.
		f, err := os.Open(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return false, nil
			}
			return false, err
		}
		defer f.Close()
		for {
			batch, err := f.Readdirnames(64)
			for _, name := range batch {
				if isLogFile(name) {
					return true, nil
				}
			}
			if errors.Is(err, io.EOF) {
				return false, nil
			}
			if err != nil {
				return false, err
			}
		}
	}
	objs, err := log.List(ctx, "0", "", 100)
	if err != nil {
		return false, err
	}
	for _, o := range objs {
		if isLogFile(o.Key) {
			return true, nil
		}
	}
	return false, nil
}

// isLogFile reports whether name is a commit or a checkpoint.
func isLogFile(name string) bool {
	if len(name) < 25 || strings.Contains(name, "/") {
		return false
	}
	if _, ok := parseVersion(name[:20]); !ok {
		return false
	}
	rest := name[20:]
	return rest == ".json" || (len(rest) > 12 && rest[:12] == ".checkpoint." && path.Ext(rest) == ".parquet")
}

// lastCheckpoint is the _last_checkpoint hint ("Last Checkpoint File Schema").
type lastCheckpoint struct {
	Version     int64  `json:"version"`
	Size        int64  `json:"size"`
	Parts       *int   `json:"parts,omitempty"`
	SizeInBytes *int64 `json:"sizeInBytes,omitempty"`
	NumAddFiles *int64 `json:"numOfAddFiles,omitempty"`
}

func readLastCheckpoint(ctx context.Context, log storage.Store) (*lastCheckpoint, error) {
	b, err := storage.ReadAll(ctx, log, lastCheckpointName)
	if err != nil {
		return nil, err
	}
	var lc lastCheckpoint
	if err := json.Unmarshal(b, &lc); err != nil {
		return nil, fmt.Errorf("parse %s: %w", lastCheckpointName, err)
	}
	return &lc, nil
}

// commit is one parsed commit file.
type commit struct {
	version int64
	actions []Action        // CommitInfo is left nil; see info
	info    json.RawMessage // the commitInfo object, if any
	dv      bool            // an add or remove carries a deletion vector
}

// wireAction is how a log line is decoded: Action plus the fields this
// package does not expose but must notice.
type wireAction struct {
	Add        *wireAdd        `json:"add"`
	Remove     *wireRemove     `json:"remove"`
	MetaData   *Metadata       `json:"metaData"`
	Protocol   *Protocol       `json:"protocol"`
	Txn        *Txn            `json:"txn"`
	CommitInfo json.RawMessage `json:"commitInfo"`
}

type wireAdd struct {
	Add
	DeletionVector json.RawMessage `json:"deletionVector"`
}

type wireRemove struct {
	Remove
	DeletionVector json.RawMessage `json:"deletionVector"`
}

func isNull(r json.RawMessage) bool {
	return len(r) == 0 || string(r) == "null"
}

// hasDeletionVector reports whether a file action's deletionVector names
// one. delta-rs 0.22-0.24 wrote a non-null struct with empty fields for
// files without one; an empty storageType means none (PROTOCOL.md
// "Deletion Vector Descriptor": storageType is 'u', 'i' or 'p').
func hasDeletionVector(r json.RawMessage) bool {
	if isNull(r) {
		return false
	}
	var d struct {
		StorageType *string `json:"storageType"`
	}
	if json.Unmarshal(r, &d) != nil {
		return true // not an object: do not guess it away
	}
	return d.StorageType != nil && *d.StorageType != ""
}

// readCommit reads and parses commit v. A missing file is returned as an
// error wrapping fs.ErrNotExist; unparsable content wraps ErrCorrupt.
func readCommit(ctx context.Context, log storage.Store, v int64) (*commit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name := commitName(v)
	b, err := storage.ReadAll(ctx, log, name)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", name, err)
	}
	c, err := parseCommit(v, b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, name, err)
	}
	return c, nil
}

// parseCommit parses newline-delimited JSON actions. Blank lines are
// tolerated; unknown action types (cdc, domainMetadata, ...) are skipped as
// PROTOCOL.md "Protocol Evolution" requires.
func parseCommit(v int64, b []byte) (*commit, error) {
	c := &commit{version: v, actions: make([]Action, 0, bytes.Count(b, []byte{'\n'})+1)}
	for lineNo := 1; len(b) > 0; lineNo++ {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var w wireAction
		if err := json.Unmarshal(line, &w); err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		switch {
		case w.Add != nil:
			if w.Add.Path == "" {
				return nil, fmt.Errorf("line %d: add without path", lineNo)
			}
			if hasDeletionVector(w.Add.DeletionVector) {
				c.dv = true
			}
			a := w.Add.Add
			c.actions = append(c.actions, Action{Add: &a})
		case w.Remove != nil:
			if w.Remove.Path == "" {
				return nil, fmt.Errorf("line %d: remove without path", lineNo)
			}
			if hasDeletionVector(w.Remove.DeletionVector) {
				c.dv = true
			}
			r := w.Remove.Remove
			c.actions = append(c.actions, Action{Remove: &r})
		case w.MetaData != nil:
			c.actions = append(c.actions, Action{MetaData: w.MetaData})
		case w.Protocol != nil:
			c.actions = append(c.actions, Action{Protocol: w.Protocol})
		case w.Txn != nil:
			if w.Txn.AppID == "" {
				return nil, fmt.Errorf("line %d: txn without appId", lineNo)
			}
			c.actions = append(c.actions, Action{Txn: w.Txn})
		case !isNull(w.CommitInfo):
			c.info = w.CommitInfo
		}
	}
	return c, nil
}

// publicActions returns c's actions with CommitInfo decoded, for callers.
func (c *commit) publicActions() []Action {
	out := slices.Clone(c.actions)
	if !isNull(c.info) {
		var m map[string]any
		if json.Unmarshal(c.info, &m) == nil {
			out = append(out, Action{CommitInfo: m})
		}
	}
	return out
}
