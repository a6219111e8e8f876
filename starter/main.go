// Command starter is certlake's operator CLI: it starts backfill and merge
// workflows, manages the nightly merge schedule, and inspects the lake and the
// logs locally (gaps, fetch, table describe, table vacuum) without Temporal.
//
//	go run ./starter <command> [flags]
//
// Every command reads the same configuration as the worker (certlake.yaml,
// CERTLAKE_* environment variables, --config, --set KEY=VALUE); flags given
// on the command line win for that run.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/certlake/certlake/internal/allowed"
	"github.com/certlake/certlake/internal/config"
)

// cli is what a command needs from its process: streams and the context.
type cli struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// interrupts delivers SIGINT/SIGTERM. Until a command calls
	// catchInterrupts, run turns an interrupt into the cancellation of the
	// command's context; afterwards the command receives them here (--wait
	// asks whether to cancel the workflow).
	interrupts <-chan os.Signal
	// catchInterrupts hands later interrupts to the command; nil when the
	// process gets none (tests).
	catchInterrupts func()
	// stdinTerminal is true when stdin is a terminal, so a prompt can be
	// answered.
	stdinTerminal bool
	// stderrTerminal is true when stderr is a terminal: --wait redraws its
	// progress table in place there, and prints plain lines otherwise.
	stderrTerminal bool
}

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	c := &cli{
		stdin:          os.Stdin,
		stdout:         os.Stdout,
		stderr:         os.Stderr,
		interrupts:     sigs,
		stdinTerminal:  config.IsTerminal(os.Stdin),
		stderrTerminal: config.IsTerminal(os.Stderr),
	}
	os.Exit(run(context.Background(), c, os.Args[1:]))
}

// exitError ends the process with Code after printing Err (when not nil).
type exitError struct {
	Code int
	Err  error
}

func (e *exitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *exitError) Unwrap() error { return e.Err }

// usageError is a wrong invocation: exit code 2.
func usageError(format string, args ...any) error {
	return &exitError{Code: 2, Err: fmt.Errorf(format, args...)}
}

// run runs the command args names and returns the exit code. Errors are
// printed as one line, "Error: <reason>", on stderr.
func run(ctx context.Context, c *cli, args []string) int {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	if c.interrupts != nil {
		c = relayInterrupts(ctx, stop, c)
	}
	root := rootCommand(c)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.Code
		if ee.Err == nil {
			return code
		}
	}
	fmt.Fprintln(c.stderr, "Error: "+oneLine(err.Error()))
	return code
}

// relayInterrupts returns a copy of c whose interrupts cancel the command
// (stop) until it calls catchInterrupts, and are passed on to it after.
func relayInterrupts(ctx context.Context, stop func(), c *cli) *cli {
	sub := *c
	fwd := make(chan os.Signal, 1)
	var caught atomic.Bool
	sub.interrupts = fwd
	sub.catchInterrupts = func() { caught.Store(true) }
	go func() {
		for {
			select {
			case s := <-c.interrupts:
				if !caught.Load() {
					stop()
					return
				}
				select {
				case fwd <- s:
				default: // one pending interrupt is enough
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return &sub
}

// oneLine joins a multi-line message (errors.Join) into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// writeJSON prints v as indented JSON: the --json output of a command.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// progressFlags adds --progress-interval and --no-progress, the way
// backfill and merge --wait show progress, and returns a function giving
// the options after parsing.
func progressFlags(c *cli, fs *pflag.FlagSet, kind progressKind) func() progressOptions {
	interval := fs.Duration("progress-interval", 0, "with --wait, how often to ask the run for its progress (default 2s on a terminal, 30s otherwise)")
	off := fs.Bool("no-progress", false, "with --wait, print no progress, only the result")
	return func() progressOptions {
		return progressOptions{kind: kind, live: c.stderrTerminal, interval: *interval, off: *off}
	}
}

// checkAllowed refuses a location given by flag outside
// lake.allowed_locations, before a command writes or deletes there.
func checkAllowed(cfg *config.Config, flag, path string) error {
	list, err := allowed.New(cfg.Lake.Allowed())
	if err == nil {
		_, err = list.Check(flag, path)
	}
	return err
}

// loadConfig loads the configuration with fs's overrides.
func loadConfig(fs *pflag.FlagSet) (*config.Config, error) {
	return config.Load("", fs)
}
