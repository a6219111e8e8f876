package storage

import (
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"
)

// Location is a parsed table location: a local directory or a prefix of
// an S3 bucket.
type Location struct {
	// Scheme is "file" or "s3".
	Scheme string
	// Dir is the local directory (Scheme "file"), as given when it was a
	// plain path, cleaned.
	Dir string
	// Bucket and Prefix locate an s3 root; Prefix has no leading or
	// trailing '/' and may be empty (the whole bucket).
	Bucket, Prefix string
}

// AcceptedForms lists what a location may look like, for error messages.
const AcceptedForms = "a local path, file:///absolute/path or s3://bucket/prefix"

// ParseLocation parses a table location given under the config key or
// input name key ("lake.main_path", "staging_path"): a plain path,
// file:///abs/path or s3://bucket/prefix. Errors name key and the accepted
// forms.
func ParseLocation(key, raw string) (Location, error) {
	bad := func(format string, a ...any) (Location, error) {
		return Location{}, configError(fmt.Sprintf("%s: %s; accepted: %s", key, fmt.Sprintf(format, a...), AcceptedForms))
	}
	if strings.TrimSpace(raw) == "" {
		return bad("empty location")
	}
	scheme, _, hasScheme := strings.Cut(raw, ":")
	if !hasScheme || !IsScheme(scheme) {
		return Location{Scheme: "file", Dir: filepath.Clean(raw)}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("malformed URI %q", redactURL(raw))
	}
	if u.User != nil {
		return bad("%q holds credentials: put them in storage.s3.* or the AWS environment, never in a URI", redactURL(raw))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return bad("%q has a query or fragment", raw)
	}
	switch strings.ToLower(u.Scheme) {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return bad("file URI %q names host %q: want file:///absolute/path", raw, u.Host)
		}
		if u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
			return bad("file URI %q is not absolute: want file:///absolute/path", raw)
		}
		return Location{Scheme: "file", Dir: filepath.Clean(filepath.FromSlash(u.Path))}, nil
	case "s3", "s3a":
		if u.Opaque != "" || u.Host == "" {
			return bad("s3 URI %q names no bucket: want s3://bucket/prefix", raw)
		}
		if err := checkBucket(u.Host); err != nil {
			return bad("s3 URI %q: %v", raw, err)
		}
		p := strings.Trim(u.Path, "/")
		if p != "" {
			if err := CheckKey(p); err != nil {
				return bad("s3 URI %q: prefix: %v", raw, err)
			}
		}
		return Location{Scheme: "s3", Bucket: u.Host, Prefix: p}, nil
	default:
		return bad("unknown scheme %q in %q", u.Scheme, raw)
	}
}

// String is the location as a URI for s3, and as the directory for a local
// path (so messages about local tables read as before).
func (l Location) String() string {
	if l.Scheme == "s3" {
		if l.Prefix == "" {
			return "s3://" + l.Bucket
		}
		return "s3://" + l.Bucket + "/" + l.Prefix
	}
	return l.Dir
}

// IsLocal reports whether the location is a directory on this machine.
func (l Location) IsLocal() bool { return l.Scheme != "s3" }

// Child is the location of name below l (name is slash-separated).
func (l Location) Child(name string) Location {
	name = strings.Trim(name, "/")
	if l.Scheme == "s3" {
		l.Prefix = strings.TrimPrefix(path.Join(l.Prefix, name), "/")
		return l
	}
	l.Dir = filepath.Join(l.Dir, filepath.FromSlash(name))
	return l
}

// Parent is the location holding l (the bucket's root for a top-level
// prefix; the directory above for a path).
func (l Location) Parent() Location {
	if l.Scheme == "s3" {
		p := path.Dir(l.Prefix)
		if p == "." || p == "/" {
			p = ""
		}
		l.Prefix = p
		return l
	}
	l.Dir = filepath.Dir(l.Dir)
	return l
}

// Contains reports whether other is l or lies below it.
func (l Location) Contains(other Location) bool {
	if l.Scheme != other.Scheme {
		return false
	}
	if l.Scheme == "s3" {
		return l.Bucket == other.Bucket && (l.Prefix == "" || other.Prefix == l.Prefix || strings.HasPrefix(other.Prefix, l.Prefix+"/"))
	}
	a, errA := filepath.Abs(l.Dir)
	b, errB := filepath.Abs(other.Dir)
	if errA != nil || errB != nil {
		return false
	}
	rel, err := filepath.Rel(a, b)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// IsScheme reports whether s is a URI scheme (RFC 3986: ALPHA *( ALPHA /
// DIGIT / "+" / "-" / "." )). One letter is a Windows drive, not a scheme.
func IsScheme(s string) bool {
	if len(s) < 2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if i == 0 && !alpha || !(alpha || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// checkBucket applies S3's bucket naming rules loosely enough for
// S3-compatible stores: 3-63 of lower-case letters, digits, '.', '-', '_'.
func checkBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket name %q must be 3 to 63 characters", b)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("bucket name %q holds %q (want lower-case letters, digits, '.', '-')", b, c)
		}
	}
	return nil
}

// configError is an ErrConfig whose text is only its message.
type configError string

func (e configError) Error() string        { return string(e) }
func (e configError) Is(target error) bool { return target == ErrConfig }

// redactURL drops any userinfo from a URI before it is printed.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.Index(raw, "@"); i >= 0 {
			if j := strings.Index(raw, "://"); j >= 0 && j < i {
				return raw[:j+3] + "REDACTED" + raw[i:]
			}
		}
		return raw
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	return u.String()
}
