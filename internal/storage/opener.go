package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Opener opens table locations. A worker or starter builds one from its
// config and keeps it: it holds one S3 client for all buckets and checks
// each bucket once (reachable, credentials accepted, bucket present,
// conditional writes honoured) before anything is written to it.
type Opener struct {
	// S3 configures s3:// locations.
	S3 S3Config
	// Logger receives warnings; nil discards.
	Logger *slog.Logger
	// NoSync makes local stores skip fsync (tests only).
	NoSync bool
	// UnreachableIsConfig makes an endpoint that cannot be reached at all
	// (DNS, dial, TLS) fail the bucket check with ErrConfig: right for the
	// starter, whose operator is there to fix storage.s3.endpoint. A
	// worker leaves it false: there an unreachable endpoint is an outage,
	// and its error stays retryable (ErrUnavailable) for the activity's
	// retry policy, still naming storage.s3.endpoint on every attempt.
	UnreachableIsConfig bool

	mu      sync.Mutex
	client  *s3Client
	checked map[string]bool // buckets that passed check
}

// Open returns the store of loc. For s3 the first Open of a bucket checks
// it (see [Opener.Check]).
func (o *Opener) Open(ctx context.Context, loc Location) (Store, error) {
	if loc.IsLocal() {
		d := NewDir(loc.Dir)
		d.NoSync = o.NoSync
		return d, nil
	}
	c, err := o.s3()
	if err != nil {
		return nil, err
	}
	s := &S3{c: c, bucket: loc.Bucket}
	if loc.Prefix != "" {
		s.prefix = loc.Prefix + "/"
	}
	if err := o.check(ctx, s); err != nil {
		return nil, err
	}
	return s, nil
}

// OpenURI parses raw (given under the config key or input name key) and
// opens it.
func (o *Opener) OpenURI(ctx context.Context, key, raw string) (Store, error) {
	loc, err := ParseLocation(key, raw)
	if err != nil {
		return nil, err
	}
	return o.Open(ctx, loc)
}

// Requests returns the S3 requests sent through this Opener so far.
func (o *Opener) Requests() Requests {
	o.mu.Lock()
	c := o.client
	o.mu.Unlock()
	if c == nil {
		return Requests{}
	}
	return c.Requests()
}

func (o *Opener) s3() (*s3Client, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.client != nil {
		return o.client, nil
	}
	// The client is built without a request context: loading the AWS
	// config reads only the environment and files.
	c, err := newS3Client(context.Background(), o.S3, o.Logger)
	if err != nil {
		return nil, err
	}
	o.client = c
	return c, nil
}

// check probes s's bucket once per Opener: a conditional put of a fresh
// key under the store's root, a second conditional put of the same key
// that must be refused, and a delete. A store that accepts the second put
// ignores If-None-Match and would let two Delta writers overwrite each
// other's commits: it is refused. Each probe request is tried twice at
// most, so a wrong endpoint or credentials fail in a second, not after a
// minute of retries, and nothing is left behind on failure. Only a
// passed check is remembered: after a failure the next Open probes again.
func (o *Opener) check(ctx context.Context, s *S3) error {
	o.mu.Lock()
	done := o.checked[s.bucket]
	o.mu.Unlock()
	if done {
		return nil
	}
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	key := "_certlake_probe/" + hex.EncodeToString(rnd[:])
	once := func(o *s3.Options) { o.RetryMaxAttempts = 2 }
	fail := func(err error) error {
		err = s.fail("check", key, err)
		var te *transientError
		if errors.As(err, &te) && unreachable(te.err) {
			if !o.UnreachableIsConfig {
				return fmt.Errorf("cannot reach storage endpoint %s for %s (check storage.s3.endpoint and the network): %w", s.c.endpoint, s.Location(), te)
			}
			return fmt.Errorf("cannot reach storage endpoint %s for %s (check storage.s3.endpoint and the network): %v: %w", s.c.endpoint, s.Location(), te.msg, ErrConfig)
		}
		return err
	}
	put := func() error {
		_, err := s.c.api.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &s.bucket, Key: aws.String(s.prefix + key), Body: strings.NewReader("certlake conditional-write probe"),
			ContentLength: aws.Int64(int64(len("certlake conditional-write probe"))), IfNoneMatch: aws.String("*"),
		}, once)
		return err
	}
	if err := put(); err != nil {
		return fail(err)
	}
	err2 := put()
	_, derr := s.c.api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key)}, once)
	if err2 == nil {
		return fmt.Errorf("storage endpoint %s accepted a second PutObject with If-None-Match: * on %s: it ignores conditional writes, so two Delta writers could overwrite each other's commits; use a store that supports conditional writes (AWS S3, versitygw, MinIO, Tigris, R2): %w", s.c.endpoint, s.Location(), ErrConfig)
	}
	if !errors.Is(fail(err2), ErrExists) {
		return fail(err2)
	}
	if derr != nil {
		s.c.logger.Warn("storage: could not delete the conditional-write probe", "key", Join(s.Location(), key), "err", fail(derr))
	}
	o.mu.Lock()
	if o.checked == nil {
		o.checked = map[string]bool{}
	}
	o.checked[s.bucket] = true
	o.mu.Unlock()
	return nil
}

// OpenObject opens the store holding the single object ref (a path or URI
// of a file, given under the name name: "plan_file") and returns it with
// the object's key in it.
func (o *Opener) OpenObject(ctx context.Context, name, ref string) (Store, string, error) {
	loc, err := ParseLocation(name, ref)
	if err != nil {
		return nil, "", err
	}
	var key string
	if loc.IsLocal() {
		key = filepath.Base(loc.Dir)
	} else {
		key = path.Base(loc.Prefix)
	}
	if key == "" || key == "." || key == "/" {
		return nil, "", configError(fmt.Sprintf("%s: %q names no file", name, ref))
	}
	s, err := o.Open(ctx, loc.Parent())
	if err != nil {
		return nil, "", err
	}
	return s, key, nil
}
