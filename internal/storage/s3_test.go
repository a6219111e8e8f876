package storage_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/storage"
	"github.com/certlake/certlake/internal/storage/storagetest"
)

// TestS3Misconfigured: each mistake an operator makes is refused at the
// first use of the bucket with an ErrConfig that names the endpoint and
// the key to fix, never shows the secret, does not retry for long, and
// leaves nothing in the bucket.
func TestS3Misconfigured(t *testing.T) {
	srv := storagetest.Start(t)
	bucket := srv.Bucket(t)
	proxy := storagetest.NewProxy(t, srv)
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return "http://" + l.Addr().String()
	}()
	for _, c := range []struct {
		name     string
		cfg      func(*storage.S3Config)
		uri      string
		want     []string // substrings of the message
		maxTries int64    // requests the proxy may see
	}{
		{"wrong secret", func(c *storage.S3Config) { c.SecretAccessKey = "wrong-secret-0123456789" }, "s3://" + bucket + "/main",
			[]string{proxy.URL, "storage.s3.secret_access_key", "SignatureDoesNotMatch"}, 2},
		{"unknown access key", func(c *storage.S3Config) { c.AccessKeyID = "NOSUCHKEY"; c.SecretAccessKey = "wrong-secret-0123456789" }, "s3://" + bucket + "/main",
			[]string{proxy.URL, "storage.s3.access_key_id"}, 2},
		{"missing bucket", nil, "s3://no-such-bucket/main",
			[]string{proxy.URL, `bucket "no-such-bucket" does not exist`, "storage.s3.endpoint"}, 2},
		{"unreachable endpoint", func(c *storage.S3Config) { c.Endpoint = closed }, "s3://" + bucket + "/main",
			[]string{closed, "cannot reach", "storage.s3.endpoint"}, 0},
		{"http without allow_http", func(c *storage.S3Config) { c.AllowHTTP = false }, "s3://" + bucket + "/main",
			[]string{proxy.URL, "plain http", "storage.s3.allow_http"}, 0},
		{"half the credentials", func(c *storage.S3Config) { c.SecretAccessKey = "" }, "s3://" + bucket + "/main",
			[]string{"storage.s3.access_key_id", "storage.s3.secret_access_key"}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := proxy.Config(srv)
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			before := proxy.Requests.Load()
			start := time.Now()
			// The starter's Opener: an unreachable endpoint is the operator's to fix.
			_, err := (&storage.Opener{S3: cfg, UnreachableIsConfig: true}).OpenURI(t.Context(), "lake.main_path", c.uri)
			if !errors.Is(err, storage.ErrConfig) {
				t.Fatalf("Open = %v, want ErrConfig", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			for _, secret := range []string{srv.Secret, cfg.SecretAccessKey} {
				if secret != "" && strings.Contains(err.Error(), secret) {
					t.Errorf("error shows a secret: %q", err)
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("refused after %v, want a quick answer without a retry storm", d)
			}
			if n := proxy.Requests.Load() - before; n > c.maxTries {
				t.Errorf("%d requests reached the store, want at most %d", n, c.maxTries)
			}
			if keys := srv.Keys(t, bucket); len(keys) != 0 {
				t.Errorf("bucket holds %v, want nothing written", keys)
			}
		})
	}
}

// TestS3UnreachableEndpointRetryable: a worker's Opener (without
// UnreachableIsConfig) meeting a server that is down gets a retryable
// error, not ErrConfig, still naming the endpoint and the key to check; the
// failed check is not remembered, so once the server is back the next Open
// probes again and succeeds. The starter's Opener gets ErrConfig.
func TestS3UnreachableEndpointRetryable(t *testing.T) {
	srv := storagetest.Start(t)
	bucket := srv.Bucket(t)
	uri := "s3://" + bucket + "/main"
	srv.Stop()

	_, err := (&storage.Opener{S3: srv.Config(), UnreachableIsConfig: true}).OpenURI(t.Context(), "lake.main_path", uri)
	if !errors.Is(err, storage.ErrConfig) {
		t.Fatalf("starter Open with the server down = %v, want ErrConfig", err)
	}

	worker := &storage.Opener{S3: srv.Config()}
	_, err = worker.OpenURI(t.Context(), "lake.main_path", uri)
	if err == nil || errors.Is(err, storage.ErrConfig) || !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("worker Open with the server down = %v, want ErrUnavailable and not ErrConfig", err)
	}
	for _, w := range []string{srv.Endpoint(), "cannot reach", "storage.s3.endpoint"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %q", err, w)
		}
	}
	if strings.Contains(err.Error(), srv.Secret) {
		t.Errorf("error shows the secret: %q", err)
	}

	srv.Restart(0)
	s, err := worker.OpenURI(t.Context(), "lake.main_path", uri)
	if err != nil {
		t.Fatalf("worker Open after the server is back = %v, want the bucket checked again and opened", err)
	}
	if err := storage.PutBytes(t.Context(), s, "after-outage", []byte("x")); err != nil {
		t.Fatalf("write after the outage: %v", err)
	}
	if keys := srv.Keys(t, bucket); len(keys) != 1 || keys["main/after-outage"] != 1 {
		t.Errorf("bucket holds %v, want only main/after-outage (no probe left behind)", keys)
	}
}

// TestS3IgnoredConditionalPut: a store that drops If-None-Match (here a
// proxy turning a real server's 412 into 200) is refused before any
// commit, instead of silently letting writers overwrite each other.
func TestS3IgnoredConditionalPut(t *testing.T) {
	srv := storagetest.Start(t)
	bucket := srv.Bucket(t)
	proxy := storagetest.NewProxy(t, srv)
	// The server refuses the second conditional put; the "store" the
	// client sees answers 200 OK, as one ignoring the header would.
	proxy.SetModify(func(r *http.Response) {
		if r.StatusCode == http.StatusPreconditionFailed {
			r.StatusCode, r.Status = http.StatusOK, "200 OK"
			r.Body, r.ContentLength = http.NoBody, 0
			r.Header.Del("Content-Length")
		}
	})
	_, err := (&storage.Opener{S3: proxy.Config(srv)}).OpenURI(t.Context(), "lake.main_path", "s3://"+bucket+"/main")
	if !errors.Is(err, storage.ErrConfig) || !strings.Contains(err.Error(), "ignores conditional writes") {
		t.Fatalf("Open through a store ignoring If-None-Match = %v, want ErrConfig saying so", err)
	}
	if keys := srv.Keys(t, bucket); len(keys) != 0 {
		t.Errorf("bucket holds %v after the probe, want nothing", keys)
	}
}

// TestS3SlowDownStorm: bursts of 503 SlowDown are ridden out with backoff;
// every write lands once and reads back whole.
func TestS3SlowDownStorm(t *testing.T) {
	srv := storagetest.Start(t)
	bucket := srv.Bucket(t)
	proxy := storagetest.NewProxy(t, srv)
	s, err := (&storage.Opener{S3: proxy.Config(srv)}).OpenURI(t.Context(), "k", "s3://"+bucket+"/t")
	if err != nil {
		t.Fatal(err)
	}
	proxy.SetFault(storagetest.SlowDownBurst(2, 3)) // 2 of every 3 requests answered 503
	ctx := t.Context()
	for i := range 6 {
		key := "_delta_log/" + strings.Repeat("0", 19) + string(rune('0'+i)) + ".json"
		if err := s.PutIfAbsent(ctx, key, []byte(key)); err != nil {
			t.Fatalf("PutIfAbsent %s under SlowDown: %v", key, err)
		}
	}
	l, err := s.List(ctx, "_delta_log/", "", 0)
	if err != nil || len(l) != 6 {
		t.Fatalf("List under SlowDown = %d objects, %v; want 6", len(l), err)
	}
	if proxy.Injected.Load() < 10 {
		t.Errorf("only %d SlowDown answers injected", proxy.Injected.Load())
	}
	proxy.SetFault(nil)
	if keys := srv.Keys(t, bucket); len(keys) != 6 {
		t.Errorf("bucket holds %d keys, want 6: %v", len(keys), keys)
	}
}

// TestS3FailedMultipartAborted: an upload whose part is refused leaves no
// object and no pending upload.
func TestS3FailedMultipartAborted(t *testing.T) {
	srv := storagetest.Start(t)
	bucket := srv.Bucket(t)
	proxy := storagetest.NewProxy(t, srv)
	s, err := (&storage.Opener{S3: proxy.Config(srv)}).OpenURI(t.Context(), "k", "s3://"+bucket+"/t")
	if err != nil {
		t.Fatal(err)
	}
	proxy.SetFault(func(r *http.Request) (int, string, bool) {
		if r.Method == http.MethodPut && r.URL.Query().Get("partNumber") == "2" {
			return http.StatusBadRequest, "InvalidDigest", true
		}
		return 0, "", false
	})
	data := bytes.Repeat([]byte("x"), 40<<20)
	if err := s.Put(t.Context(), "part-big.parquet", bytes.NewReader(data), int64(len(data))); err == nil {
		t.Fatal("Put with a refused part succeeded")
	}
	if keys := srv.Keys(t, bucket); len(keys) != 0 {
		t.Errorf("bucket holds %v after a failed upload, want nothing", keys)
	}
	if n := srv.PendingUploads(t, bucket); n != 0 {
		t.Errorf("%d multipart uploads left pending, want 0 (aborted)", n)
	}
}

// TestS3ServerRestart: a store restarted under a writer costs a pause, not
// an error or a lost write.
func TestS3ServerRestart(t *testing.T) {
	srv := storagetest.Start(t)
	bucket := srv.Bucket(t)
	s, err := (&storage.Opener{S3: srv.Config()}).OpenURI(t.Context(), "k", "s3://"+bucket+"/t")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for i := range 40 {
			key := "obj-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
			if err := storage.PutBytes(t.Context(), s, key, []byte(key)); err != nil {
				done <- err
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
		done <- nil
	}()
	time.Sleep(200 * time.Millisecond)
	srv.Restart(time.Second)
	if err := <-done; err != nil {
		t.Fatalf("write across a restart: %v", err)
	}
	if keys := srv.Keys(t, bucket); len(keys) != 40 {
		t.Errorf("bucket holds %d keys, want 40", len(keys))
	}
}

// TestS3OpenSizedReadsFooterInOneGet: a remote file opened with its known
// size is not Stat'ed, and a Parquet reader's first two reads (the 8-byte
// footer length, then the footer before it) are served by one ranged GET
// of the file's tail; a read before the tail is a GET of its own. Every
// byte read is the object's.
func TestS3OpenSizedReadsFooterInOneGet(t *testing.T) {
	srv := storagetest.Start(t)
	bucket := srv.Bucket(t)
	o := &storage.Opener{S3: srv.Config()}
	s, err := o.OpenURI(t.Context(), "test", "s3://"+bucket+"/t")
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 200<<10)
	for i := range data {
		data[i] = byte(i * 7 % 251)
	}
	if err := storage.PutBytes(t.Context(), s, "part-0.parquet", data); err != nil {
		t.Fatal(err)
	}
	before := o.Requests()
	f, size, err := storage.OpenSized(t.Context(), s, "part-0.parquet", int64(len(data)))
	if err != nil || size != int64(len(data)) {
		t.Fatalf("OpenSized = %d, %v", size, err)
	}
	defer f.Close()
	read := func(off, n int) {
		t.Helper()
		buf := make([]byte, n)
		got, err := f.ReadAt(buf, int64(off))
		if got != n || err != nil && !(err == io.EOF && off+n == len(data)) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", off, n, got, err)
		}
		if !bytes.Equal(buf, data[off:off+n]) {
			t.Fatalf("ReadAt(%d, %d) returned other bytes than the object's", off, n)
		}
	}
	read(len(data)-8, 8)        // footer length
	read(len(data)-5000, 4992)  // footer
	read(len(data)-40<<10, 100) // inside the tail still
	if r := o.Requests(); r.Get-before.Get != 1 || r.Head != before.Head {
		t.Errorf("footer reads sent %d GETs and %d HEADs, want 1 and 0", r.Get-before.Get, r.Head-before.Head)
	}
	read(1000, 50000) // a column chunk: a GET of its own
	if r := o.Requests(); r.Get-before.Get != 2 {
		t.Errorf("after a read before the tail %d GETs, want 2", r.Get-before.Get)
	}
	// A prefetched range serves the reads inside it.
	if err := f.(storage.Prefetcher).Prefetch(60000, 30000); err != nil {
		t.Fatal(err)
	}
	read(60000, 100)
	read(89900, 100)
	if r := o.Requests(); r.Get-before.Get != 3 {
		t.Errorf("after a prefetch and reads inside it %d GETs, want 3", r.Get-before.Get)
	}
	read(89950, 100) // past its end
	if r := o.Requests(); r.Get-before.Get != 4 {
		t.Errorf("after a read past the prefetched range %d GETs, want 4", r.Get-before.Get)
	}
	// A range in the tail needs no request of its own.
	if err := f.(storage.Prefetcher).Prefetch(int64(len(data))-1000, 500); err != nil {
		t.Fatal(err)
	}
	read(len(data)-1000, 500)
	if r := o.Requests(); r.Get-before.Get != 4 {
		t.Errorf("after a prefetch inside the tail %d GETs, want still 4", r.Get-before.Get)
	}
	// Open without a size Stats the object first.
	if _, size, err := storage.Open(t.Context(), s, "part-0.parquet"); err != nil || size != int64(len(data)) {
		t.Fatalf("Open = %d, %v", size, err)
	}
	if r := o.Requests(); r.Head-before.Head != 1 {
		t.Errorf("Open sent %d HEADs, want 1", r.Head-before.Head)
	}
	// A request that fails is sent (and billed) all the same.
	if _, err := s.Stat(t.Context(), "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Stat(missing) = %v", err)
	}
	if r := o.Requests(); r.Head-before.Head != 2 {
		t.Errorf("after a Stat of a missing key %d HEADs, want 2", r.Head-before.Head)
	}
}

// TestS3MaxAttemptsFromEnvironment: the standard AWS_MAX_ATTEMPTS bounds
// the client's own retries (by default 10 attempts, about a minute of
// backoff), so an operator can hand failures to Temporal sooner; the
// error is a transient one.
func TestS3MaxAttemptsFromEnvironment(t *testing.T) {
	t.Setenv("AWS_MAX_ATTEMPTS", "3")
	srv := storagetest.Start(t)
	bucket := srv.Bucket(t)
	proxy := storagetest.NewProxy(t, srv)
	s, err := (&storage.Opener{S3: proxy.Config(srv)}).OpenURI(t.Context(), "k", "s3://"+bucket+"/t")
	if err != nil {
		t.Fatal(err)
	}
	proxy.SetFault(storagetest.SlowDownEvery(1)) // every request answered 503
	before := proxy.Requests.Load()
	_, err = storage.ReadAll(t.Context(), s, "missing.json")
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Get under a storm = %v, want ErrUnavailable", err)
	}
	if n := proxy.Requests.Load() - before; n != 3 {
		t.Errorf("Get sent %d requests with AWS_MAX_ATTEMPTS=3, want 3", n)
	}
}
