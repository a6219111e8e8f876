package delta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/certlake/certlake/internal/storage"
	"github.com/google/uuid"
)

// Commits follow "Creation of New Log Entries" in PROTOCOL.md: version N+1
// must be created atomically and only if absent. On a local file system that
// is a hard link from a fully written temp file to the final name: link(2)
// fails with EEXIST when another writer got there first, and readers never
// see a partial commit. (Rename would silently replace the winner's commit;
// check-then-create would race.)

// maxCommitAttempts bounds the retries of one Commit under contention.
const maxCommitAttempts = 100

// CommitOptions describe one commit attempt.
type CommitOptions struct {
	Operation string // commitInfo.operation, e.g. "WRITE"
	// Txn, when set, is written as a txn action; if the table already holds
	// this AppID at Version or newer, the commit is skipped (idempotent).
	Txn *Txn
	// Check is called with the actions of every commit that landed after the
	// read version, before retrying at a newer version. Returning an error
	// aborts the commit with that error (wrap ErrConflict). It is called
	// once per batch of newly seen commits (their actions in version order,
	// each commit's commitInfo last), so every winning commit is passed
	// exactly once; it must not modify the actions.
	Check func(winning []Action) error
}

// CommitResult tells where a commit landed.
type CommitResult struct {
	Version int64 // the new version, or the table's version when Skipped
	Skipped bool  // true when Txn was already committed
}

// Commit writes actions as a new version after readVersion with
// put-if-absent, retrying at the next version when a concurrent writer won
// and the winning commits do not conflict.
//
// Conflict rules against commits that landed after readVersion: a winning
// metaData or protocol change, a winning remove of a file this commit also
// removes, a winning add of a path this commit adds, and any winner when this
// commit itself changes metaData or protocol give ErrConflict; a winning txn
// with the same appId at or above opts.Txn.Version makes the commit Skipped.
// Concurrent appends never conflict. A commitInfo (timestamp, operation,
// engineInfo "certlake", txnId) is always added; a CommitInfo action among
// actions contributes extra keys. Zero Add.ModificationTime,
// Remove.DeletionTimestamp and Txn.LastUpdated are set to now.
// Every CheckpointInterval versions the committer also writes a checkpoint;
// a failed checkpoint is logged and does not fail the commit.
func (t *Table) Commit(ctx context.Context, readVersion int64, actions []Action, opts CommitOptions) (CommitResult, error) {
	res, err := t.commit(ctx, readVersion, actions, opts)
	if err != nil {
		return res, fmt.Errorf("commit to %s: %w", t.root, err)
	}
	return res, nil
}

// headInfo is what a commit needs from the latest state.
type headInfo struct {
	version  int64
	protocol Protocol
	metadata Metadata
	schema   StructType
	txns     map[string]Txn // the table's txns for the appIds this commit carries
}

func (t *Table) head(ctx context.Context, appIDs []string) (headInfo, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.refreshLocked(ctx); err != nil {
		return headInfo{}, err
	}
	st := t.cur
	if err := st.check(); err != nil {
		return headInfo{}, err
	}
	h := headInfo{version: st.version, protocol: *st.protocol, metadata: *st.metadata, schema: st.schema, txns: map[string]Txn{}}
	for _, id := range appIDs {
		if tx, ok := st.txns[id]; ok {
			h.txns[id] = tx
		}
	}
	return h, nil
}

// txnAppIDs lists the appIds of the txns a commit carries: opts.Txn and
// any txn among the actions. Both get the same idempotence and conflict
// rules.
func txnAppIDs(actions []Action, opts CommitOptions) ([]string, error) {
	var ids []string
	for _, a := range actions {
		if a.Txn != nil {
			ids = append(ids, a.Txn.AppID)
		}
	}
	if opts.Txn != nil {
		if opts.Txn.AppID == "" {
			return nil, fmt.Errorf("%w: CommitOptions.Txn without AppID", ErrInvalidAction)
		}
		ids = append(ids, opts.Txn.AppID)
	}
	return ids, nil
}

func (t *Table) commit(ctx context.Context, readVersion int64, actions []Action, opts CommitOptions) (CommitResult, error) {
	if readVersion < 0 {
		return CommitResult{}, fmt.Errorf("%w: read version %d (a new table is made with Create)", ErrInvalidAction, readVersion)
	}
	appIDs, err := txnAppIDs(actions, opts)
	if err != nil {
		return CommitResult{}, err
	}
	h, err := t.head(ctx, appIDs)
	if err != nil {
		return CommitResult{}, err
	}
	if readVersion > h.version {
		return CommitResult{}, fmt.Errorf("%w: read version %d is newer than the latest version %d", ErrVersionNotFound, readVersion, h.version)
	}
	if err := checkWritable(h.protocol, h.metadata, h.schema); err != nil {
		return CommitResult{}, err
	}
	ours, extraInfo, err := prepareActions(actions, opts, h)
	if err != nil {
		return CommitResult{}, err
	}
	// Idempotence: the batch these txns stand for is already in the table.
	if skip, err := txnsApplied(ours, h.txns, "the table"); err != nil || skip {
		return CommitResult{Version: h.version, Skipped: skip}, err
	}
	if err := t.checkAddedFilesExist(ctx, ours); err != nil {
		return CommitResult{}, err
	}
	if err := t.syncAddedDirs(ours); err != nil {
		return CommitResult{}, err
	}
	op := opts.Operation
	if op == "" {
		op = "WRITE"
	}
	body, err := encodeCommit(ours, commitInfo(op, readVersion, extraInfo, ours))
	if err != nil {
		return CommitResult{}, err
	}

	// Commits between the caller's read and the head we just saw are
	// winners too.
	if readVersion < h.version {
		winners, err := t.readCommits(ctx, readVersion+1, h.version)
		if err != nil {
			return CommitResult{}, err
		}
		if skip, err := resolve(winners, ours, opts); err != nil || skip {
			return CommitResult{Version: h.version, Skipped: skip}, err
		}
	}

	v := h.version + 1
	for attempt := 1; ; attempt++ {
		ok, err := t.putIfAbsent(ctx, v, body)
		if err != nil {
			return CommitResult{}, err
		}
		if ok {
			t.offer([]*commit{{version: v, actions: ours}})
			if v%t.checkpointInterval(h.metadata.Configuration) == 0 {
				t.checkpointAt(ctx, v)
			}
			return CommitResult{Version: v}, nil
		}
		if attempt == maxCommitAttempts {
			return CommitResult{}, fmt.Errorf("%w: still losing the race for version %d after %d attempts", ErrConflict, v, attempt)
		}
		winners, err := t.readNewCommits(ctx, v)
		if err != nil {
			return CommitResult{}, err
		}
		t.offer(winners)
		if skip, err := resolve(winners, ours, opts); err != nil || skip {
			return CommitResult{Version: winners[len(winners)-1].version, Skipped: skip}, err
		}
		v = winners[len(winners)-1].version + 1
		if err := sleepJitter(ctx, attempt); err != nil {
			return CommitResult{}, err
		}
	}
}

// txnsApplied compares the txns of ours with have (the latest txn per appId
// of the table, or of winning commits, named by where). It is true when
// every one of ours is already at its version or newer there: the commit
// is a retry of one that landed. It is an ErrConflict when only some are,
// or when have holds one of our appIds at a lower version while where is
// winning commits: another writer is using the same appId concurrently,
// which the protocol treats as a conflict.
func txnsApplied(ours []Action, have map[string]Txn, where string) (bool, error) {
	var applied, pending []string
	for _, a := range ours {
		if a.Txn == nil {
			continue
		}
		got, ok := have[a.Txn.AppID]
		switch {
		case ok && got.Version >= a.Txn.Version:
			applied = append(applied, a.Txn.AppID)
		case ok && where != "the table":
			return false, fmt.Errorf("%w: %s committed txn %q at version %d while this commit carries version %d: two writers share one appId",
				ErrConflict, where, a.Txn.AppID, got.Version, a.Txn.Version)
		default:
			pending = append(pending, a.Txn.AppID)
		}
	}
	switch {
	case len(applied) == 0:
		return false, nil
	case len(pending) == 0:
		return true, nil
	}
	return false, fmt.Errorf("%w: %s already holds txn %q at this commit's version or newer but not txn %q: the commit would be applied in part",
		ErrConflict, where, applied[0], pending[0])
}

// prepareActions validates the caller's actions against the protocol and
// the table, and returns normalized copies (the caller's values are never
// retained) plus the caller's commitInfo keys.
func prepareActions(actions []Action, opts CommitOptions, h headInfo) ([]Action, map[string]any, error) {
	now := time.Now().UnixMilli()
	out := make([]Action, 0, len(actions)+1)
	var info map[string]any
	meta, proto := h.metadata, h.protocol
	var newMeta, newProto bool
	for i, a := range actions {
		n := 0
		for _, set := range []bool{a.Add != nil, a.Remove != nil, a.MetaData != nil, a.Protocol != nil, a.Txn != nil, a.CommitInfo != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return nil, nil, fmt.Errorf("%w: action %d sets %d fields, want exactly 1", ErrInvalidAction, i, n)
		}
		switch {
		case a.MetaData != nil:
			if newMeta {
				return nil, nil, fmt.Errorf("%w: more than one metaData action", ErrInvalidAction)
			}
			newMeta = true
			m := *a.MetaData
			normalizeMetadata(&m)
			meta = m
			out = append(out, Action{MetaData: &m})
		case a.Protocol != nil:
			if newProto {
				return nil, nil, fmt.Errorf("%w: more than one protocol action", ErrInvalidAction)
			}
			newProto = true
			p := *a.Protocol
			proto = p
			out = append(out, Action{Protocol: &p})
		case a.CommitInfo != nil:
			if info == nil {
				info = map[string]any{}
			}
			maps.Copy(info, a.CommitInfo)
		}
	}
	schema := h.schema
	if newMeta {
		var err error
		if schema, err = checkMetadata(meta); err != nil {
			return nil, nil, err
		}
	}
	if newMeta || newProto {
		if err := checkWritable(proto, meta, schema); err != nil {
			return nil, nil, err
		}
	}
	appendOnly := meta.Configuration["delta.appendOnly"] == "true"
	partCols := meta.PartitionColumns
	adds, removes, txns := map[string]bool{}, map[string]bool{}, map[string]bool{}
	addTxn := func(tx Txn) error {
		if tx.AppID == "" {
			return fmt.Errorf("%w: txn without appId", ErrInvalidAction)
		}
		if txns[tx.AppID] {
			return fmt.Errorf("%w: two txn actions for appId %q", ErrInvalidAction, tx.AppID)
		}
		txns[tx.AppID] = true
		if tx.LastUpdated == nil {
			tx.LastUpdated = ptr(now)
		}
		out = append(out, Action{Txn: &tx})
		return nil
	}
	for _, a := range actions {
		switch {
		case a.Add != nil:
			add := *a.Add
			if err := checkRelativePath(add.Path); err != nil {
				return nil, nil, fmt.Errorf("%w: add: %w", ErrInvalidAction, err)
			}
			if adds[add.Path] {
				return nil, nil, fmt.Errorf("%w: add %s twice", ErrInvalidAction, add.Path)
			}
			adds[add.Path] = true
			if add.Size < 0 {
				return nil, nil, fmt.Errorf("%w: add %s: negative size", ErrInvalidAction, add.Path)
			}
			if err := checkPartitionValues(add.PartitionValues, partCols); err != nil {
				return nil, nil, fmt.Errorf("%w: add %s: %w", ErrInvalidAction, add.Path, err)
			}
			if add.Stats != "" {
				if _, _, err := ParseStats(add.Stats); err != nil {
					return nil, nil, fmt.Errorf("%w: add %s: %w", ErrInvalidAction, add.Path, err)
				}
			}
			add.PartitionValues = maps.Clone(nonNilMap(add.PartitionValues))
			add.Tags = maps.Clone(add.Tags)
			if add.ModificationTime == 0 {
				add.ModificationTime = now
			}
			out = append(out, Action{Add: &add})
		case a.Remove != nil:
			r := *a.Remove
			if r.Path == "" {
				return nil, nil, fmt.Errorf("%w: remove without path", ErrInvalidAction)
			}
			if removes[r.Path] {
				return nil, nil, fmt.Errorf("%w: remove %s twice", ErrInvalidAction, r.Path)
			}
			removes[r.Path] = true
			if appendOnly && r.DataChange {
				// PROTOCOL.md "Append-only Tables": only dataChange=false
				// rearrangements may remove files.
				return nil, nil, fmt.Errorf("%w: remove %s with dataChange on an append-only table (delta.appendOnly=true)", ErrInvalidAction, r.Path)
			}
			if r.DeletionTimestamp == nil {
				r.DeletionTimestamp = ptr(now)
			}
			r.PartitionValues = maps.Clone(r.PartitionValues)
			out = append(out, Action{Remove: &r})
		case a.Txn != nil:
			if err := addTxn(*a.Txn); err != nil {
				return nil, nil, err
			}
		}
	}
	if opts.Txn != nil {
		if err := addTxn(*opts.Txn); err != nil {
			return nil, nil, err
		}
	}
	for p := range adds {
		if removes[p] {
			// PROTOCOL.md: a version holds at most one file action per path.
			return nil, nil, fmt.Errorf("%w: add and remove of %s in one commit", ErrInvalidAction, p)
		}
	}
	return out, info, nil
}

// checkPartitionValues requires exactly one value per partition column
// (PROTOCOL.md: partitionValues is required and keyed by partition column).
func checkPartitionValues(pv map[string]string, cols []string) error {
	if len(pv) != len(cols) {
		return fmt.Errorf("partition values %v do not match partition columns %v", pv, cols)
	}
	for _, c := range cols {
		if _, ok := pv[c]; !ok {
			return fmt.Errorf("no partition value for column %q", c)
		}
	}
	return nil
}

// commitInfo builds the provenance action ("Commit Provenance Information").
func commitInfo(op string, readVersion int64, extra map[string]any, actions []Action) map[string]any {
	info := map[string]any{}
	maps.Copy(info, extra)
	blind := true
	for _, a := range actions {
		if a.Remove != nil || a.MetaData != nil || a.Protocol != nil {
			blind = false
		}
	}
	info["timestamp"] = time.Now().UnixMilli()
	info["operation"] = op
	info["engineInfo"] = "certlake"
	info["clientVersion"] = "certlake"
	info["txnId"] = uuid.NewString()
	info["isBlindAppend"] = blind
	if _, ok := info["operationParameters"]; !ok {
		info["operationParameters"] = map[string]any{}
	}
	if readVersion >= 0 {
		info["readVersion"] = readVersion
	}
	return info
}

// encodeCommit renders one JSON action per line, commitInfo first.
func encodeCommit(actions []Action, info map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(Action{CommitInfo: info}); err != nil {
		return nil, fmt.Errorf("encode commitInfo: %w", err)
	}
	for _, a := range actions {
		if err := enc.Encode(a); err != nil {
			return nil, fmt.Errorf("encode action: %w", err)
		}
	}
	return buf.Bytes(), nil
}

// resolve applies the conflict rules to winning commits; skip means our txn
// was already committed by one of them.
func resolve(winners []*commit, ours []Action, opts CommitOptions) (skip bool, err error) {
	var ourMetaChange bool
	ourRemoves, ourAdds := map[string]bool{}, map[string]bool{}
	for _, a := range ours {
		switch {
		case a.MetaData != nil, a.Protocol != nil:
			ourMetaChange = true
		case a.Remove != nil:
			ourRemoves[a.Remove.Path] = true
		case a.Add != nil:
			ourAdds[a.Add.Path] = true
		}
	}
	winningTxns := map[string]Txn{}
	for _, w := range winners {
		for _, a := range w.actions {
			if a.Txn != nil {
				winningTxns[a.Txn.AppID] = *a.Txn
			}
		}
	}
	if skip, err := txnsApplied(ours, winningTxns, "a winning commit"); err != nil || skip {
		return skip, err
	}
	for _, w := range winners {
		name := commitName(w.version)
		if ourMetaChange {
			return false, fmt.Errorf("%w: %s landed while this commit changes metaData/protocol", ErrConflict, name)
		}
		for _, a := range w.actions {
			switch {
			case a.MetaData != nil:
				return false, fmt.Errorf("%w: %s changed the table metadata", ErrConflict, name)
			case a.Protocol != nil:
				return false, fmt.Errorf("%w: %s changed the table protocol", ErrConflict, name)
			case a.Remove != nil && ourRemoves[a.Remove.Path]:
				return false, fmt.Errorf("%w: %s also removed %s", ErrConflict, name, a.Remove.Path)
			case a.Add != nil && ourAdds[a.Add.Path]:
				return false, fmt.Errorf("%w: %s also added %s", ErrConflict, name, a.Add.Path)
			}
		}
	}
	if opts.Check != nil {
		var all []Action
		for _, w := range winners {
			all = append(all, w.publicActions()...)
		}
		if err := opts.Check(all); err != nil {
			return false, err
		}
	}
	return false, nil
}

// readCommits reads commits from..to, all of which must exist.
func (t *Table) readCommits(ctx context.Context, from, to int64) ([]*commit, error) {
	out := make([]*commit, 0, to-from+1)
	for v := from; v <= to; v++ {
		c, err := readCommit(ctx, t.log, v)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%w: %w", ErrVersionNotFound, err)
			}
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// readNewCommits reads commit from (which must exist: we just lost the race
// for it) and every commit after it until the first missing one.
func (t *Table) readNewCommits(ctx context.Context, from int64) ([]*commit, error) {
	var out []*commit
	for v := from; ; v++ {
		c, err := readCommit(ctx, t.log, v)
		if errors.Is(err, fs.ErrNotExist) && v > from {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

// putIfAbsent writes body as commit v unless it exists. false, nil means
// another writer created v first.
//
// A remote table's commit is the store's conditional put (If-None-Match:
// *, as delta-rs with conditional put); a local table's is a temp file
// hard-linked into place, as it always was.
func (t *Table) putIfAbsent(ctx context.Context, v int64, body []byte) (bool, error) {
	name := commitName(v)
	if t.local == "" {
		if t.beforeLink != nil {
			t.beforeLink(name)
		}
		err := t.log.PutIfAbsent(ctx, name, body)
		if errors.Is(err, storage.ErrExists) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("write %s: %w", name, err)
		}
		return true, nil
	}
	dir := filepath.Join(t.local, logDirName)
	// The temp name starts with '.', so log readers never take it for a
	// commit even if this process dies before removing it.
	tmp, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return false, fmt.Errorf("write %s: %w", name, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if _, err := tmp.Write(body); err != nil {
		tmp.Close()
		return false, fmt.Errorf("write %s: %w", name, err)
	}
	// The content must be durable before the name makes it visible.
	if err := t.sync(tmp); err != nil {
		tmp.Close()
		return false, fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("write %s: %w", name, err)
	}
	if t.beforeLink != nil {
		t.beforeLink(name)
	}
	if err := os.Link(tmpName, filepath.Join(dir, name)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("write %s: %w", name, err)
	}
	if err := t.syncDir(dir); err != nil {
		// The commit is visible and stays so; only its durability across a
		// power loss is in doubt.
		t.logger().Warn("delta: fsync of the log directory failed", "root", t.root, "version", v, "err", err)
	}
	return true, nil
}

func (t *Table) sync(f *os.File) error {
	if t.noSync {
		return nil
	}
	return f.Sync()
}

func (t *Table) syncDir(dir string) error {
	if t.noSync {
		return nil
	}
	if t.syncedDir != nil {
		t.syncedDir(dir)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// sleepJitter waits a small random time that grows with attempt, so
// writers that keep colliding spread out.
func sleepJitter(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(time.Millisecond) * int64(min(attempt, 20))))
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}
