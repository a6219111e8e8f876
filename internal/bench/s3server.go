package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/certlake/certlake/internal/storage"
)

// versitygwInstall installs the S3-compatible server the object storage
// item runs against (the one the e2e tests use; .ci/run installs it).
const versitygwInstall = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// errNoS3Server: versitygw is not installed; the item is not run.
var errNoS3Server = errors.New("versitygw not installed (" + versitygwInstall + ")")

// s3Server is a versitygw (posix backend) running as a child process over
// a fresh directory: a real S3-compatible server on this machine, as the
// e2e tests start it (their helper takes a testing.TB, so the benchmark
// has its own).
type s3Server struct {
	addr, access, secret, root string
	cmd                        *exec.Cmd
}

// versitygwBinary finds versitygw on PATH or in $GOPATH/bin.
func versitygwBinary() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(gopath, "bin", "versitygw")
	if _, err := os.Stat(p); err != nil {
		return "", errNoS3Server
	}
	return p, nil
}

// startS3Server starts versitygw on a free local port with fresh
// credentials, its objects under a new directory in dir.
func startS3Server(ctx context.Context, dir string) (*s3Server, error) {
	bin, err := versitygwBinary()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp(dir, "s3-")
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &s3Server{addr: l.Addr().String(), access: "bench" + randomHex(4), secret: randomHex(16), root: root}
	l.Close()
	s.cmd = exec.Command(bin, "--port", s.addr, "--access", s.access, "--secret", s.secret,
		"--region", "us-east-1", "--health", "/health", "posix", root)
	logf, err := os.Create(root + ".log")
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// Killed with the benchmark even when it dies without stopping it
	// (a signal, a closed output pipe).
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + s.addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.stop()
			return nil, fmt.Errorf("versitygw on %s not healthy after 15 s (log: %s.log): %v", s.addr, root, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the server and removes its objects.
func (s *s3Server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		_ = s.cmd.Wait()
		s.cmd = nil
	}
	os.RemoveAll(s.root)
	os.Remove(s.root + ".log")
}

// config is the storage.s3 configuration that reaches the server.
func (s *s3Server) config() storage.S3Config {
	return storage.S3Config{Endpoint: "http://" + s.addr, Region: "us-east-1", AccessKeyID: s.access,
		SecretAccessKey: s.secret, PathStyle: true, AllowHTTP: true}
}

// createBucket makes a bucket (certlake never creates buckets: an operator
// does).
func (s *s3Server) createBucket(ctx context.Context, name string) error {
	c := s3.New(s3.Options{
		BaseEndpoint: aws.String("http://" + s.addr), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(s.access, s.secret, ""),
	})
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &name}); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
