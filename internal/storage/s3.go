package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3 is a Store on a prefix of an S3-compatible bucket (AWS S3, versitygw,
// MinIO, Tigris, R2). PutIfAbsent is PutObject with If-None-Match: * (412 =
// taken; 409 ConditionalRequestConflict = a racing write still in flight,
// retried here), the conditional put delta-rs uses, so the two writers
// exclude each other. Large Puts are multipart uploads, aborted when they
// fail so nothing partial is ever visible.
type S3 struct {
	c      *s3Client
	bucket string
	prefix string // "" or ends in '/'
}

// Location implements Store.
func (s *S3) Location() string {
	return Location{Scheme: "s3", Bucket: s.bucket, Prefix: strings.TrimSuffix(s.prefix, "/")}.String()
}

func (s *S3) fail(op, key string, err error) error {
	return s.c.classify(op, Join(s.Location(), key), s.bucket, err)
}

// Get implements Store.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	return s.GetRange(ctx, key, 0, -1)
}

// GetRange implements Store.
func (s *S3) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	if length == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key)}
	switch {
	case offset > 0 && length < 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	}
	out, err := s.c.api.GetObject(ctx, in)
	if err != nil {
		if apiCode(err) == "InvalidRange" {
			return io.NopCloser(strings.NewReader("")), nil // offset at or past the end
		}
		return nil, s.fail("get", key, err)
	}
	return out.Body, nil
}

// Stat implements Store.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, err
	}
	out, err := s.c.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key)})
	if err != nil {
		return Info{}, s.fail("stat", key, err)
	}
	return Info{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified), ETag: aws.ToString(out.ETag)}, nil
}

// Put implements Store.
func (s *S3) Put(ctx context.Context, key string, body io.ReaderAt, size int64) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if size > s.c.partSize {
		return s.putMultipart(ctx, key, body, size)
	}
	_, err := s.c.api.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           aws.String(s.prefix + key),
		Body:          io.NewSectionReader(body, 0, size),
		ContentLength: aws.Int64(size),
	})
	if err != nil {
		return s.fail("put", key, err)
	}
	return nil
}

// putMultipart uploads body in parts of partSize. On any failure the
// upload is aborted (with a context that outlives a cancelled ctx), so the
// store frees the parts and the key never shows a partial object.
func (s *S3) putMultipart(ctx context.Context, key string, body io.ReaderAt, size int64) (err error) {
	k := aws.String(s.prefix + key)
	up, err := s.c.api.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.bucket, Key: k})
	if err != nil {
		return s.fail("put", key, err)
	}
	defer func() {
		if err == nil {
			return
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, aerr := s.c.api.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: k, UploadId: up.UploadId}); aerr != nil {
			s.c.logger.Warn("storage: aborting a failed multipart upload failed; the bucket's lifecycle rule must clean it", "key", Join(s.Location(), key), "err", s.fail("abort", key, aerr))
		}
	}()
	var parts []types.CompletedPart
	for n, off := int32(1), int64(0); off < size; n, off = n+1, off+s.c.partSize {
		l := min(s.c.partSize, size-off)
		out, err := s.c.api.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: &s.bucket, Key: k, UploadId: up.UploadId, PartNumber: aws.Int32(n),
			Body: io.NewSectionReader(body, off, l), ContentLength: aws.Int64(l),
		})
		if err != nil {
			return s.fail("put", key, err)
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
	}
	_, err = s.c.api.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &s.bucket, Key: k, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return s.fail("put", key, err)
	}
	return nil
}

// PutIfAbsent implements Store. A 412 is checked against the object's
// content: when the SDK retried a PutObject whose first answer was lost,
// the 412 may be our own write, and the bytes say so (a Delta commit
// names fresh, UUID-named files and a timestamp: no other writer's commit
// is byte-identical). Treating our own win as a loss would commit the same
// actions twice.
func (s *S3) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		_, err := s.c.api.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        &s.bucket,
			Key:           aws.String(s.prefix + key),
			Body:          strings.NewReader(string(data)),
			ContentLength: aws.Int64(int64(len(data))),
			IfNoneMatch:   aws.String("*"),
		})
		if err == nil {
			return nil
		}
		switch code := apiCode(err); {
		case code == "PreconditionFailed" || httpStatus(err) == 412:
			have, rerr := ReadAll(ctx, s, key)
			if rerr == nil && string(have) == string(data) {
				return nil
			}
			return fmt.Errorf("put %s: %w", Join(s.Location(), key), ErrExists)
		case code == "ConditionalRequestConflict" || httpStatus(err) == 409:
			// Another conditional write of this key is in flight: wait
			// for it to settle, then learn who won.
			if attempt >= 20 {
				return s.fail("put", key, err)
			}
			d := time.Duration(rand.Int64N(int64(50*time.Millisecond) * int64(attempt)))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		default:
			return s.fail("put", key, err)
		}
	}
}

// List implements Store.
func (s *S3) List(ctx context.Context, prefix, startAfter string, limit int) ([]Info, error) {
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.prefix + prefix)}
	if limit > 0 && limit < 1000 {
		in.MaxKeys = aws.Int32(int32(limit))
	}
	if startAfter != "" {
		in.StartAfter = aws.String(s.prefix + startAfter)
	}
	var out []Info
	p := s3.NewListObjectsV2Paginator(s.c.api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.fail("list", prefix, err)
		}
		for _, o := range page.Contents {
			k := strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
			if strings.HasSuffix(k, "/") {
				continue // a directory marker some other tool wrote
			}
			out = append(out, Info{Key: k, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)})
			if limit > 0 && len(out) == limit {
				return out, nil
			}
		}
	}
	return out, nil
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	_, err := s.c.api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key)})
	if err != nil {
		if errors.Is(s.fail("delete", key, err), ErrNotFound) {
			return nil
		}
		return s.fail("delete", key, err)
	}
	return nil
}
