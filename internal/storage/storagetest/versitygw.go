// Package storagetest runs a real S3-compatible server for tests: versitygw
// (github.com/versity/versitygw, posix backend) as a child process, plus an
// HTTP proxy speaking the S3 protocol in front of it that injects the
// faults a healthy server does not produce (503 SlowDown storms, failed
// parts). Test code only.
package storagetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/certlake/certlake/internal/storage"
)

// Install is the command that installs the server the tests use.
const Install = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// Server is a running versitygw.
type Server struct {
	Bin, Root, Addr string
	Access, Secret  string

	t   testing.TB
	cmd *exec.Cmd
}

// Binary finds versitygw on PATH or in $GOPATH/bin. Absent, the test is
// skipped, unless CI is set: there the server is required (.ci/run installs
// it) and its absence fails the test.
func Binary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(gopath, "bin", "versitygw")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("versitygw is required when CI is set and was not found on PATH or in %s: %s", filepath.Dir(p), Install)
	}
	t.Skipf("versitygw not installed (the S3 tests need a real S3-compatible server): %s", Install)
	return ""
}

// Start runs versitygw on a free local port over a fresh directory and
// stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{Bin: Binary(t), Root: t.TempDir(), Access: "certlake" + randHex(4), Secret: randHex(16), t: t}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = l.Addr().String()
	l.Close()
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.Bin, "--port", s.Addr, "--access", s.Access, "--secret", s.Secret,
		"--region", "us-east-1", "--health", "/health", "posix", s.Root)
	logf, err := os.OpenFile(s.Root+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logf.Close()
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start versitygw: %v", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + s.Addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("versitygw on %s not healthy after 15s: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the server (idempotent).
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart kills the server and starts it again on the same address and
// directory, as a crash and a supervisor's restart would.
func (s *Server) Restart(down time.Duration) {
	s.t.Helper()
	s.Stop()
	time.Sleep(down)
	s.start()
}

// Endpoint is the server's URL.
func (s *Server) Endpoint() string { return "http://" + s.Addr }

// Config is the storage.s3 configuration that reaches the server.
func (s *Server) Config() storage.S3Config {
	return storage.S3Config{Endpoint: s.Endpoint(), Region: "us-east-1", AccessKeyID: s.Access, SecretAccessKey: s.Secret, PathStyle: true, AllowHTTP: true}
}

// Client is a raw SDK client for the server, to inspect buckets from
// outside certlake's storage layer.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint()), Region: "us-east-1", UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider(s.Access, s.Secret, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// Bucket creates a bucket with a fresh name and returns it.
func (s *Server) Bucket(t testing.TB) string {
	t.Helper()
	name := "certlake-" + randHex(6)
	if _, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	return name
}

// Keys lists every key of a bucket (with its size), from outside
// certlake's storage layer.
func (s *Server) Keys(t testing.TB, bucket string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	p := s3.NewListObjectsV2Paginator(s.Client(), &s3.ListObjectsV2Input{Bucket: &bucket})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list bucket %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			out[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
		}
	}
	return out
}

// PendingUploads counts multipart uploads neither completed nor aborted.
func (s *Server) PendingUploads(t testing.TB, bucket string) int {
	t.Helper()
	out, err := s.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		t.Fatalf("list multipart uploads of %s: %v", bucket, err)
	}
	return len(out.Uploads)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
