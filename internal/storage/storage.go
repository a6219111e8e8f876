// Package storage is certlake's one door to the bytes of a table: a flat
// key space under a root that is either a local directory or a prefix of an
// S3-compatible bucket (STYLE.md, "One door to storage"). Delta logs,
// checkpoints, data files, key indexes, plans and merge scratch all go
// through a [Store].
//
// Keys are slash-separated paths relative to the store's root ("_delta_log/
// 00000000000000000000.json", "part-0001.parquet"); they never start with
// '/', never contain "." or ".." segments and never end with '/'. A store
// has no directories: a "directory" is only a common key prefix, and no
// store ever writes a directory-marker object (versitygw's posix backend,
// like a file system, cannot hold a key that is also a prefix of others).
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
)

// Errors a Store returns, tested with errors.Is.
var (
	// ErrNotFound: the key holds no object. It is also fs.ErrNotExist, so
	// code written for files keeps working.
	ErrNotFound error = notFoundError{}
	// ErrExists: PutIfAbsent found the key already taken (another writer
	// won).
	ErrExists = errors.New("storage: already exists")
	// ErrConfig: the location or its settings are wrong (bad credentials,
	// missing bucket, unreachable endpoint, plain http refused, a store
	// that ignores conditional writes). Not worth retrying; the message
	// says what to fix and never holds a secret.
	ErrConfig = errors.New("storage: misconfigured")
	// ErrUnavailable: the store did not answer (network, 5xx, throttling)
	// even after the store's own retries. Worth retrying later.
	ErrUnavailable = errors.New("storage: unavailable")
)

type notFoundError struct{}

func (notFoundError) Error() string        { return "storage: not found" }
func (notFoundError) Is(target error) bool { return target == fs.ErrNotExist }

// Info describes one object.
type Info struct {
	Key     string    // relative to the store's root
	Size    int64     // bytes
	ModTime time.Time // last write
	// ETag is the store's tag of the object's content ("" where the store
	// has none: a local directory). A rewritten object gets another,
	// even within the second ModTime resolves on S3.
	ETag string
}

// Store is a table's storage. Every method is safe for concurrent use, by
// goroutines and by other processes on other hosts sharing the root. Who
// retries: a Store retries transient failures itself (throttling, 5xx,
// dropped connections) within its own bounds, so an error it returns is
// either ErrNotFound, ErrExists, ErrConfig (permanent) or a transient
// failure that outlasted the store's retries (worth a retry later, by
// Temporal).
type Store interface {
	// Location is the root as a URI: "file:///abs/dir" or
	// "s3://bucket/prefix". It never holds credentials.
	Location() string

	// Get opens the object for reading from its start. errors.Is(err,
	// ErrNotFound) when the key holds nothing. The caller closes it.
	Get(ctx context.Context, key string) (io.ReadCloser, error)

	// GetRange reads length bytes at offset (fewer at the object's end).
	// length < 0 reads to the end. ErrNotFound as Get.
	GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)

	// Stat returns the object's size and time. ErrNotFound as Get.
	Stat(ctx context.Context, key string) (Info, error)

	// Put writes size bytes read from body at key, replacing what is
	// there. Readers see either the old object or the whole new one, never
	// a part; a Put that fails leaves nothing visible (a dead multipart
	// upload is aborted). body is read through ReadAt so a retry can
	// re-read it. Idempotent.
	Put(ctx context.Context, key string, body io.ReaderAt, size int64) error

	// PutIfAbsent writes data at key only if the key holds nothing:
	// errors.Is(err, ErrExists) when another writer got there first. Of
	// any number of racing PutIfAbsent calls for one key exactly one
	// succeeds, across processes and hosts. This is the Delta commit.
	PutIfAbsent(ctx context.Context, key string, data []byte) error

	// List returns the objects whose keys start with prefix and sort after
	// startAfter ("" = from the first), in key order, at most limit of
	// them (0 = all). A prefix ending in '/' lists a "directory" with
	// everything below it.
	List(ctx context.Context, prefix, startAfter string, limit int) ([]Info, error)

	// Delete removes the object. Deleting a missing key is not an error.
	// There is no prefix delete: callers list and delete what they mean to.
	Delete(ctx context.Context, key string) error
}

// Localizer is implemented by stores whose objects are files on this
// machine. Engines that must hand a file name to another program (DuckDB)
// use it to skip a copy; every other store is read through scratch.
type Localizer interface {
	// LocalPath is the file that holds key (existing or not).
	LocalPath(key string) string
}

// LocalPath returns the file holding key when s keeps its objects on this
// machine.
func LocalPath(s Store, key string) (string, bool) {
	if l, ok := s.(Localizer); ok {
		return l.LocalPath(key), true
	}
	return "", false
}

// ReadAll reads a whole object.
func ReadAll(ctx context.Context, s Store, key string) ([]byte, error) {
	r, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", Join(s.Location(), key), err)
	}
	return b, nil
}

// PutBytes writes data at key, replacing what is there.
func PutBytes(ctx context.Context, s Store, key string, data []byte) error {
	return s.Put(ctx, key, strings.NewReader(string(data)), int64(len(data)))
}

// CheckKey rejects keys a Store must not be given.
func CheckKey(key string) error {
	if key == "" {
		return fmt.Errorf("storage: empty key")
	}
	if strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return fmt.Errorf("storage: key %q starts or ends with '/'", key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("storage: key %q has an empty, \".\" or \"..\" segment", key)
		}
	}
	if strings.ContainsRune(key, '\\') || strings.ContainsRune(key, 0) {
		return fmt.Errorf("storage: key %q holds a backslash or NUL", key)
	}
	return nil
}

// Join appends a key to a location URI for messages.
func Join(location, key string) string {
	if key == "" {
		return location
	}
	return strings.TrimSuffix(location, "/") + "/" + key
}

// Sub is a store rooted at prefix/ inside s: a table's store seen from
// one of its directories, or a scratch area of a bucket.
func Sub(s Store, prefix string) Store {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return s
	}
	sub := &subStore{base: s, prefix: prefix + "/"}
	switch b := s.(type) {
	case *subStore:
		sub = &subStore{base: b.base, prefix: b.prefix + prefix + "/"}
	case *localSubStore:
		sub = &subStore{base: b.base, prefix: b.prefix + prefix + "/"}
	}
	if _, ok := sub.base.(Localizer); ok {
		return &localSubStore{sub}
	}
	return sub
}

// localSubStore is a subStore of a local store: it keeps LocalPath.
type localSubStore struct{ *subStore }

func (s *localSubStore) LocalPath(key string) string {
	return s.base.(Localizer).LocalPath(s.prefix + key)
}

type subStore struct {
	base   Store
	prefix string // ends in '/'
}

func (s *subStore) Location() string {
	return Join(s.base.Location(), strings.TrimSuffix(s.prefix, "/"))
}
func (s *subStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	return s.base.Get(ctx, s.prefix+key)
}
func (s *subStore) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	return s.base.GetRange(ctx, s.prefix+key, off, n)
}
func (s *subStore) Stat(ctx context.Context, key string) (Info, error) {
	i, err := s.base.Stat(ctx, s.prefix+key)
	i.Key = key
	return i, err
}
func (s *subStore) Put(ctx context.Context, key string, body io.ReaderAt, size int64) error {
	return s.base.Put(ctx, s.prefix+key, body, size)
}
func (s *subStore) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	return s.base.PutIfAbsent(ctx, s.prefix+key, data)
}
func (s *subStore) List(ctx context.Context, prefix, startAfter string, limit int) ([]Info, error) {
	after := ""
	if startAfter != "" {
		after = s.prefix + startAfter
	}
	l, err := s.base.List(ctx, s.prefix+prefix, after, limit)
	for i := range l {
		l[i].Key = strings.TrimPrefix(l[i].Key, s.prefix)
	}
	return l, err
}
func (s *subStore) Delete(ctx context.Context, key string) error {
	return s.base.Delete(ctx, s.prefix+key)
}
