package delta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/certlake/certlake/internal/storage"
)

// maxIssues caps how many problems Validate reports.
const maxIssues = 50

// Validate lints the table's log against the rules of PROTOCOL.md that a
// certlake writer must follow (it is `starter table check`): contiguous commits; one JSON action per line
// with exactly one action key; required fields present and typed (add.path,
// partitionValues, size, modificationTime, dataChange; remove.path,
// dataChange; metaData id, format, schemaString, partitionColumns,
// configuration; protocol versions; txn appId and version); add paths
// relative, clean and URI-encoded; partition values strings (or null) keyed
// by exactly the partition columns; stats that parse with numRecords; at most
// one metaData and protocol per commit; version 0 with both; a
// _last_checkpoint that names a checkpoint; and every checkpoint equal to the
// replay of the JSON commits up to it (when those exist). Temp files of
// interrupted writers are ignored, as readers ignore them.
//
// It returns nil when the log is clean, else the problems joined, each
// wrapping ErrCorrupt (ErrNotATable when there is no log).
func Validate(ctx context.Context, root string) error {
	return ValidateOptions(ctx, root, Options{})
}

// ValidateOptions is Validate for a root opened with opts (opts.Storage for
// a URI).
func ValidateOptions(ctx context.Context, root string, opts Options) error {
	t, err := newTable(ctx, root, opts)
	if err != nil {
		return err
	}
	dir := t.log
	l, err := listLog(ctx, dir)
	if err != nil {
		return err
	}
	if len(l.commits) == 0 && len(l.checkpoints) == 0 {
		return fmt.Errorf("%w: no commits in %s", ErrNotATable, t.logDir())
	}
	var issues []error
	report := func(format string, args ...any) {
		if len(issues) < maxIssues {
			issues = append(issues, fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...))
		}
	}

	// Contiguity: from the first listed commit to the last.
	if n := len(l.commits); n > 0 {
		first, last := l.commits[0], l.commits[n-1]
		if int64(n) != last-first+1 {
			for v := first; v <= last; v++ {
				if !l.hasCommit(v) {
					report("%s is missing (hole in the commit sequence)", commitName(v))
				}
			}
		}
		if first > 0 && !slices.ContainsFunc(l.checkpoints, func(c checkpointRef) bool { return c.version >= first-1 }) {
			report("commits start at %d with no checkpoint to start from", first)
		}
	}

	// Commits, in order, tracking the partition columns in effect.
	var partCols []string
	haveMeta := false
	for _, v := range l.commits {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := storage.ReadAll(ctx, dir, commitName(v))
		if err != nil {
			report("%s: %v", commitName(v), err)
			continue
		}
		if !haveMeta && v > 0 {
			// Commits start after a cleanup: take metadata from replay.
			if st, err := t.load(ctx, v-1); err == nil && st.metadata != nil {
				partCols, haveMeta = st.metadata.PartitionColumns, true
			}
		}
		lintCommit(commitName(v), v, b, &partCols, &haveMeta, report)
	}

	if lc, err := readLastCheckpoint(ctx, dir); err == nil {
		if !slices.ContainsFunc(l.checkpoints, func(c checkpointRef) bool { return c.version == lc.Version }) {
			report("%s names version %d, which has no complete checkpoint", lastCheckpointName, lc.Version)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		report("%v", err)
	}

	// Checkpoints must equal the replay of the commits they summarize.
	for _, cp := range l.checkpoints {
		if err := ctx.Err(); err != nil {
			return err
		}
		fromCP := newState()
		if err := readCheckpoint(ctx, dir, cp, fromCP, nil); err != nil {
			report("%v", err)
			continue
		}
		fromCP.version = cp.version
		if checkCoverage(l, -1, cp.version) != nil {
			continue // commits cleaned up: nothing to compare with
		}
		fromLog, err := replayCommits(ctx, dir, cp.version)
		if err != nil {
			report("%v", err)
			continue
		}
		if d := diffStates(fromCP, fromLog); d != "" {
			report("checkpoint %d differs from the replay of its commits: %s", cp.version, d)
		}
	}
	return errors.Join(issues...)
}

// replayCommits replays JSON commits 0..v, ignoring checkpoints.
func replayCommits(ctx context.Context, dir storage.Store, v int64) (*state, error) {
	st := newState()
	for i := int64(0); i <= v; i++ {
		c, err := readCommit(ctx, dir, i)
		if err != nil {
			return nil, err
		}
		st.apply(c)
	}
	return st, nil
}

// diffStates describes the first difference between two states ("" when
// equal). dataChange is not compared: it describes a commit, not state.
func diffStates(a, b *state) string {
	switch {
	case !reflect.DeepEqual(a.protocol, b.protocol):
		return fmt.Sprintf("protocol %+v vs %+v", a.protocol, b.protocol)
	case !reflect.DeepEqual(a.metadata, b.metadata):
		return fmt.Sprintf("metaData %+v vs %+v", a.metadata, b.metadata)
	case !maps.EqualFunc(a.txns, b.txns, func(x, y Txn) bool { return x.Version == y.Version }):
		return fmt.Sprintf("txns %v vs %v", a.txns, b.txns)
	case len(a.files) != len(b.files):
		return fmt.Sprintf("%d vs %d live files", len(a.files), len(b.files))
	}
	for p, fa := range a.files {
		fb, ok := b.files[p]
		if !ok {
			return fmt.Sprintf("file %s only in the checkpoint", p)
		}
		x, y := *fa, *fb
		x.DataChange, y.DataChange = false, false
		if len(x.Tags) == 0 && len(y.Tags) == 0 {
			x.Tags, y.Tags = nil, nil
		}
		if !reflect.DeepEqual(x, y) {
			return fmt.Sprintf("file %s: %+v vs %+v", p, x, y)
		}
	}
	return ""
}

// knownActions are the action keys a commit may carry. Those this package
// does not interpret are still valid protocol actions.
var knownActions = map[string]bool{
	"add": true, "remove": true, "metaData": true, "protocol": true, "txn": true,
	"commitInfo": true, "cdc": true, "domainMetadata": true,
}

func lintCommit(name string, v int64, b []byte, partCols *[]string, haveMeta *bool, report func(string, ...any)) {
	if len(b) == 0 {
		report("%s is empty", name)
		return
	}
	lines := bytes.Split(bytes.TrimSuffix(b, []byte{'\n'}), []byte{'\n'})
	var nMeta, nProto int
	adds, removes := map[string]bool{}, map[string]bool{}
	type pendingAdd struct {
		line int
		obj  map[string]any
	}
	var pending []pendingAdd
	for i, line := range lines {
		at := fmt.Sprintf("%s:%d", name, i+1)
		if len(bytes.TrimSpace(line)) == 0 {
			report("%s: blank line", at)
			continue
		}
		var action map[string]json.RawMessage
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&action); err != nil {
			report("%s: not a JSON object: %v", at, err)
			continue
		}
		if dec.More() {
			report("%s: more than one JSON value on the line", at)
			continue
		}
		if len(action) != 1 {
			report("%s: %d action keys %v, want exactly one", at, len(action), slices.Sorted(maps.Keys(action)))
			continue
		}
		for key, raw := range action {
			if !knownActions[key] {
				report("%s: unknown action %q", at, key)
				continue
			}
			var obj map[string]any
			d := json.NewDecoder(bytes.NewReader(raw))
			d.UseNumber()
			if err := d.Decode(&obj); err != nil || obj == nil {
				report("%s: %s is not an object", at, key)
				continue
			}
			chk := fieldChecker{at: at + ": " + key, obj: obj, report: report}
			switch key {
			case "add":
				p := chk.str("path", true)
				if p != "" {
					if err := checkRelativePath(p); err != nil {
						report("%s: %v", chk.at, err)
					}
					if adds[p] {
						report("%s: path %s added twice in one commit", chk.at, p)
					}
					adds[p] = true
				}
				chk.num("size", true, true)
				chk.num("modificationTime", true, false)
				chk.boolean("dataChange", true)
				chk.strMap("tags", false)
				if s := chk.str("stats", false); s != "" {
					if _, ok, err := ParseStats(s); err != nil {
						report("%s: %v", chk.at, err)
					} else if !ok {
						report("%s: stats without numRecords", chk.at)
					}
				}
				if _, ok := obj["deletionVector"]; ok && obj["deletionVector"] != nil {
					report("%s: deletion vector in a table without the deletionVectors feature", chk.at)
				}
				pending = append(pending, pendingAdd{i + 1, obj})
			case "remove":
				p := chk.str("path", true)
				if p != "" {
					if err := checkEncoded(p); err != nil {
						report("%s: %v", chk.at, err)
					}
					if removes[p] {
						report("%s: path %s removed twice in one commit", chk.at, p)
					}
					removes[p] = true
				}
				chk.boolean("dataChange", true)
				chk.num("deletionTimestamp", false, true)
				chk.num("size", false, true)
				if _, ok := obj["partitionValues"]; ok {
					chk.strMap("partitionValues", false)
				}
			case "metaData":
				nMeta++
				if chk.str("id", true) == "" {
					report("%s: empty id", chk.at)
				}
				if f, ok := obj["format"].(map[string]any); !ok {
					report("%s: missing format", chk.at)
				} else if p, ok := f["provider"].(string); !ok || p == "" {
					report("%s: format without provider", chk.at)
				}
				if s := chk.str("schemaString", true); s != "" {
					if _, err := ParseSchema(s); err != nil {
						report("%s: %v", chk.at, err)
					}
				}
				cols := chk.strList("partitionColumns", true)
				chk.strMap("configuration", true)
				*partCols, *haveMeta = cols, true
			case "protocol":
				nProto++
				chk.num("minReaderVersion", true, true)
				chk.num("minWriterVersion", true, true)
			case "txn":
				if chk.str("appId", true) == "" {
					report("%s: empty appId", chk.at)
				}
				chk.num("version", true, false)
				chk.num("lastUpdated", false, false)
			}
		}
	}
	if nMeta > 1 || nProto > 1 {
		report("%s: %d metaData and %d protocol actions, want at most one each", name, nMeta, nProto)
	}
	if v == 0 && (nMeta == 0 || nProto == 0) {
		report("%s: version 0 needs a protocol and a metaData action", name)
	}
	// Partition values are checked against the metadata in effect after
	// this commit's own metaData.
	for _, pa := range pending {
		chk := fieldChecker{at: fmt.Sprintf("%s:%d: add", name, pa.line), obj: pa.obj, report: report}
		pv := chk.strMap("partitionValues", true)
		if pv == nil || !*haveMeta {
			continue
		}
		keys := slices.Sorted(maps.Keys(pv))
		want := slices.Sorted(slices.Values(*partCols))
		if !slices.Equal(keys, want) {
			report("%s: partitionValues keys %v, want the partition columns %v", chk.at, keys, *partCols)
		}
	}
}

// fieldChecker checks the fields of one decoded action.
type fieldChecker struct {
	at     string
	obj    map[string]any
	report func(string, ...any)
}

func (c fieldChecker) get(k string, required bool) (any, bool) {
	v, ok := c.obj[k]
	if !ok || v == nil {
		if required {
			c.report("%s: missing required field %s", c.at, k)
		}
		return nil, false
	}
	return v, true
}

func (c fieldChecker) str(k string, required bool) string {
	v, ok := c.get(k, required)
	if !ok {
		return ""
	}
	s, isStr := v.(string)
	if !isStr {
		c.report("%s: %s is %T, want a string", c.at, k, v)
	}
	return s
}

func (c fieldChecker) num(k string, required, nonNegative bool) {
	v, ok := c.get(k, required)
	if !ok {
		return
	}
	n, isNum := v.(json.Number)
	if !isNum {
		c.report("%s: %s is %T, want a number", c.at, k, v)
		return
	}
	i, err := n.Int64()
	if err != nil {
		c.report("%s: %s = %s, want an integer", c.at, k, n)
	} else if nonNegative && i < 0 {
		c.report("%s: %s = %d, want >= 0", c.at, k, i)
	}
}

func (c fieldChecker) boolean(k string, required bool) {
	v, ok := c.get(k, required)
	if _, isBool := v.(bool); ok && !isBool {
		c.report("%s: %s is %T, want a boolean", c.at, k, v)
	}
}

// strMap checks a map of string (or null) values.
func (c fieldChecker) strMap(k string, required bool) map[string]any {
	v, ok := c.get(k, required)
	if !ok {
		return nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		c.report("%s: %s is %T, want an object", c.at, k, v)
		return nil
	}
	for mk, mv := range m {
		if _, isStr := mv.(string); mv != nil && !isStr {
			c.report("%s: %s[%q] is %T, want a string or null", c.at, k, mk, mv)
		}
	}
	return m
}

func (c fieldChecker) strList(k string, required bool) []string {
	v, ok := c.get(k, required)
	if !ok {
		return nil
	}
	l, isList := v.([]any)
	if !isList {
		c.report("%s: %s is %T, want an array", c.at, k, v)
		return nil
	}
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, isStr := e.(string)
		if !isStr {
			c.report("%s: %s has a %T element, want strings", c.at, k, e)
			continue
		}
		out = append(out, strings.Clone(s))
	}
	return out
}
