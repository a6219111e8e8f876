package lake

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/keyindex"
	"github.com/certlake/certlake/internal/lake/laketest"
	"github.com/certlake/certlake/internal/record"
)

var day = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

func TestOpenOrCreate(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()

	if _, err := Open(ctx, filepath.Join(dir, "none"), Options{}); !errors.Is(err, ErrNotExist) || !errors.Is(err, delta.ErrNotATable) {
		t.Fatalf("Open(missing) = %v, want ErrNotExist wrapping delta.ErrNotATable", err)
	}
	if _, err := OpenOrCreate(ctx, filepath.Join(dir, "x"), Options{}); err == nil {
		t.Fatalf("OpenOrCreate(RoleAny) = nil error, want refusal")
	}

	for _, tc := range []struct {
		role Role
		bin  bool
		conf map[string]string
	}{
		{RoleMain, false, map[string]string{}},
		{RoleMain, true, map[string]string{}},
		{RoleStaging, true, map[string]string{ConfigRole: "staging", ConfigCreatedBy: "certlake"}},
	} {
		path := filepath.Join(dir, string(tc.role)+map[bool]string{true: "-bin", false: "-str"}[tc.bin])
		tbl, err := OpenOrCreate(ctx, path, Options{Role: tc.role, AsDERBinary: tc.bin})
		if err != nil {
			t.Fatalf("OpenOrCreate(%s): %v", path, err)
		}
		if tbl.Role() != tc.role || tbl.AsDERBinary() != tc.bin {
			t.Errorf("OpenOrCreate(%s) = role %s binary %v, want %s %v", path, tbl.Role(), tbl.AsDERBinary(), tc.role, tc.bin)
		}
		snap, err := tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Version != 0 || snap.Protocol.MinReaderVersion != 1 || snap.Protocol.MinWriterVersion != 2 ||
			len(snap.Protocol.ReaderFeatures)+len(snap.Protocol.WriterFeatures) != 0 {
			t.Errorf("new table version %d protocol %+v, want version 0, reader 1 / writer 2, no features", snap.Version, snap.Protocol)
		}
		if !slices.Equal(snap.Metadata.PartitionColumns, []string{"seen_date"}) {
			t.Errorf("partition columns %v, want [seen_date]", snap.Metadata.PartitionColumns)
		}
		if len(snap.Metadata.Configuration) != len(tc.conf) {
			t.Errorf("configuration %v, want %v", snap.Metadata.Configuration, tc.conf)
		}
		for k, v := range tc.conf {
			if snap.Metadata.Configuration[k] != v {
				t.Errorf("configuration %v, want %v", snap.Metadata.Configuration, tc.conf)
			}
		}
		want := Schema(tc.bin)
		if len(snap.Schema.Fields) != 20 {
			t.Fatalf("schema has %d fields, want 20", len(snap.Schema.Fields))
		}
		for i, f := range snap.Schema.Fields {
			w := want.Fields[i]
			if f.Name != record.Columns[i] || f.Name != w.Name || !f.Type.Equal(w.Type) || f.Nullable {
				t.Errorf("field %d = %s %s nullable=%v, want %s %s nullable=false", i, f.Name, f.Type, f.Nullable, w.Name, w.Type)
			}
		}
		// Opening again finds the same table, whatever AsDERBinary says.
		again, err := OpenOrCreate(ctx, path, Options{Role: tc.role, AsDERBinary: !tc.bin})
		if err != nil || again.AsDERBinary() != tc.bin {
			t.Errorf("OpenOrCreate(existing %s) = binary %v, %v; want %v, nil", path, again.AsDERBinary(), err, tc.bin)
		}
	}
	// The as_der type of schemaString as delta-rs writes it.
	if s, _ := Schema(false).JSON(); !strings.Contains(s, `{"name":"cert_index","type":"long","nullable":false,"metadata":{}}`) ||
		!strings.Contains(s, `{"name":"chain","type":{"type":"array","elementType":"string","containsNull":true},"nullable":false,"metadata":{}}`) {
		t.Errorf("Schema(false).JSON() = %s", s)
	}
}

func TestOpenOrCreateConcurrently(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "main")
	errs := make(chan error, 8)
	for range cap(errs) {
		go func() {
			tbl, err := OpenOrCreate(ctx, path, Options{Role: RoleMain})
			if err == nil {
				_, err = tbl.Append(ctx, laketest.New(12, "https://ct.example.net/log").Rows(0, 10, day), CommitOptions{})
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Errorf("concurrent OpenOrCreate + Append: %v", err)
		}
	}
	tbl, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version != int64(cap(errs)) {
		t.Errorf("version %d after %d creates and appends, want %d", snap.Version, cap(errs), cap(errs))
	}
	old, err := tbl.SnapshotAt(ctx, 0)
	if err != nil {
		t.Fatalf("SnapshotAt(0): %v", err)
	}
	if len(old.Files) != 0 {
		t.Errorf("SnapshotAt(0) has %d files, want 0", len(old.Files))
	}
}

func TestRoles(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	main, staging := filepath.Join(dir, "main"), filepath.Join(dir, "staging")
	for path, role := range map[string]Role{main: RoleMain, staging: RoleStaging} {
		if _, err := OpenOrCreate(ctx, path, Options{Role: role}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		path string
		role Role
		ok   bool
	}{
		{main, RoleMain, true},
		{main, RoleAny, true},
		{main, RoleStaging, false},
		{staging, RoleStaging, true},
		{staging, RoleAny, true},
		{staging, RoleMain, false},
	} {
		_, err := Open(ctx, tc.path, Options{Role: tc.role})
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrWrongRole)) {
			t.Errorf("Open(%s, %q) = %v, want ok %v (else ErrWrongRole)", filepath.Base(tc.path), tc.role, err, tc.ok)
		}
		_, err = OpenOrCreate(ctx, tc.path, Options{Role: tc.role})
		if tc.role != RoleAny && (err == nil) != tc.ok {
			t.Errorf("OpenOrCreate(%s, %q) = %v, want ok %v", filepath.Base(tc.path), tc.role, err, tc.ok)
		}
	}
}

// createRaw creates a Delta table with the given fields and partitioning.
func createRaw(t *testing.T, path string, st delta.StructType, parts []string) {
	t.Helper()
	s, err := st.JSON()
	if err != nil {
		t.Fatal(err)
	}
	meta := delta.Metadata{SchemaString: s, PartitionColumns: parts, Configuration: map[string]string{}}
	if _, err := delta.Create(t.Context(), path, meta, delta.Protocol{MinReaderVersion: 1, MinWriterVersion: 2}, delta.Options{}); err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
}

// withField returns the certstream schema with column name replaced by f
// (or removed when f is nil), plus extra fields.
func withField(name string, f *delta.StructField, extra ...delta.StructField) delta.StructType {
	var out delta.StructType
	for _, c := range Schema(false).Fields {
		switch {
		case c.Name != name:
			out.Fields = append(out.Fields, c)
		case f != nil:
			out.Fields = append(out.Fields, *f)
		}
	}
	out.Fields = append(out.Fields, extra...)
	return out
}

func TestConformance(t *testing.T) {
	ctx := t.Context()
	str := delta.DataType{Primitive: "string"}
	for _, tc := range []struct {
		name   string
		schema delta.StructType
		parts  []string
		want   []string // substrings of the error; none = accepted
	}{
		{"Certstream", Schema(false), []string{"seen_date"}, nil},
		{"NullableColumns", func() delta.StructType {
			s := Schema(true)
			for i := range s.Fields {
				s.Fields[i].Nullable = true
			}
			return s
		}(), []string{"seen_date"}, nil},
		{"ExtraNullableColumn", withField("", nil, delta.StructField{Name: "note", Type: str, Nullable: true}), []string{"seen_date"}, nil},
		{"ExtraRequiredColumn", withField("", nil, delta.StructField{Name: "note", Type: str}), []string{"seen_date"},
			[]string{"extra column note is not nullable"}},
		{"WrongType", withField("cert_index", &delta.StructField{Name: "cert_index", Type: str}), []string{"seen_date"},
			[]string{"column cert_index has type string, want long"}},
		{"WrongListType", withField("chain", &delta.StructField{Name: "chain", Type: str}), []string{"seen_date"},
			[]string{"column chain has type string, want array<string>"}},
		{"WrongDERType", withField("as_der", &delta.StructField{Name: "as_der", Type: delta.DataType{Primitive: "long"}}), []string{"seen_date"},
			[]string{"column as_der has type long, want string or binary"}},
		{"MissingColumn", withField("sha1", nil), []string{"seen_date"}, []string{"missing column sha1"}},
		{"NotPartitioned", Schema(false), nil, []string{"not partitioned by seen_date"}},
		{"OtherPartition", Schema(false), []string{"source_url"}, []string{"not partitioned by seen_date"}},
		{"NotCertstream", delta.StructType{Fields: []delta.StructField{{Name: "id", Type: delta.DataType{Primitive: "long"}, Nullable: true}}}, nil,
			[]string{"missing column cert_index", "missing column chain", "not partitioned by seen_date"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t")
			createRaw(t, path, tc.schema, tc.parts)
			tbl, err := Open(ctx, path, Options{})
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Open = %v, want accepted", err)
				}
				// Writing works; the extra column reads as null.
				rows := laketest.New(3, "https://ct.example.net/log").Rows(0, 10, day)
				if _, err := tbl.Append(ctx, rows, CommitOptions{}); err != nil {
					t.Fatalf("Append: %v", err)
				}
				snap, _ := tbl.Snapshot(ctx)
				got, err := ReadRows(ctx, tbl.Files(snap))
				if err != nil {
					t.Fatal(err)
				}
				diffRows(t, got, rows)
				return
			}
			if !errors.Is(err, ErrNotCertstream) {
				t.Fatalf("Open = %v, want ErrNotCertstream", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open = %q, want it to say %q", err, w)
				}
			}
		})
	}
	// A table written by another Delta implementation that is not a
	// certstream table.
	if _, err := Open(ctx, "../delta/testdata/delta/simple_table", Options{}); !errors.Is(err, ErrNotCertstream) {
		t.Errorf("Open(simple_table) = %v, want ErrNotCertstream", err)
	}
}

func TestIdempotentTxn(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "staging")
	tbl, err := OpenOrCreate(ctx, path, Options{Role: RoleStaging})
	if err != nil {
		t.Fatal(err)
	}
	rows := laketest.New(4, "https://ct.example.net/log").Rows(100, 500, day)
	txn := &delta.Txn{AppID: "fetch-log-100", Version: 600}
	first, err := tbl.Append(ctx, rows, CommitOptions{Txn: txn})
	if err != nil || first.Skipped || first.Version != 1 || first.Rows != 500 {
		t.Fatalf("first Append = %+v, %v; want version 1, 500 rows", first, err)
	}
	again, err := tbl.Append(ctx, rows, CommitOptions{Txn: txn})
	if err != nil || !again.Skipped || again.Version != 1 {
		t.Fatalf("retried Append = %+v, %v; want skipped at version 1", again, err)
	}
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version != 1 || snap.Txns["fetch-log-100"] != 600 {
		t.Errorf("snapshot version %d txns %v, want 1 and fetch-log-100=600", snap.Version, snap.Txns)
	}
	// The skipped attempt's files are gone: every file on disk is live.
	var onDisk []string
	filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".parquet") && !strings.Contains(p, "_delta_log") {
			rel, _ := filepath.Rel(path, p)
			onDisk = append(onDisk, filepath.ToSlash(rel))
		}
		return nil
	})
	var live []string
	for _, f := range tbl.Files(snap) {
		live = append(live, f.Path)
	}
	slices.Sort(onDisk)
	slices.Sort(live)
	if !slices.Equal(onDisk, live) {
		t.Errorf("files on disk %v, live %v", onDisk, live)
	}
}

func TestWriterAbortAndErrors(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "main")
	tbl, err := OpenOrCreate(ctx, path, Options{Role: RoleMain})
	if err != nil {
		t.Fatal(err)
	}
	w := tbl.NewWriter(WriterOptions{TargetFileRows: 100})
	for _, r := range laketest.New(5, "https://ct.example.net/log").Rows(0, 1000, day) {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	w.Abort()
	w.Abort()
	if err := w.Write(record.Row{}); err == nil {
		t.Errorf("Write after Abort = nil, want error")
	}
	if _, err := w.Commit(ctx, CommitOptions{}); err == nil {
		t.Errorf("Commit after Abort = nil, want error")
	}
	entries, _ := os.ReadDir(path)
	for _, e := range entries {
		if e.Name() == "_delta_log" {
			continue
		}
		sub, _ := os.ReadDir(filepath.Join(path, e.Name()))
		if len(sub) > 0 {
			t.Errorf("after Abort %s holds %d files", e.Name(), len(sub))
		}
	}

	bad := laketest.New(6, "https://ct.example.net/log").Rows(0, 3, day)
	bad[0].SeenDate = "2025-03-02"
	bad[1].Seen = time.Time{}
	bad[2].CertIndex = 1 << 63
	for i, r := range bad {
		w := tbl.NewWriter(WriterOptions{})
		if err := w.Write(r); err == nil {
			t.Errorf("Write(bad row %d) = nil, want error", i)
		}
		w.Abort()
	}

	// A string that is not UTF-8 would make the whole data file unreadable
	// by DuckDB and arrow-rs: refused, naming the column and the key.
	for _, tt := range []struct {
		col  string
		set  func(r *record.Row)
		want string
	}{
		{"source_name", func(r *record.Row) { r.SourceName = "Log \xff name" }, "ct.custom_logs[].name"},
		{"all_domains", func(r *record.Row) { r.AllDomains = append(r.AllDomains, "a\xc3.example") }, "byte 0xc3 at offset 1"},
		{"chain", func(r *record.Row) { r.Chain = append(r.Chain, "{\"x\":\"\xed\xa0\x80\"}") }, "chain"},
	} {
		r := laketest.New(8, "https://ct.example.net/log").Rows(0, 1, day)[0]
		tt.set(&r)
		w := tbl.NewWriter(WriterOptions{})
		err := w.Write(r)
		if !errors.Is(err, ErrInvalidRow) || !strings.Contains(err.Error(), "column "+tt.col+" is not valid UTF-8") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Write(row with invalid UTF-8 in %s) = %v, want ErrInvalidRow naming the column and %q", tt.col, err, tt.want)
		}
		w.Abort()
	}

	// An encoder failure (the partition directory cannot be created)
	// surfaces from Write or Commit, and the table is unchanged.
	if err := os.Remove(filepath.Join(path, "seen_date=2025-03-01")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "seen_date=2025-03-01"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	w = tbl.NewWriter(WriterOptions{TargetFileRows: 100})
	var werr error
	for _, r := range laketest.New(7, "https://ct.example.net/log").Rows(0, 50_000, day) {
		if werr = w.Write(r); werr != nil {
			break
		}
	}
	if werr == nil {
		_, werr = w.Commit(ctx, CommitOptions{})
	}
	w.Abort()
	if werr == nil || !strings.Contains(werr.Error(), "partition directory") {
		t.Errorf("writing into a blocked partition = %v, want a partition directory error", werr)
	}
	if snap, _ := tbl.Snapshot(ctx); snap.Version != 0 {
		t.Errorf("table version %d after failed writes, want 0", snap.Version)
	}
	os.Remove(filepath.Join(path, "seen_date=2025-03-01"))

	// Nothing written and no txn: no commit.
	res, err := tbl.NewWriter(WriterOptions{}).Commit(ctx, CommitOptions{})
	if err != nil || res.Version != 0 || res.Files != 0 {
		t.Errorf("empty Commit = %+v, %v; want version 0, no files", res, err)
	}
}

func TestDelete(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	mk := func(name string, role Role) string {
		p := filepath.Join(dir, name)
		tbl, err := OpenOrCreate(ctx, p, Options{Role: role})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tbl.Append(ctx, laketest.New(8, "https://ct.example.net/log").Rows(0, 10, day), CommitOptions{}); err != nil {
			t.Fatal(err)
		}
		return p
	}
	main := mk("main", RoleMain)
	staging := mk("staging", RoleStaging)
	cluttered := mk("cluttered", RoleStaging)
	if err := os.WriteFile(filepath.Join(cluttered, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Gap detection keeps a key index in staging: it goes with the table.
	if keyIndexDir != keyindex.Dir {
		t.Fatalf("keyIndexDir = %q, want keyindex.Dir %q", keyIndexDir, keyindex.Dir)
	}
	indexed := mk("indexed", RoleStaging)
	if err := os.MkdirAll(filepath.Join(indexed, keyindex.Dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(indexed, keyindex.Dir, "segment.kix"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.MkdirAll(filepath.Join(plain, "data"), 0o755); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		path        string
		stagingOnly bool
		ok          bool
	}{
		{plain, false, false},
		{main, true, false},
		{cluttered, true, false},
		{staging, true, true},
		{indexed, true, true},
		{main, false, true},
	} {
		err := Delete(ctx, tc.path, DeleteOptions{StagingOnly: tc.stagingOnly})
		_, statErr := os.Stat(tc.path)
		if (err == nil) != tc.ok || (statErr == nil) == tc.ok {
			t.Errorf("Delete(%s, stagingOnly=%v) = %v (exists: %v), want ok %v", filepath.Base(tc.path), tc.stagingOnly, err, statErr == nil, tc.ok)
		}
	}
}

func TestKeysAndPrune(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "it's a dir")
	logA, logB := "https://ct.example.net/a", "https://ct.example.net/b"
	main, err := OpenOrCreate(ctx, filepath.Join(dir, "main"), Options{Role: RoleMain})
	if err != nil {
		t.Fatal(err)
	}
	staging, err := OpenOrCreate(ctx, filepath.Join(dir, "staging"), Options{Role: RoleStaging, AsDERBinary: true})
	if err != nil {
		t.Fatal(err)
	}
	// main: log A [0,1000) in files of 250 rows, log B [0,300);
	// staging: log A [1000,1100).
	w := main.NewWriter(WriterOptions{TargetFileRows: 250})
	for _, r := range append(laketest.New(9, logA).Rows(0, 1000, day), laketest.New(10, logB).Rows(0, 300, day)...) {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Commit(ctx, CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := staging.Append(ctx, laketest.New(11, logA).Rows(1000, 100, day), CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	ms, _ := main.Snapshot(ctx)
	ss, _ := staging.Snapshot(ctx)
	mainFiles, stagingFiles := main.Files(ms), staging.Files(ss)

	// main's files: A [0,249] [250,499] [500,749] [750,999], B [0,249] [250,299].
	if len(mainFiles) != 6 {
		t.Fatalf("main has %d files, want 6", len(mainFiles))
	}
	noStats := FileInfo{Path: "nostats.parquet", NumRecords: -1}
	for _, tc := range []struct {
		url        string
		start, end uint64
		files      int
	}{
		{logA, 0, 0, 1},
		{logA, 240, 260, 2},
		{logA, 0, 999, 4},
		{logA, 1000, 2000, 0},
		{logB, 0, 10, 1},
		{logB, 250, 250, 1},
		{"https://ct.example.net/c", 0, 1 << 62, 0},
		{"https://ct.example.net/0", 0, 1 << 62, 0},
	} {
		if got := Prune(mainFiles, tc.url, tc.start, tc.end); len(got) != tc.files {
			t.Errorf("Prune(main, %s, %d, %d) keeps %d files, want %d", tc.url, tc.start, tc.end, len(got), tc.files)
		}
		if got := Prune([]FileInfo{noStats}, tc.url, tc.start, tc.end); len(got) != 1 {
			t.Errorf("Prune(file without stats, %s) dropped it", tc.url)
		}
	}
	// A max source_url cut short by a writer that truncates string stats
	// must not prune the longer URL it stands for.
	truncated := FileInfo{HasKeyStats: true, MinSourceURL: "https://ct.example.net/a", MaxSourceURL: "https://ct.exa", MinCertIndex: 0, MaxCertIndex: 10}
	if got := Prune([]FileInfo{truncated}, "https://ct.example.net/b", 5, 5); len(got) != 1 {
		t.Errorf("Prune(truncated max) dropped the file")
	}
	if got := PruneRange(mainFiles, 260, 260); len(got) != 2 {
		t.Errorf("PruneRange(main, 260, 260) keeps %d files, want 2 (one per log)", len(got))
	}

	db, err := OpenDB(ctx, DBOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func(rel string) int64 {
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+rel+" k").Scan(&n); err != nil {
			t.Fatalf("count(%s): %v", rel, err)
		}
		return n
	}
	for _, tc := range []struct {
		name  string
		rel   func() (string, error)
		count int64
	}{
		{"Main", func() (string, error) { return KeysSQL(mainFiles) }, 1300},
		{"Staging", func() (string, error) { return KeysSQL(stagingFiles) }, 100},
		{"Union", func() (string, error) { return UnionKeysSQL(mainFiles, stagingFiles) }, 1400},
		{"Empty", func() (string, error) { return KeysSQL(nil) }, 0},
		{"UnionEmpty", func() (string, error) { return UnionKeysSQL(nil, stagingFiles) }, 100},
		{"Pruned", func() (string, error) { return KeysSQL(Prune(mainFiles, logA, 0, 0)) }, 250},
	} {
		rel, err := tc.rel()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := count(rel); got != tc.count {
			t.Errorf("%s: count = %d, want %d", tc.name, got, tc.count)
		}
	}
	var typ string
	rel, _ := KeysSQL(mainFiles)
	if err := db.QueryRowContext(ctx, "SELECT typeof(cert_index) || ' ' || typeof(source_url) FROM "+rel+" LIMIT 1").Scan(&typ); err != nil || typ != "BIGINT VARCHAR" {
		t.Errorf("key types = %q, %v; want BIGINT VARCHAR", typ, err)
	}
	if _, err := KeysSQL([]FileInfo{{LocalPath: "/x/[a]/f.parquet"}}); err == nil {
		t.Errorf("KeysSQL(glob path) = nil error, want refusal")
	}
}

// TestManyPartitionsInterleaved writes rows that alternate over 40 days, as
// a merge of a staging table filled over many days may, with a tiny
// row-group memory budget: no deadlock, bounded buffering, every row back.
func TestManyPartitionsInterleaved(t *testing.T) {
	ctx := t.Context()
	tbl, err := OpenOrCreate(ctx, filepath.Join(t.TempDir(), "main"), Options{Role: RoleMain, AsDERBinary: true})
	if err != nil {
		t.Fatal(err)
	}
	const days, perDay = 40, 600
	var rows []record.Row
	gen := laketest.New(13, "https://ct.example.net/log")
	byDay := make([][]record.Row, days)
	for d := range days {
		byDay[d] = gen.Rows(uint64(d*perDay), perDay, day.AddDate(0, 0, d))
	}
	for i := range perDay {
		for d := range days {
			rows = append(rows, byDay[d][i])
		}
	}
	w := tbl.NewWriter(WriterOptions{RowGroupBytes: 4 << 20})
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
		if w.buffered > maxBufferedRows {
			t.Fatalf("%d rows buffered, want at most %d", w.buffered, maxBufferedRows)
		}
	}
	res, err := w.Commit(ctx, CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != days || res.Rows != days*perDay {
		t.Errorf("Commit = %+v, want %d files, %d rows", res, days, days*perDay)
	}
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadRows(ctx, tbl.Files(snap))
	if err != nil {
		t.Fatal(err)
	}
	diffRows(t, got, rows)
}

func TestPartitionOf(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*3600)
	w := &Writer{}
	for _, tc := range []struct {
		seen time.Time
		want string
	}{
		{time.Date(2024, 11, 25, 23, 59, 59, 999_000_000, time.UTC), "2024-11-25"},
		{time.Date(2024, 11, 26, 0, 0, 0, 0, time.UTC), "2024-11-26"},
		{time.Date(2024, 11, 26, 8, 59, 0, 0, tokyo), "2024-11-25"},
		{time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), "1969-12-31"},
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), "1970-01-01"},
		{time.UnixMilli(1700000000000), "2023-11-14"},
	} {
		got, err := w.partitionOf(&record.Row{Seen: tc.seen})
		if got != tc.want || err != nil {
			t.Errorf("partitionOf(seen %s) = %q, %v; want %q", tc.seen, got, err, tc.want)
		}
		if _, err := w.partitionOf(&record.Row{Seen: tc.seen, SeenDate: tc.want}); err != nil {
			t.Errorf("partitionOf(seen %s, seen_date %s) = %v", tc.seen, tc.want, err)
		}
	}
}

// TestReadRowsAcrossBatches reads a file larger than one reader batch and
// one row group: rows from earlier batches must stay intact.
func TestReadRowsAcrossBatches(t *testing.T) {
	ctx := t.Context()
	tbl, err := OpenOrCreate(ctx, filepath.Join(t.TempDir(), "main"), Options{Role: RoleMain})
	if err != nil {
		t.Fatal(err)
	}
	rows := laketest.New(14, "https://ct.example.net/log").Rows(0, 40_000, day)
	w := tbl.NewWriter(WriterOptions{RowGroupRows: 15_000})
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := w.Commit(ctx, CommitOptions{}); err != nil || res.Files != 1 {
		t.Fatalf("Commit = %+v, %v; want 1 file", res, err)
	}
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadRows(ctx, tbl.Files(snap))
	if err != nil {
		t.Fatal(err)
	}
	diffRows(t, got, rows)
}

// TestCommitReadVersion: commits after the caller's read version go through
// Check, which can refuse them; without ReadVersion they are not seen.
func TestCommitReadVersion(t *testing.T) {
	ctx := t.Context()
	tbl, err := OpenOrCreate(ctx, filepath.Join(t.TempDir(), "main"), Options{Role: RoleMain})
	if err != nil {
		t.Fatal(err)
	}
	gen := laketest.New(15, "https://ct.example.net/log")
	if _, err := tbl.Append(ctx, gen.Rows(0, 10, day), CommitOptions{}); err != nil { // version 1
		t.Fatal(err)
	}
	conflict := errors.New("keys taken")
	for _, tc := range []struct {
		name      string
		read      *int64
		wantSeen  int
		wantError bool
	}{
		{"Unset", nil, 0, false},
		{"Latest", ptr(int64(2)), 0, false},
		{"Older", ptr(int64(0)), 3, true}, // versions 1-3 landed after it
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := 0
			_, err := tbl.Append(ctx, gen.Rows(100, 5, day), CommitOptions{
				ReadVersion: tc.read,
				Check: func(winning []delta.Action) error {
					for _, a := range winning {
						if a.Add != nil {
							seen++
						}
					}
					return conflict
				},
			})
			if tc.wantError != (err != nil) || (err != nil && !errors.Is(err, conflict)) {
				t.Errorf("Append(ReadVersion %v) = %v, want error %v", tc.read, err, tc.wantError)
			}
			if seen != tc.wantSeen {
				t.Errorf("Check saw %d adds, want %d", seen, tc.wantSeen)
			}
		})
	}
	if _, err := tbl.Append(ctx, gen.Rows(200, 5, day), CommitOptions{ReadVersion: ptr(int64(99))}); err == nil {
		t.Errorf("Append with a future read version = nil error, want refusal")
	}
}

func ptr[T any](v T) *T { return &v }
