// Package devserver starts the Temporal CLI's dev server for certlake's end
// to end tests, the starter's tests, the benchmarks and the demo: one place
// that finds the CLI and starts the server quietly.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
)

// ErrNoCLI means the Temporal CLI is not installed.
var ErrNoCLI = errors.New("the Temporal CLI is not on PATH nor in $(go env GOPATH)/bin; run scripts/ensure-temporal.sh (make tools)")

// Options are what differs between callers; the zero value is a server on a
// free port with an in-memory database, no UI, and its output discarded.
type Options struct {
	HostPort string    // "" = a free port
	DB       string    // SQLite file; "" = in memory
	UIPort   string    // "" = no Web UI
	Output   io.Writer // the server's stdout and stderr; nil = discarded
}

// CLI returns the path of the Temporal CLI.
func CLI() (string, error) {
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "temporal")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", ErrNoCLI
}

// Start starts a dev server with the "default" namespace and waits (up to
// two minutes) until its client is connected.
func Start(ctx context.Context, o Options) (*testsuite.DevServer, error) {
	path, err := CLI()
	if err != nil {
		return nil, err
	}
	out := o.Output
	if out == nil {
		out = io.Discard
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  path,
		DBFilename:    o.DB,
		EnableUI:      o.UIPort != "",
		UIPort:        o.UIPort,
		LogLevel:      "error",
		ClientOptions: &client.Options{HostPort: o.HostPort, Namespace: "default", Logger: QuietLogger()},
		Stdout:        out,
		Stderr:        out,
	})
	if err != nil {
		return nil, fmt.Errorf("start the Temporal dev server: %w", err)
	}
	return srv, nil
}

// QuietLogger is an SDK logger that discards everything.
func QuietLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))
}
