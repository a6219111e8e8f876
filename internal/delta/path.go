package delta

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/certlake/certlake/internal/storage"
)

// add.path and remove.path are URIs (RFC 2396, "Add File and Remove File" in
// PROTOCOL.md): relative to the table root, percent-encoded, and decoded once
// to get the file's path. Partition directories use Hive's escaping on top of
// that, so a value "A/A" lives in directory "x=A%2FA" whose URI is
// "x=A%252FA" (see the delta-0.8.0-special-partition fixture).

// HiveDefaultPartition is the directory value Hive-style writers use for a
// NULL (or empty) partition value.
const HiveDefaultPartition = "__HIVE_DEFAULT_PARTITION__"

// PartitionDir returns the relative directory ("a=1/b=x") a data file with
// these partition values is conventionally written to, escaping names and
// values the way Spark and Hive do. An empty or missing value is NULL and
// becomes HiveDefaultPartition. The result is a file-system path: pass
// path.Join(dir, name) through EncodePath to get add.path.
func PartitionDir(columns []string, values map[string]string) string {
	var b strings.Builder
	for i, c := range columns {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(hiveEscape(c))
		b.WriteByte('=')
		if v := values[c]; v == "" {
			b.WriteString(HiveDefaultPartition)
		} else {
			b.WriteString(hiveEscape(v))
		}
	}
	return b.String()
}

// hiveEscape percent-encodes the characters Hive's escapePathName escapes:
// controls, '"', '#', '%', '\”, '*', '/', ':', '=', '?', '\\', DEL, '{',
// '[', ']', '^'.
func hiveEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20, c == 0x7f, strings.IndexByte("\"#%'*/:=?\\{[]^", c) >= 0:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// EncodePath turns a relative, slash-separated file path into the URI form
// stored in add.path: every byte other than ASCII letters, digits, '-', '.',
// '_', '~', '=' and '/' is percent-encoded (so '%' becomes "%25" and ' '
// becomes "%20"). DecodePath reverses it.
func EncodePath(rel string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(rel))
	for i := 0; i < len(rel); i++ {
		c := rel[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~=/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// DecodePath percent-decodes an add.path once. An absolute "file:" URI
// yields its path; other absolute URIs (s3://...) are returned decoded but
// are not local files.
func DecodePath(p string) (string, error) {
	if i := strings.Index(p, ":"); i > 0 && storage.IsScheme(p[:i]) {
		u, err := url.Parse(p)
		if err != nil {
			return "", fmt.Errorf("decode path %q: %w", p, err)
		}
		if u.Scheme == "file" {
			return u.Path, nil
		}
		return u.String(), nil
	}
	s, err := url.PathUnescape(p)
	if err != nil {
		return "", fmt.Errorf("decode path %q: %w", p, err)
	}
	return s, nil
}

// Key maps a log path (add.path, remove.path) to its key in the table's
// store: the path decoded once. Absolute URIs and paths, which point
// outside the table, are refused: certlake reads and writes only files
// under the table root, as delta-rs writes them.
func Key(p string) (string, error) {
	d, err := DecodePath(p)
	if err != nil {
		return "", err
	}
	if i := strings.Index(p, ":"); i > 0 && storage.IsScheme(p[:i]) || strings.HasPrefix(d, "/") {
		return "", fmt.Errorf("path %q is not relative to the table root", p)
	}
	return d, nil
}

// LocalPath maps a log path of the local table at root to its file.
func LocalPath(root, p string) string { return localPath(root, p) }

// localPath maps a log path to a file-system path under root.
func localPath(root, p string) string {
	d, err := DecodePath(p)
	if err != nil {
		// Undecodable paths are rejected when the log is read; this only
		// guards callers holding hand-built Adds.
		d = p
	}
	if strings.HasPrefix(d, "/") || filepath.IsAbs(d) {
		return filepath.Clean(d)
	}
	return filepath.Join(root, filepath.FromSlash(d))
}

// checkRelativePath rejects log paths a certlake writer must not produce:
// absolute URIs, absolute paths, empty, "." or ".." segments, hidden
// directories, and bytes a URI path must percent-encode.
func checkRelativePath(p string) error {
	if p == "" {
		return fmt.Errorf("empty path")
	}
	if i := strings.Index(p, ":"); i > 0 && storage.IsScheme(p[:i]) {
		return fmt.Errorf("path %q is an absolute URI, want a path relative to the table root", p)
	}
	if err := checkEncoded(p); err != nil {
		return err
	}
	d, err := DecodePath(p)
	if err != nil {
		return err
	}
	if strings.HasPrefix(d, "/") {
		return fmt.Errorf("path %q is absolute, want a path relative to the table root", p)
	}
	segs := strings.Split(d, "/")
	for _, seg := range segs {
		if seg == ".." || seg == "." || seg == "" {
			return fmt.Errorf("path %q has an empty, '.' or '..' segment", p)
		}
	}
	// PROTOCOL.md "Data Files": data lives in the root or in non-hidden
	// directories (not starting with '_'; '.' is hidden too on disk).
	for _, seg := range segs[:len(segs)-1] {
		if seg[0] == '_' || seg[0] == '.' {
			return fmt.Errorf("path %q is inside hidden directory %q", p, seg)
		}
	}
	return nil
}

// checkEncoded reports raw bytes in p that a URI path must percent-encode
// (space, controls, non-ASCII, '#', '?', '%' not starting an escape, ...).
func checkEncoded(p string) error {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return fmt.Errorf("path %q has a bad %%-escape at byte %d", p, i)
			}
		case c <= ' ' || c >= 0x7f || strings.IndexByte("\"#<>?[\\]^`{|}", c) >= 0:
			return fmt.Errorf("path %q has unencoded byte %q at %d", p, c, i)
		}
	}
	return nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
