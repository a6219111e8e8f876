package delta

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// testSchema is a small certstream-like schema, partitioned by seen_date.
const testSchema = `{"type":"struct","fields":[` +
	`{"name":"cert_index","type":"long","nullable":false,"metadata":{}},` +
	`{"name":"source_url","type":"string","nullable":false,"metadata":{}},` +
	`{"name":"all_domains","type":{"type":"array","elementType":"string","containsNull":true},"nullable":true,"metadata":{}},` +
	`{"name":"seen","type":"timestamp","nullable":false,"metadata":{}},` +
	`{"name":"seen_date","type":"date","nullable":true,"metadata":{}}]}`

func testMeta() Metadata {
	return Metadata{SchemaString: testSchema, PartitionColumns: []string{"seen_date"}}
}

// newTestTable creates an empty partitioned table in a temp dir.
func newTestTable(t testing.TB, opts Options) *Table {
	t.Helper()
	tbl, err := Create(t.Context(), filepath.Join(t.TempDir(), "table"), testMeta(), Protocol{}, opts)
	if err != nil {
		t.Fatalf("Create() = %v", err)
	}
	return tbl
}

// dataFile writes a dummy data file for partition value date and returns
// its add action (path relative and URI-encoded, as a writer must).
func dataFile(t testing.TB, root, date, name string, rows int64) Add {
	t.Helper()
	rel := path.Join(PartitionDir([]string{"seen_date"}, map[string]string{"seen_date": date}), name)
	full := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	body := []byte("not parquet: " + name)
	if err := os.WriteFile(full, body, 0o644); err != nil {
		t.Fatal(err)
	}
	st := Stats{
		NumRecords: rows,
		MinValues:  map[string]any{"cert_index": 1, "source_url": "https://ct.example/log"},
		MaxValues:  map[string]any{"cert_index": rows, "source_url": "https://ct.example/log"},
		NullCount:  map[string]any{"cert_index": 0, "source_url": 0},
	}
	s, err := st.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return Add{
		Path:            EncodePath(rel),
		PartitionValues: map[string]string{"seen_date": date},
		Size:            int64(len(body)),
		DataChange:      true,
		Stats:           s,
	}
}

func TestRoundTripValidates(t *testing.T) {
	ctx := t.Context()
	tbl := newTestTable(t, Options{CheckpointInterval: 3})
	root := tbl.Root()
	// Partition values that need escaping on disk and in the URI.
	dates := []string{"2024-01-01", "2024-01-02", "a b", "x/y", "50%", "ü:ß#?", ""}
	var want []Add
	version := int64(0)
	for i, d := range dates {
		a := dataFile(t, root, d, fmt.Sprintf("part-%05d-%d.zstd.parquet", i, i), int64(10+i))
		res, err := tbl.Commit(ctx, version, []Action{{Add: &a}}, CommitOptions{Operation: "WRITE", Txn: &Txn{AppID: "writer", Version: int64(i)}})
		if err != nil {
			t.Fatalf("Commit(%q) = %v", d, err)
		}
		version = res.Version
		want = append(want, a)
	}
	// Remove one file, re-add another with new stats (newest action wins).
	rm := want[1]
	res, err := tbl.Commit(ctx, version, []Action{{Remove: &Remove{Path: rm.Path, DataChange: true, PartitionValues: rm.PartitionValues}}}, CommitOptions{Operation: "DELETE"})
	if err != nil {
		t.Fatalf("Commit(remove) = %v", err)
	}
	version = res.Version
	want = slices.Delete(want, 1, 2)

	if err := Validate(ctx, root); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	if _, err := os.Stat(filepath.Join(tbl.logDir(), checkpointName(6))); err != nil {
		t.Errorf("checkpoint at 6 (interval 3): %v", err)
	}
	lc, err := readLastCheckpoint(t.Context(), tbl.log)
	if err != nil || lc.Version != 6 || lc.Size != int64(2+1+6) {
		t.Errorf("_last_checkpoint = %+v, %v; want version 6 with 9 actions", lc, err)
	}

	for _, name := range []string{"cached", "fresh"} {
		t.Run(name, func(t *testing.T) {
			r := tbl
			if name == "fresh" {
				r, err = Open(ctx, root, Options{})
				if err != nil {
					t.Fatal(err)
				}
			}
			s, err := r.Snapshot(ctx)
			if err != nil {
				t.Fatalf("Snapshot() = %v", err)
			}
			if s.Version != version {
				t.Errorf("Version = %d, want %d", s.Version, version)
			}
			if s.Txns["writer"] != int64(len(dates)-1) {
				t.Errorf("Txns = %v, want writer=%d", s.Txns, len(dates)-1)
			}
			wantSorted := slices.Clone(want)
			slices.SortFunc(wantSorted, func(a, b Add) int { return strings.Compare(a.Path, b.Path) })
			if len(s.Files) != len(wantSorted) {
				t.Fatalf("%d files, want %d", len(s.Files), len(wantSorted))
			}
			for i, got := range s.Files {
				w := wantSorted[i]
				if got.Path != w.Path || !reflect.DeepEqual(got.PartitionValues, w.PartitionValues) || got.Size != w.Size || got.Stats != w.Stats {
					t.Errorf("Files[%d] = %+v, want %+v", i, got, w)
				}
				if _, err := os.Stat(s.LocalPath(got)); err != nil {
					t.Errorf("LocalPath(%s): %v", got.Path, err)
				}
			}
			if n, ok := s.NumRecords(); !ok || n != 10+0+12+13+14+15+16 {
				t.Errorf("NumRecords() = %d, %v", n, ok)
			}
			if !s.Schema.Fields[2].Type.Equal(DataType{Array: &ArrayType{ElementType: DataType{Primitive: "string"}, ContainsNull: true}}) {
				t.Errorf("schema field 2 = %s", s.Schema.Fields[2].Type)
			}
		})
	}
	// Every commit is one JSON action per line, commitInfo first.
	b, err := os.ReadFile(filepath.Join(tbl.logDir(), commitName(1)))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], `{"commitInfo":{`) || !strings.Contains(lines[0], `"engineInfo":"certlake"`) {
		t.Errorf("commit 1 = %q, want commitInfo, add, txn lines", lines)
	}
}

func TestPartitionPaths(t *testing.T) {
	tests := []struct {
		value, dir, uri string
	}{
		{"2024-01-01", "d=2024-01-01", "d=2024-01-01"},
		{"A/A", "d=A%2FA", "d=A%252FA"},
		{"B B", "d=B B", "d=B%20B"},
		{"", "d=" + HiveDefaultPartition, "d=" + HiveDefaultPartition},
		{"a:b=c", "d=a%3Ab%3Dc", "d=a%253Ab%253Dc"},
		{"é", "d=é", "d=%C3%A9"},
	}
	for _, tt := range tests {
		dir := PartitionDir([]string{"d"}, map[string]string{"d": tt.value})
		if dir != tt.dir {
			t.Errorf("PartitionDir(%q) = %q, want %q", tt.value, dir, tt.dir)
		}
		if got := EncodePath(dir); got != tt.uri {
			t.Errorf("EncodePath(%q) = %q, want %q", dir, got, tt.uri)
		}
		if got, err := DecodePath(tt.uri); err != nil || got != dir {
			t.Errorf("DecodePath(%q) = %q, %v; want %q", tt.uri, got, err, dir)
		}
		if err := checkRelativePath(EncodePath(dir + "/f.parquet")); err != nil {
			t.Errorf("checkRelativePath(%q) = %v", EncodePath(dir), err)
		}
	}
	s := &Snapshot{root: "/data/t"}
	for in, want := range map[string]string{
		"a%20b/c.parquet":           "/data/t/a b/c.parquet",
		"file:///abs/x%20y.parquet": "/abs/x y.parquet",
		"/abs/z.parquet":            "/abs/z.parquet",
	} {
		if got := s.LocalPath(Add{Path: in}); got != want {
			t.Errorf("LocalPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCommitRejectsInvalidActions(t *testing.T) {
	tbl := newTestTable(t, Options{})
	pv := map[string]string{"seen_date": "2024-01-01"}
	tests := []struct {
		name    string
		actions []Action
	}{
		{"absolute path", []Action{{Add: &Add{Path: "/etc/passwd", PartitionValues: pv, Size: 1}}}},
		{"absolute URI", []Action{{Add: &Add{Path: "file:///x.parquet", PartitionValues: pv, Size: 1}}}},
		{"unencoded space", []Action{{Add: &Add{Path: "a b.parquet", PartitionValues: pv, Size: 1}}}},
		{"dot dot", []Action{{Add: &Add{Path: "../x.parquet", PartitionValues: pv, Size: 1}}}},
		{"hidden dir", []Action{{Add: &Add{Path: "_delta_log/x.parquet", PartitionValues: pv, Size: 1}}}},
		{"missing partition value", []Action{{Add: &Add{Path: "x.parquet", Size: 1}}}},
		{"extra partition value", []Action{{Add: &Add{Path: "x.parquet", PartitionValues: map[string]string{"seen_date": "", "y": "1"}, Size: 1}}}},
		{"bad stats", []Action{{Add: &Add{Path: "x.parquet", PartitionValues: pv, Size: 1, Stats: "{nope"}}}},
		{"add twice", []Action{{Add: &Add{Path: "x.parquet", PartitionValues: pv}}, {Add: &Add{Path: "x.parquet", PartitionValues: pv}}}},
		{"two fields", []Action{{Add: &Add{Path: "x.parquet", PartitionValues: pv}, Remove: &Remove{Path: "y"}}}},
		{"empty action", []Action{{}}},
		{"remove without path", []Action{{Remove: &Remove{}}}},
		{"txn without appId", []Action{{Txn: &Txn{Version: 1}}}},
		{"partition column not in schema", []Action{{MetaData: &Metadata{ID: "x", Format: Format{Provider: "parquet"}, SchemaString: testSchema, PartitionColumns: []string{"nope"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tbl.Commit(t.Context(), 0, tt.actions, CommitOptions{})
			if !errors.Is(err, ErrInvalidAction) {
				t.Errorf("Commit(%s) = %v, want ErrInvalidAction", tt.name, err)
			}
		})
	}
	if v, _ := tbl.LatestVersion(t.Context()); v != 0 {
		t.Errorf("LatestVersion() = %d after rejected commits, want 0", v)
	}
}

func TestAppendOnlyRefusesRemoves(t *testing.T) {
	m := testMeta()
	m.Configuration = map[string]string{"delta.appendOnly": "true"}
	tbl, err := Create(t.Context(), t.TempDir(), m, Protocol{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := dataFile(t, tbl.Root(), "2024-01-01", "f.parquet", 1)
	if _, err := tbl.Commit(t.Context(), 0, []Action{{Add: &a}}, CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = tbl.Commit(t.Context(), 1, []Action{{Remove: &Remove{Path: a.Path, DataChange: true}}}, CommitOptions{})
	if !errors.Is(err, ErrInvalidAction) {
		t.Errorf("Commit(remove) on append-only = %v, want ErrInvalidAction", err)
	}
	// Rearranging (dataChange=false) is allowed.
	if _, err := tbl.Commit(t.Context(), 1, []Action{{Remove: &Remove{Path: a.Path}}}, CommitOptions{}); err != nil {
		t.Errorf("Commit(remove, dataChange=false) = %v", err)
	}
}

func TestCreateRefusesExisting(t *testing.T) {
	tbl := newTestTable(t, Options{})
	if _, err := Create(t.Context(), tbl.Root(), testMeta(), Protocol{}, Options{}); !errors.Is(err, ErrExists) {
		t.Errorf("Create() on a table = %v, want ErrExists", err)
	}
	if _, err := Create(t.Context(), t.TempDir(), testMeta(), Protocol{MinReaderVersion: 3, MinWriterVersion: 7, ReaderFeatures: []string{"deletionVectors"}, WriterFeatures: []string{"deletionVectors"}}, Options{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Create(3/7) = %v, want ErrUnsupported", err)
	}
	if _, err := Open(t.Context(), t.TempDir(), Options{}); !errors.Is(err, ErrNotATable) {
		t.Errorf("Open(empty dir) = %v, want ErrNotATable", err)
	}
}

func TestDelete(t *testing.T) {
	tbl := newTestTable(t, Options{})
	dataFile(t, tbl.Root(), "2024-01-01", "f.parquet", 1)
	if err := Delete(t.Context(), tbl.Root()); err != nil {
		t.Fatalf("Delete() = %v", err)
	}
	if _, err := os.Stat(tbl.Root()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("root after Delete: %v", err)
	}
	if err := Delete(t.Context(), tbl.Root()); !errors.Is(err, ErrNotATable) {
		t.Errorf("Delete() again = %v, want ErrNotATable", err)
	}
	// A deleted and re-created table is re-read, not served from cache.
	tbl2, err := Create(t.Context(), tbl.Root(), testMeta(), Protocol{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = tbl2
	s, err := tbl.Snapshot(t.Context())
	if err != nil || s.Version != 0 || len(s.Files) != 0 {
		t.Errorf("Snapshot() via the old Table = %+v, %v; want empty version 0", s, err)
	}
}

func TestSnapshotErrors(t *testing.T) {
	// Build a table with commits 0..5, then damage copies of it.
	tbl := newTestTable(t, Options{})
	for i := range 5 {
		a := dataFile(t, tbl.Root(), "2024-01-01", fmt.Sprintf("f%d.parquet", i), 1)
		if _, err := tbl.Commit(t.Context(), int64(i), []Action{{Add: &a}}, CommitOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		damage  func(dir string) error
		version int64 // -1 latest
		want    error
		inMsg   string
	}{
		{"hole", func(d string) error { return os.Remove(filepath.Join(d, commitName(3))) }, -1, ErrCorrupt, commitName(3)},
		{"bad json", func(d string) error {
			return os.WriteFile(filepath.Join(d, commitName(4)), []byte("{\"add\":\n"), 0o644)
		}, -1, ErrCorrupt, commitName(4)},
		{"vacuumed start", func(d string) error { return os.Remove(filepath.Join(d, commitName(0))) }, 2, ErrVersionNotFound, ""},
		{"future", func(string) error { return nil }, 9, ErrVersionNotFound, ""},
		{"no log", func(d string) error { return os.RemoveAll(d) }, -1, ErrNotATable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp := copyTable(t, tbl.Root())
			if err := tt.damage(filepath.Join(cp, logDirName)); err != nil {
				t.Fatal(err)
			}
			r, err := newTable(t.Context(), cp, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tt.version < 0 {
				_, err = r.Snapshot(t.Context())
			} else {
				_, err = r.SnapshotAt(t.Context(), tt.version)
			}
			if !errors.Is(err, tt.want) || !strings.Contains(fmt.Sprint(err), tt.inMsg) {
				t.Errorf("Snapshot(%s) = %v, want %v naming %q", tt.name, err, tt.want, tt.inMsg)
			}
			if tt.name == "hole" {
				if err := Validate(t.Context(), cp); !errors.Is(err, ErrCorrupt) {
					t.Errorf("Validate(hole) = %v, want ErrCorrupt", err)
				}
			}
		})
	}
}

func TestValidateFindsProblems(t *testing.T) {
	tbl := newTestTable(t, Options{})
	good := `{"commitInfo":{"timestamp":1}}` + "\n"
	add := func(body string) string { return `{"add":{` + body + `}}` }
	okAdd := `"path":"seen_date=2024-01-01/a.parquet","partitionValues":{"seen_date":"2024-01-01"},"size":1,"modificationTime":1,"dataChange":true`
	tests := []struct {
		name, commit, inMsg string
	}{
		{"two actions on a line", `{"add":{` + okAdd + `},"txn":{"appId":"a","version":1}}`, "want exactly one"},
		{"blank line", good + "\n" + add(okAdd), "blank line"},
		{"not json", "{nope", "not a JSON object"},
		{"missing size", add(`"path":"a.parquet","partitionValues":{"seen_date":"x"},"modificationTime":1,"dataChange":true`), "missing required field size"},
		{"missing partitionValues", add(`"path":"a.parquet","size":1,"modificationTime":1,"dataChange":true`), "missing required field partitionValues"},
		{"numeric partition value", add(`"path":"a.parquet","partitionValues":{"seen_date":1},"size":1,"modificationTime":1,"dataChange":true`), "want a string or null"},
		{"wrong partition key", add(`"path":"a.parquet","partitionValues":{"d":"1"},"size":1,"modificationTime":1,"dataChange":true`), "partitionValues keys"},
		{"unencoded path", add(`"path":"a b.parquet","partitionValues":{"seen_date":"x"},"size":1,"modificationTime":1,"dataChange":true`), "unencoded"},
		{"absolute path", add(`"path":"file:///a.parquet","partitionValues":{"seen_date":"x"},"size":1,"modificationTime":1,"dataChange":true`), "absolute URI"},
		{"bad stats", add(okAdd + `,"stats":"{\"numRecords\":"`), "parse stats"},
		{"stats without numRecords", add(okAdd + `,"stats":"{}"`), "without numRecords"},
		{"dataChange string", add(`"path":"a.parquet","partitionValues":{"seen_date":"x"},"size":1,"modificationTime":1,"dataChange":"yes"`), "want a boolean"},
		{"unknown action", `{"frobnicate":{}}`, "unknown action"},
		{"remove without dataChange", `{"remove":{"path":"a.parquet"}}`, "missing required field dataChange"},
		{"two metaData", `{"metaData":{"id":"a","format":{"provider":"parquet"},"schemaString":"{\"type\":\"struct\",\"fields\":[{\"name\":\"seen_date\",\"type\":\"date\",\"nullable\":true,\"metadata\":{}}]}","partitionColumns":["seen_date"],"configuration":{}}}` + "\n" +
			`{"metaData":{"id":"a","format":{"provider":"parquet"},"schemaString":"{\"type\":\"struct\",\"fields\":[]}","partitionColumns":[],"configuration":{}}}`, "want at most one each"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp := copyTable(t, tbl.Root())
			if err := os.WriteFile(filepath.Join(cp, logDirName, commitName(1)), []byte(tt.commit+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			err := Validate(t.Context(), cp)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(fmt.Sprint(err), tt.inMsg) {
				t.Errorf("Validate(%s) = %v, want ErrCorrupt mentioning %q", tt.name, err, tt.inMsg)
			}
		})
	}
}
