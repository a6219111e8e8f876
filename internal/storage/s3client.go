package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// S3Config is how certlake reaches S3-compatible storage: the storage.s3.*
// keys (internal/config converts its own struct to this one). Empty fields
// fall back to the AWS environment and default chains.
type S3Config struct {
	// Endpoint is the store's URL, e.g. http://127.0.0.1:7070 or
	// https://fly.storage.tigris.dev. "" = AWS (or AWS_ENDPOINT_URL).
	Endpoint string
	// Region signs requests. "" = AWS_REGION / the shared config, else
	// us-east-1.
	Region string
	// AccessKeyID, SecretAccessKey and SessionToken are static
	// credentials. "" = the AWS default credential chain (env, shared
	// config and profiles, web identity, IMDS).
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// PathStyle addresses buckets as endpoint/bucket (MinIO, versitygw,
	// most self-hosted stores) instead of bucket.endpoint.
	PathStyle bool
	// AllowHTTP permits a plain http endpoint. Default false: refused.
	AllowHTTP bool
}

// Requests counts the HTTP requests a client sent (retries and failed
// ones included), for the benchmark's cost report (what a cloud bill
// charges per request class).
type Requests struct {
	Get, Put, List, Head, Delete int64
}

const (
	opGet = iota
	opPut
	opList
	opHead
	opDelete
)

// s3Client is one configured client, shared by the stores of its buckets.
type s3Client struct {
	api      *s3.Client
	endpoint string // for messages: the URL, or "AWS S3 (<region>)"
	redact   []string
	logger   *slog.Logger
	partSize int64
	counts   [5]atomic.Int64
}

func (c *s3Client) count(op int) { c.counts[op].Add(1) }

// maxAttempts bounds the SDK's retries of throttling (503 SlowDown), 5xx
// and dropped connections; with a backoff capped at maxBackoff it rides
// out a restart of the store of about a minute before the caller (and
// Temporal) sees the error. The standard AWS_MAX_ATTEMPTS (or a profile's
// max_attempts) replaces it.
const (
	maxAttempts = 10
	maxBackoff  = 10 * time.Second
	// defaultPartSize is the multipart part size and the size above which
	// a Put is multipart.
	defaultPartSize = 16 << 20
)

func newS3Client(ctx context.Context, cfg S3Config, logger *slog.Logger) (*s3Client, error) {
	if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
		return nil, fmt.Errorf("storage.s3.access_key_id and storage.s3.secret_access_key must be set together (or both left empty for the AWS credential chain): %w", ErrConfig)
	}
	var opts []func(*awsconfig.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.Region))
	}
	if cfg.AccessKeyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)))
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("storage.s3: load the AWS configuration: %v: %w", redactAll(err.Error(), cfg.SecretAccessKey, cfg.SessionToken), ErrConfig)
	}
	if ac.Region == "" {
		ac.Region = "us-east-1"
	}
	endpoint := cfg.Endpoint
	endpointKey := "storage.s3.endpoint"
	if endpoint == "" && ac.BaseEndpoint != nil {
		endpoint, endpointKey = *ac.BaseEndpoint, "AWS_ENDPOINT_URL"
	}
	shown := endpoint
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("%s %q is not an http(s) URL with a host: %w", endpointKey, redactURL(endpoint), ErrConfig)
		}
		if u.User != nil {
			return nil, fmt.Errorf("%s %q holds credentials: use storage.s3.access_key_id and secret_access_key: %w", endpointKey, redactURL(endpoint), ErrConfig)
		}
		if u.Scheme == "http" && !cfg.AllowHTTP {
			return nil, fmt.Errorf("%s %s is plain http: credentials and data would cross the network unencrypted; use https, or set storage.s3.allow_http: true for a store on a trusted network: %w", endpointKey, endpoint, ErrConfig)
		}
	} else {
		shown = "AWS S3 (" + ac.Region + ")"
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &s3Client{endpoint: shown, logger: logger, partSize: defaultPartSize}
	for _, s := range []string{cfg.SecretAccessKey, cfg.SessionToken} {
		if s != "" {
			c.redact = append(c.redact, s)
		}
	}
	if v, err := ac.Credentials.Retrieve(ctx); err == nil {
		// Secrets from the default chain are kept out of messages too.
		for _, s := range []string{v.SecretAccessKey, v.SessionToken} {
			if s != "" {
				c.redact = append(c.redact, s)
			}
		}
	}
	c.api = s3.NewFromConfig(ac, func(o *s3.Options) {
		// The retryer is set here rather than in the loaded config, where
		// it would hide the standard AWS_MAX_ATTEMPTS / max_attempts: the
		// SDK applies those (ac.RetryMaxAttempts) on top of this one.
		o.Retryer = retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = maxAttempts
			o.MaxBackoff = maxBackoff
			// No client-side retry quota: a storm of 503s is waited
			// out with backoff, not turned into "quota exceeded".
			o.RateLimiter = ratelimit.None
		})
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		base := o.HTTPClient
		if base == nil {
			base = awshttp.NewBuildableClient()
		}
		o.HTTPClient = countingHTTP{base: base, c: c}
		o.UsePathStyle = cfg.PathStyle
		// Checksums only where S3 requires them: S3-compatible stores
		// differ in which of the newer checksum headers they accept.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return c, nil
}

// countingHTTP counts every HTTP request the client sends, retries and
// failed ones included (a store bills a 404 or a 503 as any other), by
// the class a bill names: a GET of a bucket with list-type is a LIST, a
// POST (multipart create or complete) a PUT.
type countingHTTP struct {
	base s3.HTTPClient
	c    *s3Client
}

func (h countingHTTP) Do(r *http.Request) (*http.Response, error) {
	switch r.Method {
	case http.MethodGet:
		if r.URL.Query().Has("list-type") {
			h.c.count(opList)
		} else {
			h.c.count(opGet)
		}
	case http.MethodHead:
		h.c.count(opHead)
	case http.MethodPut, http.MethodPost:
		h.c.count(opPut)
	case http.MethodDelete:
		h.c.count(opDelete)
	}
	return h.base.Do(r)
}

// Requests returns the counts of requests sent so far.
func (c *s3Client) Requests() Requests {
	return Requests{Get: c.counts[opGet].Load(), Put: c.counts[opPut].Load(), List: c.counts[opList].Load(), Head: c.counts[opHead].Load(), Delete: c.counts[opDelete].Load()}
}

func redactAll(s string, secrets ...string) string {
	for _, x := range secrets {
		if x != "" {
			s = strings.ReplaceAll(s, x, "[REDACTED]")
		}
	}
	return s
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// transientError is a failure worth retrying later: its text is redacted,
// and it unwraps to the SDK's error (context and net errors stay visible
// to errors.Is).
type transientError struct {
	msg string
	err error
}

func (e *transientError) Error() string   { return e.msg }
func (e *transientError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// classify turns an SDK error into ErrNotFound, ErrExists, ErrConfig (with
// what to fix) or a transient error. what is the object's URI.
func (c *s3Client) classify(op, what, bucket string, err error) error {
	for _, ce := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, ce) {
			return fmt.Errorf("%s %s: %w", op, what, ce)
		}
	}
	status := httpStatus(err)
	switch code := apiCode(err); {
	case code == "NoSuchKey" || code == "NotFound" || status == 404 && code == "":
		return fmt.Errorf("%s %s: %w", op, what, ErrNotFound)
	case code == "NoSuchBucket":
		return fmt.Errorf("%s %s: bucket %q does not exist at %s (check the location's bucket and storage.s3.endpoint): %w", op, what, bucket, c.endpoint, ErrConfig)
	case code == "PreconditionFailed" || status == 412:
		return fmt.Errorf("%s %s: %w", op, what, ErrExists)
	case code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || code == "InvalidToken" || code == "ExpiredToken" || code == "InvalidClientTokenId" || code == "XAdminUserNotFound":
		return fmt.Errorf("%s %s: %s refused the credentials (%s): check storage.s3.access_key_id, storage.s3.secret_access_key and storage.s3.session_token, or the AWS credential chain: %w", op, what, c.endpoint, code, ErrConfig)
	case code == "AccessDenied" || status == 403:
		return fmt.Errorf("%s %s: %s denied access to bucket %q: check the credentials (storage.s3.access_key_id, storage.s3.secret_access_key) and their permissions: %w", op, what, c.endpoint, bucket, ErrConfig)
	case code == "AuthorizationHeaderMalformed" || code == "PermanentRedirect" || status == 301:
		return fmt.Errorf("%s %s: %s: bucket %q is in another region: set storage.s3.region (or AWS_REGION): %w", op, what, c.endpoint, bucket, ErrConfig)
	}
	msg := err.Error()
	if strings.Contains(msg, "failed to retrieve credentials") || strings.Contains(msg, "failed to refresh cached credentials") || strings.Contains(msg, "get credentials") {
		return fmt.Errorf("%s %s: no credentials for %s: set storage.s3.access_key_id and storage.s3.secret_access_key, or AWS_ACCESS_KEY_ID / AWS_PROFILE: %w", op, what, c.endpoint, ErrConfig)
	}
	return &transientError{msg: fmt.Sprintf("%s %s at %s: %s", op, what, c.endpoint, redactAll(msg, c.redact...)), err: err}
}

// unreachable reports an error of reaching the endpoint at all (DNS, dial,
// TLS handshake), as opposed to a failure of one request.
func unreachable(err error) bool {
	var dns *net.DNSError
	var op *net.OpError
	if errors.As(err, &dns) {
		return true
	}
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var re *retry.MaxAttemptsError
	if errors.As(err, &re) {
		return unreachable(re.Err)
	}
	return false
}
