package delta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/certlake/certlake/internal/storage"
)

// Classic checkpoints ("Checkpoints" and "Checkpoint Schema" in PROTOCOL.md)
// are Parquet files with one nullable struct column per action type; each row
// sets exactly one of them. Readers here take only the columns they need and
// skip add.stats_parsed / partitionValues_parsed, which Spark and delta-rs
// may add.

// readCheckpoint applies every action in the checkpoint to st.
func readCheckpoint(ctx context.Context, log storage.Store, ref checkpointRef, st *state, trace func(string)) error {
	for _, name := range ref.files {
		if trace != nil {
			trace(name)
		}
		if err := readCheckpointFile(ctx, log, name, st); err != nil {
			return fmt.Errorf("read checkpoint %s: %w", name, err)
		}
	}
	return nil
}

var checkpointActions = map[string]bool{"add": true, "remove": true, "metaData": true, "protocol": true, "txn": true}

func readCheckpointFile(ctx context.Context, log storage.Store, name string, st *state) (err error) {
	f, _, err := storage.Open(ctx, log, name)
	if err != nil {
		return err
	}
	defer f.Close()
	// The parquet reader panics on some malformed files; a bad checkpoint
	// must come back as ErrCorrupt, not take the process down.
	rdr, err := func() (r *file.Reader, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("parquet: %v", p)
			}
		}()
		return file.NewParquetReader(f)
	}()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, storage.ErrUnavailable) || ctx.Err() != nil {
			return err // missing, or the store did not answer: not corrupt
		}
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	defer rdr.Close()
	// The parquet reader panics on some malformed files; a bad checkpoint
	// must come back as ErrCorrupt, not take the process down.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: parquet: %v", ErrCorrupt, r)
		}
	}()
	sc := rdr.MetaData().Schema
	// add.stats_parsed is read only when there is no add.stats column
	// (writers with delta.checkpoint.writeStatsAsJson=false); it is turned
	// back into a stats string.
	hasStats := false
	for i := 0; i < sc.NumColumns(); i++ {
		if p := sc.Column(i).ColumnPath(); len(p) == 2 && p[0] == "add" && p[1] == "stats" {
			hasStats = true
		}
	}
	var cols []int
	for i := 0; i < sc.NumColumns(); i++ {
		p := sc.Column(i).ColumnPath()
		if len(p) == 0 || !checkpointActions[p[0]] {
			continue
		}
		if len(p) > 1 && strings.HasSuffix(p[1], "_parsed") && !(p[0] == "add" && p[1] == "stats_parsed" && !hasStats) {
			continue
		}
		// Only notice that a deletion vector is present.
		if len(p) > 2 && p[1] == "deletionVector" && p[2] != "storageType" {
			continue
		}
		cols = append(cols, i)
	}
	if len(cols) == 0 {
		return fmt.Errorf("%w: no action columns", ErrCorrupt)
	}
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: 8 << 10}, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	rr, err := fr.GetRecordReader(ctx, cols, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	defer rr.Release()
	for rr.Next() {
		if err := applyCheckpointBatch(rr.RecordBatch(), st); err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
	}
	if err := rr.Err(); err != nil {
		if errors.Is(err, storage.ErrUnavailable) || ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return nil
}

// structCol is a struct column with by-name child access.
type structCol struct {
	arr *array.Struct
	typ *arrow.StructType
}

func topStruct(rec arrow.RecordBatch, name string) (structCol, bool) {
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return structCol{}, false
	}
	return asStruct(rec.Column(idx[0]))
}

func asStruct(a arrow.Array) (structCol, bool) {
	s, ok := a.(*array.Struct)
	if !ok {
		return structCol{}, false
	}
	return structCol{arr: s, typ: s.DataType().(*arrow.StructType)}, true
}

func (s structCol) child(name string) arrow.Array {
	if s.arr == nil {
		return nil
	}
	i, ok := s.typ.FieldIdx(name)
	if !ok {
		return nil
	}
	return s.arr.Field(i)
}

func (s structCol) valid(i int) bool { return s.arr != nil && s.arr.IsValid(i) }

func strAt(a arrow.Array, i int) (string, bool) {
	if a == nil || a.IsNull(i) {
		return "", false
	}
	switch x := a.(type) {
	case *array.String:
		return x.Value(i), true
	case *array.LargeString:
		return x.Value(i), true
	case *array.StringView:
		return x.Value(i), true
	case *array.Binary:
		return string(x.Value(i)), true
	case *array.LargeBinary:
		return string(x.Value(i)), true
	}
	return "", false
}

func intAt(a arrow.Array, i int) (int64, bool) {
	if a == nil || a.IsNull(i) {
		return 0, false
	}
	switch x := a.(type) {
	case *array.Int64:
		return x.Value(i), true
	case *array.Int32:
		return int64(x.Value(i)), true
	case *array.Int16:
		return int64(x.Value(i)), true
	case *array.Int8:
		return int64(x.Value(i)), true
	case *array.Uint32:
		return int64(x.Value(i)), true
	}
	return 0, false
}

func boolAt(a arrow.Array, i int) (bool, bool) {
	if a == nil || a.IsNull(i) {
		return false, false
	}
	if x, ok := a.(*array.Boolean); ok {
		return x.Value(i), true
	}
	return false, false
}

// mapAt reads a map<string,string>; NULL values become "" (PROTOCOL.md
// "Partition Value Serialization": an empty string is NULL).
func mapAt(a arrow.Array, i int) map[string]string {
	m, ok := a.(*array.Map)
	if !ok || m.IsNull(i) {
		return nil
	}
	start, end := m.ValueOffsets(i)
	out := make(map[string]string, end-start)
	keys, items := m.Keys(), m.Items()
	for j := int(start); j < int(end); j++ {
		k, _ := strAt(keys, j)
		v, _ := strAt(items, j)
		out[k] = v
	}
	return out
}

func listAt(a arrow.Array, i int) []string {
	l, ok := a.(array.ListLike)
	if !ok || l.IsNull(i) {
		return nil
	}
	start, end := l.ValueOffsets(i)
	vals := l.ListValues()
	out := make([]string, 0, end-start)
	for j := int(start); j < int(end); j++ {
		s, _ := strAt(vals, j)
		out = append(out, s)
	}
	return out
}

// dvAt reports whether row i of a deletionVector column names one: the
// struct is non-null and its storageType is not empty (delta-rs 0.22-0.24
// wrote empty structs for files without a deletion vector).
func dvAt(dv structCol, i int) bool {
	if !dv.valid(i) {
		return false
	}
	st, _ := strAt(dv.child("storageType"), i)
	return st != ""
}

func applyCheckpointBatch(rec arrow.RecordBatch, st *state) error {
	n := int(rec.NumRows())
	add, _ := topStruct(rec, "add")
	rem, _ := topStruct(rec, "remove")
	md, _ := topStruct(rec, "metaData")
	pr, _ := topStruct(rec, "protocol")
	tx, _ := topStruct(rec, "txn")

	aPath, aPV, aSize, aMod, aDC, aStats, aTags := add.child("path"), add.child("partitionValues"),
		add.child("size"), add.child("modificationTime"), add.child("dataChange"), add.child("stats"), add.child("tags")
	aDV, _ := asStruct(add.child("deletionVector"))
	aStatsParsed, _ := asStruct(add.child("stats_parsed"))
	rPath, rTS, rDC, rExt, rPV, rSize := rem.child("path"), rem.child("deletionTimestamp"), rem.child("dataChange"),
		rem.child("extendedFileMetadata"), rem.child("partitionValues"), rem.child("size")
	rDV, _ := asStruct(rem.child("deletionVector"))

	for i := range n {
		switch {
		case add.valid(i):
			p, ok := strAt(aPath, i)
			if !ok || p == "" {
				return fmt.Errorf("row %d: add without path", i)
			}
			a := &Add{Path: p, PartitionValues: mapAt(aPV, i), Tags: mapAt(aTags, i)}
			if a.PartitionValues == nil {
				a.PartitionValues = map[string]string{}
			}
			a.Size, _ = intAt(aSize, i)
			a.ModificationTime, _ = intAt(aMod, i)
			a.DataChange, _ = boolAt(aDC, i)
			a.Stats, _ = strAt(aStats, i)
			if a.Stats == "" && aStatsParsed.valid(i) {
				a.Stats = statsFromParsed(aStatsParsed, i)
			}
			if dvAt(aDV, i) {
				st.dv = true
			}
			st.addFile(a)
		case rem.valid(i):
			p, ok := strAt(rPath, i)
			if !ok || p == "" {
				return fmt.Errorf("row %d: remove without path", i)
			}
			r := &Remove{Path: p, PartitionValues: mapAt(rPV, i)}
			if ts, ok := intAt(rTS, i); ok {
				r.DeletionTimestamp = &ts
			}
			if sz, ok := intAt(rSize, i); ok {
				r.Size = &sz
			}
			r.DataChange, _ = boolAt(rDC, i)
			r.ExtendedFileMetadata, _ = boolAt(rExt, i)
			if dvAt(rDV, i) {
				st.dv = true
			}
			st.removeFile(r)
		case md.valid(i):
			m := &Metadata{
				PartitionColumns: listAt(md.child("partitionColumns"), i),
				Configuration:    mapAt(md.child("configuration"), i),
			}
			m.ID, _ = strAt(md.child("id"), i)
			m.SchemaString, _ = strAt(md.child("schemaString"), i)
			if s, ok := strAt(md.child("name"), i); ok {
				m.Name = &s
			}
			if s, ok := strAt(md.child("description"), i); ok {
				m.Description = &s
			}
			if t, ok := intAt(md.child("createdTime"), i); ok {
				m.CreatedTime = &t
			}
			if f, ok := asStruct(md.child("format")); ok && f.valid(i) {
				m.Format.Provider, _ = strAt(f.child("provider"), i)
				m.Format.Options = mapAt(f.child("options"), i)
			}
			normalizeMetadata(m)
			st.setMetadata(m)
		case pr.valid(i):
			p := &Protocol{
				ReaderFeatures: listAt(pr.child("readerFeatures"), i),
				WriterFeatures: listAt(pr.child("writerFeatures"), i),
			}
			r, ok1 := intAt(pr.child("minReaderVersion"), i)
			w, ok2 := intAt(pr.child("minWriterVersion"), i)
			if !ok1 || !ok2 {
				return fmt.Errorf("row %d: protocol without versions", i)
			}
			p.MinReaderVersion, p.MinWriterVersion = int(r), int(w)
			st.protocol = p
		case tx.valid(i):
			id, ok := strAt(tx.child("appId"), i)
			v, ok2 := intAt(tx.child("version"), i)
			if !ok || !ok2 {
				return fmt.Errorf("row %d: txn without appId or version", i)
			}
			t := Txn{AppID: id, Version: v}
			if lu, ok := intAt(tx.child("lastUpdated"), i); ok {
				t.LastUpdated = &lu
			}
			st.txns[id] = t
		}
	}
	return nil
}

// normalizeMetadata fills the required map and list fields with empty
// values so they serialize as {} and [] rather than null.
func normalizeMetadata(m *Metadata) {
	if m.PartitionColumns == nil {
		m.PartitionColumns = []string{}
	}
	if m.Configuration == nil {
		m.Configuration = map[string]string{}
	}
	if m.Format.Options == nil {
		m.Format.Options = map[string]string{}
	}
}

// checkpointData is what a checkpoint holds: the reconciled state at version.
type checkpointData struct {
	version    int64
	protocol   Protocol
	metadata   Metadata
	txns       []Txn
	files      []Add
	tombstones []Remove
}

var (
	stringMap = arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String)
	// checkpointSchema mirrors the classic (V1 spec) checkpoint Spark writes.
	checkpointSchema = arrow.NewSchema([]arrow.Field{
		{Name: "txn", Nullable: true, Type: arrow.StructOf(
			arrow.Field{Name: "appId", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "version", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			arrow.Field{Name: "lastUpdated", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		)},
		{Name: "add", Nullable: true, Type: arrow.StructOf(
			arrow.Field{Name: "path", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "partitionValues", Type: stringMap, Nullable: true},
			arrow.Field{Name: "size", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			arrow.Field{Name: "modificationTime", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			arrow.Field{Name: "dataChange", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
			arrow.Field{Name: "tags", Type: stringMap, Nullable: true},
			arrow.Field{Name: "stats", Type: arrow.BinaryTypes.String, Nullable: true},
		)},
		{Name: "remove", Nullable: true, Type: arrow.StructOf(
			arrow.Field{Name: "path", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "deletionTimestamp", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			arrow.Field{Name: "dataChange", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
			arrow.Field{Name: "extendedFileMetadata", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
			arrow.Field{Name: "partitionValues", Type: stringMap, Nullable: true},
			arrow.Field{Name: "size", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		)},
		{Name: "metaData", Nullable: true, Type: arrow.StructOf(
			arrow.Field{Name: "id", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "description", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "format", Nullable: true, Type: arrow.StructOf(
				arrow.Field{Name: "provider", Type: arrow.BinaryTypes.String, Nullable: true},
				arrow.Field{Name: "options", Type: stringMap, Nullable: true},
			)},
			arrow.Field{Name: "schemaString", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "partitionColumns", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
			arrow.Field{Name: "configuration", Type: stringMap, Nullable: true},
			arrow.Field{Name: "createdTime", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		)},
		{Name: "protocol", Nullable: true, Type: arrow.StructOf(
			arrow.Field{Name: "minReaderVersion", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
			arrow.Field{Name: "minWriterVersion", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		)},
	}, nil)
)

// Column positions in checkpointSchema.
const (
	cpTxn = iota
	cpAdd
	cpRemove
	cpMetaData
	cpProtocol
)

// checkpointBatchRows is how many actions go into one Arrow record batch
// (and one Parquet row group) of a checkpoint, so writing one holds a
// bounded amount of memory whatever the number of files.
const checkpointBatchRows = 8192

// writeCheckpointRows streams cp's actions into fw, checkpointBatchRows at
// a time: protocol, metaData, txns, adds, then tombstones. It returns the
// number of actions written.
func writeCheckpointRows(fw *pqarrow.FileWriter, cp *checkpointData, alloc memory.Allocator) (int64, error) {
	b := array.NewRecordBuilder(alloc, checkpointSchema)
	defer b.Release()
	cols := make([]*array.StructBuilder, 5)
	for i := range cols {
		cols[i] = b.Field(i).(*array.StructBuilder)
	}
	var total int64
	pending := 0
	flush := func() error {
		if pending == 0 {
			return nil
		}
		rec := b.NewRecordBatch()
		defer rec.Release()
		pending = 0
		return fw.Write(rec)
	}
	// row appends one row with only column `set` non-null; fill writes its
	// children.
	row := func(set int, fill func(sb *array.StructBuilder)) error {
		for i, sb := range cols {
			if i != set {
				sb.AppendNull()
				continue
			}
			sb.Append(true)
			fill(sb)
		}
		total++
		if pending++; pending >= checkpointBatchRows {
			return flush()
		}
		return nil
	}
	str := func(fb array.Builder, s string, ok bool) {
		if ok {
			fb.(*array.StringBuilder).Append(s)
		} else {
			fb.AppendNull()
		}
	}
	i64 := func(fb array.Builder, v int64, ok bool) {
		if ok {
			fb.(*array.Int64Builder).Append(v)
		} else {
			fb.AppendNull()
		}
	}
	boolean := func(fb array.Builder, v bool) { fb.(*array.BooleanBuilder).Append(v) }
	// smap writes a map; nullEmpty turns "" values into NULL (partition
	// values).
	smap := func(fb array.Builder, m map[string]string, nullEmpty bool) {
		mb := fb.(*array.MapBuilder)
		if m == nil {
			mb.AppendNull()
			return
		}
		mb.Append(true)
		kb, ib := mb.KeyBuilder().(*array.StringBuilder), mb.ItemBuilder().(*array.StringBuilder)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			kb.Append(k)
			if v := m[k]; v == "" && nullEmpty {
				ib.AppendNull()
			} else {
				ib.Append(v)
			}
		}
	}

	p := cp.protocol
	if err := row(cpProtocol, func(sb *array.StructBuilder) {
		sb.FieldBuilder(0).(*array.Int32Builder).Append(int32(p.MinReaderVersion))
		sb.FieldBuilder(1).(*array.Int32Builder).Append(int32(p.MinWriterVersion))
	}); err != nil {
		return total, err
	}
	m := cp.metadata
	if err := row(cpMetaData, func(sb *array.StructBuilder) {
		str(sb.FieldBuilder(0), m.ID, true)
		str(sb.FieldBuilder(1), deref(m.Name), m.Name != nil)
		str(sb.FieldBuilder(2), deref(m.Description), m.Description != nil)
		fb := sb.FieldBuilder(3).(*array.StructBuilder)
		fb.Append(true)
		str(fb.FieldBuilder(0), m.Format.Provider, true)
		smap(fb.FieldBuilder(1), nonNilMap(m.Format.Options), false)
		str(sb.FieldBuilder(4), m.SchemaString, true)
		lb := sb.FieldBuilder(5).(*array.ListBuilder)
		lb.Append(true)
		for _, c := range m.PartitionColumns {
			lb.ValueBuilder().(*array.StringBuilder).Append(c)
		}
		smap(sb.FieldBuilder(6), nonNilMap(m.Configuration), false)
		i64(sb.FieldBuilder(7), deref(m.CreatedTime), m.CreatedTime != nil)
	}); err != nil {
		return total, err
	}
	for _, t := range cp.txns {
		if err := row(cpTxn, func(sb *array.StructBuilder) {
			str(sb.FieldBuilder(0), t.AppID, true)
			i64(sb.FieldBuilder(1), t.Version, true)
			i64(sb.FieldBuilder(2), deref(t.LastUpdated), t.LastUpdated != nil)
		}); err != nil {
			return total, err
		}
	}
	for _, a := range cp.files {
		if err := row(cpAdd, func(sb *array.StructBuilder) {
			str(sb.FieldBuilder(0), a.Path, true)
			smap(sb.FieldBuilder(1), nonNilMap(a.PartitionValues), true)
			i64(sb.FieldBuilder(2), a.Size, true)
			i64(sb.FieldBuilder(3), a.ModificationTime, true)
			// A checkpoint's adds describe state, not change (Spark writes
			// dataChange=false here).
			boolean(sb.FieldBuilder(4), false)
			smap(sb.FieldBuilder(5), a.Tags, false)
			str(sb.FieldBuilder(6), a.Stats, a.Stats != "")
		}); err != nil {
			return total, err
		}
	}
	for _, r := range cp.tombstones {
		if err := row(cpRemove, func(sb *array.StructBuilder) {
			str(sb.FieldBuilder(0), r.Path, true)
			i64(sb.FieldBuilder(1), deref(r.DeletionTimestamp), r.DeletionTimestamp != nil)
			boolean(sb.FieldBuilder(2), false)
			boolean(sb.FieldBuilder(3), r.ExtendedFileMetadata)
			smap(sb.FieldBuilder(4), r.PartitionValues, true)
			i64(sb.FieldBuilder(5), deref(r.Size), r.Size != nil)
		}); err != nil {
			return total, err
		}
	}
	return total, flush()
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func (t *Table) writeCheckpoint(ctx context.Context, cp *checkpointData) (int64, error) {
	return writeCheckpoint(ctx, t.log, t.opts.ScratchDir, cp, t.allocator())
}

// writeCheckpoint writes cp as <v>.checkpoint.parquet (a local temp file
// published whole: renamed into place on a local table, uploaded to an
// object store, so readers never see a partial checkpoint) and then moves
// _last_checkpoint forward the same way. It returns the number of actions
// written. alloc holds the Arrow buffers of one batch at a time; a remote
// table's checkpoint is written under scratchDir first.
func writeCheckpoint(ctx context.Context, log storage.Store, scratchDir string, cp *checkpointData, alloc memory.Allocator) (int64, error) {
	name := checkpointName(cp.version)
	tmp, err := storage.CreateTemp(log, name, scratchDir)
	if err != nil {
		return 0, fmt.Errorf("write checkpoint %d: %w", cp.version, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // no-op after the rename
	// The root schema element is REQUIRED, as in certlake's data files:
	// arrow-go's default (REPEATED) is refused by Snowflake, Impala and
	// Velox.
	props := parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithRootRepetition(parquet.Repetitions.Required),
		parquet.WithAllocator(alloc),
	)
	fw, err := pqarrow.NewFileWriter(checkpointSchema, tmp, props, pqarrow.NewArrowWriterProperties(pqarrow.WithAllocator(alloc)))
	if err != nil {
		tmp.Close()
		return 0, fmt.Errorf("write checkpoint %d: %w", cp.version, err)
	}
	size, err := writeCheckpointRows(fw, cp, alloc)
	if err != nil {
		fw.Close()
		tmp.Close()
		return 0, fmt.Errorf("write checkpoint %d: %w", cp.version, err)
	}
	if err := fw.Close(); err != nil {
		tmp.Close()
		return 0, fmt.Errorf("write checkpoint %d: %w", cp.version, err)
	}
	tmp.Close() // fw.Close normally closed it already
	f, err := os.OpenFile(tmpName, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("write checkpoint %d: %w", cp.version, err)
	}
	if err := storage.PutFile(ctx, log, name, f, false); err != nil {
		return 0, fmt.Errorf("write checkpoint %d: %w", cp.version, err)
	}
	if err := updateLastCheckpoint(ctx, log, lastCheckpoint{Version: cp.version, Size: size, NumAddFiles: ptr(int64(len(cp.files)))}); err != nil {
		return size, err
	}
	return size, nil
}

func ptr[T any](v T) *T { return &v }

// updateLastCheckpoint replaces _last_checkpoint unless it already points at
// lc.Version or later. Two writers can still race here; the file is only a
// hint (readers list the log), so the loser's older value is harmless.
func updateLastCheckpoint(ctx context.Context, log storage.Store, lc lastCheckpoint) error {
	if cur, err := readLastCheckpoint(ctx, log); err == nil && cur.Version >= lc.Version {
		return nil
	}
	b, err := json.Marshal(lc)
	if err != nil {
		return err
	}
	// The store's Put is atomic (temp file, fsync, rename on a local
	// table; one PUT on an object store).
	if err := storage.PutBytes(ctx, log, lastCheckpointName, b); err != nil {
		return fmt.Errorf("write %s: %w", lastCheckpointName, err)
	}
	return nil
}

// tombstoneRetention reads delta.deletedFileRetentionDuration ("interval 7
// days"); tombstones older than it are dropped from checkpoints.
func tombstoneRetention(conf map[string]string) time.Duration {
	const week = 7 * 24 * time.Hour
	s, ok := conf["delta.deletedFileRetentionDuration"]
	if !ok {
		return week
	}
	f := strings.Fields(strings.ToLower(s))
	if len(f) == 3 && f[0] == "interval" {
		f = f[1:]
	}
	if len(f) != 2 {
		return week
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || n < 0 {
		return week
	}
	unit := map[string]time.Duration{
		"second": time.Second, "minute": time.Minute, "hour": time.Hour,
		"day": 24 * time.Hour, "week": week,
	}[strings.TrimSuffix(f[1], "s")]
	if unit == 0 {
		return week
	}
	return time.Duration(n) * unit
}

// arrowValue converts one value of a stats_parsed column to its stats JSON
// form; nil when NULL or of a type stats JSON has no form for.
func arrowValue(a arrow.Array, i int) any {
	if a == nil || a.IsNull(i) {
		return nil
	}
	switch x := a.(type) {
	case *array.Struct:
		typ := x.DataType().(*arrow.StructType)
		m := map[string]any{}
		for j := range typ.NumFields() {
			if v := arrowValue(x.Field(j), i); v != nil {
				m[typ.Field(j).Name] = v
			}
		}
		return m
	case *array.Int8, *array.Int16, *array.Int32, *array.Int64, *array.Uint32:
		n, _ := intAt(a, i)
		return n
	case *array.Float32:
		return float64(x.Value(i))
	case *array.Float64:
		return x.Value(i)
	case *array.Boolean:
		return x.Value(i)
	case *array.String, *array.LargeString, *array.StringView:
		s, _ := strAt(a, i)
		return s
	case *array.Date32:
		return x.Value(i).ToTime().Format(time.DateOnly)
	case *array.Timestamp:
		unit := x.DataType().(*arrow.TimestampType).Unit
		return x.Value(i).ToTime(unit).UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	return nil
}
