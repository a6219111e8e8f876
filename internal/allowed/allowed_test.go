package allowed

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	base := t.TempDir()
	lakeDir := filepath.Join(base, "lake")
	outside := filepath.Join(base, "elsewhere")
	for _, d := range []string{filepath.Join(lakeDir, "main"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(lakeDir, "link-out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(lakeDir, "main"), filepath.Join(base, "link-in")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "missing"), filepath.Join(lakeDir, "dangling")); err != nil {
		t.Fatal(err)
	}
	l, err := New([]string{lakeDir, "s3://lake-bucket/tables"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		raw  string
		ok   bool
		want string // substring of the error
	}{
		{filepath.Join(lakeDir, "staging"), true, ""},           // not created yet
		{filepath.Join(lakeDir, "a", "b", "staging"), true, ""}, // deeper, not created
		{"file://" + filepath.Join(lakeDir, "staging"), true, ""},
		{lakeDir, true, ""},
		{filepath.Join(base, "link-in", "staging"), true, ""}, // a link into the lake
		{filepath.Join(base, "lake-sibling"), false, "outside the allowed locations"},
		{filepath.Join(base, "lakehouse"), false, "outside"}, // a name that only starts like the prefix
		{outside, false, "outside"},
		{"/", false, "outside"},
		{lakeDir + "/../elsewhere", false, `".."`},
		{lakeDir + "/main/../staging", false, `".."`}, // even one that stays inside: refused, not guessed
		{"file://" + lakeDir + "/main/../../elsewhere", false, `".."`},
		{filepath.Join(lakeDir, "link-out", "staging"), false, "outside"},
		{filepath.Join(lakeDir, "dangling", "staging"), false, "missing target"},
		{"s3://lake-bucket/tables/staging", true, ""},
		{"s3://lake-bucket/tables", true, ""},
		{"s3://lake-bucket/tablesx/staging", false, "outside"},
		{"s3://other-bucket/tables/staging", false, "outside"},
		{"s3://lake-bucket/tables/../x", false, ".."},
		{"gs://lake-bucket/tables", false, "unknown scheme"},
	} {
		loc, err := l.Check("staging_path", tt.raw)
		if tt.ok {
			if err != nil {
				t.Errorf("Check(%q) = %v, want allowed", tt.raw, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("Check(%q) = %v, want refused", tt.raw, loc)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Check(%q) = %v, want it to say %q", tt.raw, err, tt.want)
		}
		if tt.want == "outside" || strings.HasPrefix(tt.want, "outside ") {
			if !errors.Is(err, ErrOutside) || !strings.Contains(err.Error(), Key) {
				t.Errorf("Check(%q) = %v: want ErrOutside naming %s", tt.raw, err, Key)
			}
		}
	}
}

func TestDefaults(t *testing.T) {
	got := Defaults("/lake/main", "/lake/staging")
	if len(got) != 1 || got[0] != "/lake" {
		t.Errorf("Defaults(/lake/main, /lake/staging) = %q, want [/lake]", got)
	}
	got = Defaults("s3://bkt/lake/main", "/data/staging")
	if len(got) != 2 || got[0] != "s3://bkt/lake" || got[1] != "/data" {
		t.Errorf("Defaults(s3 main, local staging) = %q", got)
	}
	if got := Defaults("s3://bkt/main", ""); len(got) != 1 || got[0] != "s3://bkt" {
		t.Errorf("Defaults(s3://bkt/main) = %q, want [s3://bkt]", got)
	}
}

func TestEmptyListAllowsNothing(t *testing.T) {
	var l List
	if _, err := l.Check("staging_path", t.TempDir()); !errors.Is(err, ErrOutside) {
		t.Errorf("zero List allowed a location: %v", err)
	}
}
