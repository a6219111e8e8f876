package storage_test

import (
	"bytes"

	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/certlake/certlake/internal/storage"
	"github.com/certlake/certlake/internal/storage/storagetest"
)

// stores runs f against every Store implementation: a local directory and
// a prefix of a bucket on a real versitygw.
func stores(t *testing.T, f func(t *testing.T, s storage.Store)) {
	t.Run("dir", func(t *testing.T) {
		f(t, storage.NewDir(t.TempDir()))
	})
	t.Run("s3", func(t *testing.T) {
		srv := storagetest.Start(t)
		o := &storage.Opener{S3: srv.Config()}
		s, err := o.OpenURI(t.Context(), "test", "s3://"+srv.Bucket(t)+"/some/table")
		if err != nil {
			t.Fatal(err)
		}
		f(t, s)
	})
}

func read(t *testing.T, s storage.Store, key string, off, n int64) string {
	t.Helper()
	r, err := s.GetRange(t.Context(), key, off, n)
	if err != nil {
		t.Fatalf("GetRange(%s, %d, %d): %v", key, off, n, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStoreReadWrite(t *testing.T) {
	stores(t, func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		if _, err := s.Get(ctx, "a/missing"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get(missing) = %v, want ErrNotFound", err)
		}
		if _, err := s.Stat(ctx, "a/missing"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat(missing) = %v, want ErrNotFound", err)
		}
		if err := storage.PutBytes(ctx, s, "a/b/obj.json", []byte("0123456789")); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			off, n int64
			want   string
		}{{0, -1, "0123456789"}, {3, 4, "3456"}, {7, -1, "789"}, {8, 100, "89"}, {10, 5, ""}, {0, 0, ""}} {
			if got := read(t, s, "a/b/obj.json", c.off, c.n); got != c.want {
				t.Errorf("GetRange(%d, %d) = %q, want %q", c.off, c.n, got, c.want)
			}
		}
		if i, err := s.Stat(ctx, "a/b/obj.json"); err != nil || i.Size != 10 || i.Key != "a/b/obj.json" {
			t.Errorf("Stat = %+v, %v, want size 10", i, err)
		}
		if err := storage.PutBytes(ctx, s, "a/b/obj.json", []byte("new")); err != nil {
			t.Fatal(err)
		}
		if got := read(t, s, "a/b/obj.json", 0, -1); got != "new" {
			t.Errorf("after replace Get = %q, want %q", got, "new")
		}
		if err := s.Delete(ctx, "a/b/obj.json"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "a/b/obj.json"); err != nil {
			t.Errorf("Delete(missing) = %v, want nil", err)
		}
		if _, err := s.Get(ctx, "a/b/obj.json"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get(deleted) = %v, want ErrNotFound", err)
		}
		for _, k := range []string{"", "/abs", "dir/", "a//b", "a/../b", "./a"} {
			if err := storage.PutBytes(ctx, s, k, nil); err == nil {
				t.Errorf("Put(%q) succeeded, want a refused key", k)
			}
		}
	})
}

func TestStoreList(t *testing.T) {
	stores(t, func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		// In key (byte) order: ".checkpoint" sorts before ".json".
		keys := []string{"_delta_log/00000000000000000000.json", "_delta_log/00000000000000000001.checkpoint.parquet",
			"_delta_log/00000000000000000001.json", "_delta_log/00000000000000000002.json",
			"part-1.parquet", "x=a/part-2.parquet", "x=b/y=c/part-3.parquet"}
		for _, k := range keys {
			if err := storage.PutBytes(ctx, s, k, []byte(k)); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			prefix, after string
			want          []string
		}{
			{"_delta_log/", "", keys[:4]},
			{"_delta_log/", "_delta_log/00000000000000000001.json", keys[3:4]},
			{"_delta_log/00000000000000000001", "", keys[1:3]},
			{"", "", []string{keys[0], keys[1], keys[2], keys[3], "part-1.parquet", "x=a/part-2.parquet", "x=b/y=c/part-3.parquet"}},
			{"x=", "", []string{"x=a/part-2.parquet", "x=b/y=c/part-3.parquet"}},
			{"nothing/", "", nil},
		} {
			l, err := s.List(ctx, c.prefix, c.after, 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, i := range l {
				got = append(got, i.Key)
				if i.Size != int64(len(i.Key)) {
					t.Errorf("List: %s size %d, want %d", i.Key, i.Size, len(i.Key))
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("List(%q, %q) = %v, want %v", c.prefix, c.after, got, c.want)
			}
		}
		sub := storage.Sub(s, "x=b")
		l, err := sub.List(ctx, "", "", 0)
		if err != nil || len(l) != 1 || l[0].Key != "y=c/part-3.parquet" {
			t.Errorf("Sub(x=b).List = %v, %v, want [y=c/part-3.parquet]", l, err)
		}
		if got := string(must(storage.ReadAll(ctx, sub, "y=c/part-3.parquet"))); got != "x=b/y=c/part-3.parquet" {
			t.Errorf("Sub read = %q", got)
		}
	})
}

// TestStorePutIfAbsentRace: of 32 writers racing for one key exactly one
// wins, and the key holds the winner's bytes.
func TestStorePutIfAbsentRace(t *testing.T) {
	stores(t, func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		for round := range 3 {
			key := fmt.Sprintf("_delta_log/%020d.json", round)
			var wg sync.WaitGroup
			errs := make([]error, 32)
			for i := range errs {
				wg.Go(func() {
					errs[i] = s.PutIfAbsent(ctx, key, []byte(fmt.Sprintf("writer %d", i)))
				})
			}
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("round %d: writers %d and %d both won", round, winner, i)
				case err == nil:
					winner = i
				case !errors.Is(err, storage.ErrExists):
					t.Fatalf("round %d: writer %d: %v, want nil or ErrExists", round, i, err)
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: no writer won", round)
			}
			if got, want := string(must(storage.ReadAll(ctx, s, key))), fmt.Sprintf("writer %d", winner); got != want {
				t.Errorf("round %d: key holds %q, want the winner's %q", round, got, want)
			}
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestStoreLargePut(t *testing.T) {
	stores(t, func(t *testing.T, s storage.Store) {
		data := bytes.Repeat([]byte("certlake"), 5<<20) // 40 MiB: three parts of 16 MiB on S3
		if err := s.Put(t.Context(), "big/part-0.parquet", bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		got := must(storage.ReadAll(t.Context(), s, "big/part-0.parquet"))
		if !bytes.Equal(got, data) {
			t.Errorf("read back %d bytes, want %d equal", len(got), len(data))
		}
		if got := read(t, s, "big/part-0.parquet", 16<<20-8, 16); got != "certlakecertlake" {
			t.Errorf("range across a part boundary = %q", got)
		}
	})
}

func TestParseLocation(t *testing.T) {
	for _, c := range []struct {
		in, want, err string
	}{
		{"./data/main", "data/main", ""},
		{"/srv/lake/main/", "/srv/lake/main", ""},
		{"file:///srv/lake/main", "/srv/lake/main", ""},
		{"s3://bucket/lake/main/", "s3://bucket/lake/main", ""},
		{"s3://my.bucket", "s3://my.bucket", ""},
		{"", "", "empty location"},
		{"gs://bucket/x", "", `unknown scheme "gs"`},
		{"file://host/x", "", "names host"},
		{"file:relative", "", "not absolute"},
		{"s3:///nobucket", "", "names no bucket"},
		{"s3://Bad_Bucket/x", "", "bucket name"},
		{"s3://bucket/a/../b", "", "prefix"},
		{"s3://AKIA:secretvalue@bucket/x", "", "holds credentials"},
		{"s3://bucket/x?versionId=1", "", "query"},
	} {
		l, err := storage.ParseLocation("lake.main_path", c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "lake.main_path") || !strings.Contains(err.Error(), "s3://bucket/prefix") || !errors.Is(err, storage.ErrConfig) {
				t.Errorf("ParseLocation(%q) = %v, want an ErrConfig naming the key, the accepted forms and %q", c.in, err, c.err)
			}
			if err != nil && strings.Contains(err.Error(), "secretvalue") {
				t.Errorf("ParseLocation(%q) error shows the secret: %v", c.in, err)
			}
			continue
		}
		if err != nil || l.String() != c.want {
			t.Errorf("ParseLocation(%q) = %q, %v, want %q", c.in, l.String(), err, c.want)
		}
	}
	l, _ := storage.ParseLocation("k", "s3://b00/lake/main")
	if got := l.Parent().Child(".certlake-plans").String(); got != "s3://b00/lake/.certlake-plans" {
		t.Errorf("plan dir next to main = %q", got)
	}
	if got := l.Parent().Parent().Child("x").String(); got != "s3://b00/x" {
		t.Errorf("bucket root child = %q", got)
	}
}

// TestStoreOpenAndPutFile: random access reads by ranges, and a local
// temp file published whole.
func TestStoreOpenAndPutFile(t *testing.T) {
	stores(t, func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		f, err := storage.CreateTemp(s, "d=1/part-0.parquet", t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("0123456789abcdef"); err != nil {
			t.Fatal(err)
		}
		if err := storage.PutFile(ctx, s, "d=1/part-0.parquet", f, false); err != nil {
			t.Fatal(err)
		}
		l, err := s.List(ctx, "", "", 0)
		if err != nil || len(l) != 1 || l[0].Key != "d=1/part-0.parquet" || l[0].Size != 16 {
			t.Fatalf("after PutFile List = %+v, %v; want the one object, no temp file", l, err)
		}
		r, size, err := storage.Open(ctx, s, "d=1/part-0.parquet")
		if err != nil || size != 16 {
			t.Fatalf("Open = %d, %v", size, err)
		}
		defer r.Close()
		buf := make([]byte, 4)
		if n, err := r.ReadAt(buf, 12); n != 4 || err != nil && err != io.EOF || string(buf) != "cdef" {
			t.Errorf("ReadAt(12) = %d, %v, %q", n, err, buf)
		}
		if _, err := r.Seek(-6, io.SeekEnd); err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(r)
		if err != nil || string(rest) != "abcdef" {
			t.Errorf("read from end-6 = %q, %v", rest, err)
		}
		if _, _, err := storage.Open(ctx, s, "missing.parquet"); !errors.Is(err, storage.ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open(missing) = %v, want ErrNotFound and fs.ErrNotExist", err)
		}
	})
}
