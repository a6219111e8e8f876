package laketest

import (
	"io"
	"os"
	"path/filepath"
	"strings"
)

// CloneTable copies the table at src to dst for one destructive run (a
// merge benchmark): the Delta log is copied, the immutable data files are
// hard-linked, so a clone of a large table is cheap and shares no mutable
// state with the original.
func CloneTable(src, dst string) error {
	return filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		if strings.HasSuffix(p, ".parquet") && !strings.Contains(rel, "_delta_log") {
			return os.Link(p, out)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		o, err := os.Create(out)
		if err != nil {
			return err
		}
		if _, err := io.Copy(o, in); err != nil {
			o.Close()
			return err
		}
		return o.Close()
	})
}
