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

const usage = `usage: starter <command> [flags]

Workflows (need a Temporal server and a certlake worker):
  backfill         find the lake's missing ranges and fill them into staging
  merge            merge a staging table into the main table
  schedule         create, describe, trigger, pause, unpause or delete the nightly merge schedule

Local tools (no Temporal):
  gaps             print the backfill plan (missing ranges per log, requests, ETA)
  coverage         write the lake's coverage per log as one HTML page
  fetch            print the rows of a range of a CT log as JSON lines
  table describe   print a Delta table's version, schema, files and per-log ranges
  table vacuum     delete files crashed writers left uncommitted (older than a retention)

Run "starter <command> --help" for a command's flags. Every command also takes
--config FILE and --set KEY=VALUE (see certlake.example.yaml).
`

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

// command runs one subcommand with its arguments (after the command name).
type command func(ctx context.Context, c *cli, args []string) error

var commands = map[string]command{
	"backfill": runBackfill,
	"merge":    runMerge,
	"schedule": runSchedule,
	"gaps":     runGaps,
	"coverage": runCoverage,
	"fetch":    runFetch,
	"table":    runTable,
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

// run dispatches args and returns the exit code. Errors are printed as one
// line, "Error: <reason>", on stderr.
func run(ctx context.Context, c *cli, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(c.stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(c.stderr, "Error: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	if c.interrupts != nil {
		c = relayInterrupts(ctx, stop, c)
	}
	err := cmd(ctx, c, args[1:])
	if err == nil {
		return 0
	}
	if errors.Is(err, pflag.ErrHelp) {
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

// newFlags returns a flag set for a command with the shared --config and
// --set flags.
func newFlags(c *cli, name, synopsis string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "usage: starter %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	config.AddFlags(fs)
	return fs
}

// parse parses args, turning flag errors into usage errors.
func parse(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return &exitError{Code: 2} // pflag has printed the error and usage
	}
	return nil
}

// bind makes flag name override config key; a wrong key is a programming
// error caught by the tests.
func bind(fs *pflag.FlagSet, name, key string) {
	if err := config.BindFlag(fs, name, key); err != nil {
		panic(err)
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
