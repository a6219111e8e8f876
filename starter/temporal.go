package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"

	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/storage"
	"github.com/certlake/certlake/workflows"
)

// dial connects to the Temporal frontend of cfg: address, namespace, TLS or
// mTLS, and the Temporal Cloud API key. The SDK's own logs go to stderr at
// warn level so that stdout stays the command's output.
func dial(ctx context.Context, c *cli, cfg config.Temporal) (client.Client, error) {
	opts := client.Options{
		HostPort:  cfg.Address,
		Namespace: cfg.Namespace,
		Logger:    sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
	}
	tlsCfg, err := cfg.TLSConfig()
	if err != nil {
		return nil, err
	}
	opts.ConnectionOptions.TLS = tlsCfg
	if cfg.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(cfg.APIKey)
	}
	tc, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (temporal.address), namespace %s: %w", cfg.Address, cfg.Namespace, err)
	}
	return tc, nil
}

// runURL is the Web UI page of one run, or "" when no UI is configured.
func runURL(cfg config.Temporal, workflowID, runID string) string {
	if cfg.UIURL == "" {
		return ""
	}
	return strings.TrimSuffix(cfg.UIURL, "/") + "/namespaces/" + url.PathEscape(cfg.Namespace) +
		"/workflows/" + url.PathEscape(workflowID) + "/" + url.PathEscape(runID) + "/history"
}

// scheduleURL is the Web UI page of a schedule, or "" when no UI is
// configured.
func scheduleURL(cfg config.Temporal, id string) string {
	if cfg.UIURL == "" {
		return ""
	}
	return strings.TrimSuffix(cfg.UIURL, "/") + "/namespaces/" + url.PathEscape(cfg.Namespace) +
		"/schedules/" + url.PathEscape(id)
}

// mergeWorkflowID is the merge workflow's ID of a staging table
// (workflows.MergeWorkflowID of its absolute path): the starter, the
// schedule, merge_after and the workflow itself agree on it, so two merges
// of one staging table cannot run at once while merges of different tables
// can.
func mergeWorkflowID(stagingPath string) (string, error) {
	abs, err := absPath(stagingPath)
	if err != nil {
		return "", err
	}
	return workflows.MergeWorkflowID(abs), nil
}

// absPath makes a table path absolute: the worker may run in another
// directory than the starter.
func absPath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	loc, err := storage.ParseLocation("staging path", p)
	if err != nil {
		return "", err
	}
	if !loc.IsLocal() { // s3:// is absolute already
		return loc.String(), nil
	}
	abs, err := filepath.Abs(loc.Dir)
	if err != nil {
		return "", fmt.Errorf("path %s: %w", p, err)
	}
	return abs, nil
}

// mergeTarget is the absolute path of a staging table to merge and the
// merge workflow id derived from it.
func mergeTarget(staging string) (path, id string, err error) {
	if path, err = absPath(staging); err != nil {
		return "", "", err
	}
	if id, err = mergeWorkflowID(path); err != nil {
		return "", "", err
	}
	return path, id, nil
}

// alreadyStarted turns the server's "already started" answer into a message
// naming the running workflow; other errors pass through.
func alreadyStarted(err error, cfg config.Temporal, what, workflowID string) error {
	var as *serviceerror.WorkflowExecutionAlreadyStarted
	if !errors.As(err, &as) {
		return err
	}
	msg := fmt.Sprintf("%s is already running as workflow %s (run %s); wait for it or cancel it (temporal workflow cancel -w %s)",
		what, workflowID, as.RunId, workflowID)
	if u := runURL(cfg, workflowID, as.RunId); u != "" {
		msg += ": " + u
	}
	return errors.New(msg)
}

// started prints where a run can be watched. With --wait the lines go to
// stderr, so that stdout holds only the result JSON.
func started(w io.Writer, cfg config.Temporal, kind string, run client.WorkflowRun) {
	fmt.Fprintf(w, "started %s\n  workflow id: %s\n  run id:      %s\n", kind, run.GetID(), run.GetRunID())
	if u := runURL(cfg, run.GetID(), run.GetRunID()); u != "" {
		fmt.Fprintf(w, "  web ui:      %s\n", u)
	}
}

// launch is one workflow start by the backfill or merge command.
type launch struct {
	verb     string // "backfill", "merge": the error reads "start <verb>: ..."
	kind     string // what started prints: "backfill", "merge of PATH"
	running  string // what alreadyStarted names: "a merge of PATH"
	workflow string // the workflow type
	opts     client.StartWorkflowOptions
	input    any
	result   any // where --wait decodes the result
	wait     bool
	waitOpts waitOptions
}

// startWorkflow dials Temporal, starts the run and prints where to watch it; with
// wait it then waits for the result and prints it.
func startWorkflow(ctx context.Context, c *cli, cfg config.Temporal, l launch) error {
	tc, err := dial(ctx, c, cfg)
	if err != nil {
		return err
	}
	defer tc.Close()
	if l.wait && c.catchInterrupts != nil {
		// From the start on, Ctrl-C is about the workflow, not this call.
		c.catchInterrupts()
	}
	run, err := tc.ExecuteWorkflow(ctx, l.opts, l.workflow, l.input)
	if err != nil {
		err = alreadyStarted(err, cfg, l.running, l.opts.ID)
		return fmt.Errorf("start %s: %w", l.verb, err)
	}
	out := c.stdout
	if l.wait {
		out = c.stderr
	}
	started(out, cfg, l.kind, run)
	if !l.wait {
		return nil
	}
	return wait(ctx, c, tc, cfg, run, l.result, l.waitOpts)
}

// waitOptions says what Ctrl-C does during --wait, and how progress is
// shown meanwhile.
type waitOptions struct {
	cancelOnInterrupt bool
	progress          progressOptions
}

// wait waits for run to end and prints its result as JSON on stdout. On an
// interrupt it cancels the workflow (asking first on a terminal, or directly
// with cancelOnInterrupt), then keeps waiting for the Canceled outcome. When
// it cannot ask, it stops waiting and leaves the workflow running.
func wait(ctx context.Context, c *cli, tc client.Client, cfg config.Temporal, run client.WorkflowRun, result any, opts waitOptions) error {
	id, runID := run.GetID(), run.GetRunID()
	done := make(chan error, 1)
	go func() { done <- run.Get(ctx, result) }()

	// The progress display pauses while a prompt waits for an answer.
	w := watchProgress(ctx, c, tc, run, opts.progress)
	defer func() { w.stop() }()
	cancelSent := false
	for {
		select {
		case err := <-done:
			w.finish()
			return finish(c, id, err, result, cancelSent)
		case <-ctx.Done():
			return ctx.Err()
		case <-c.interrupts:
			w.stop()
			if cancelSent {
				fmt.Fprintf(c.stderr, "stopped waiting; workflow %s is being canceled\n", id)
				return &exitError{Code: 1}
			}
			cancel := opts.cancelOnInterrupt
			if !cancel {
				if !c.stdinTerminal {
					fmt.Fprintf(c.stderr, "stopped waiting; workflow %s keeps running (cancel it with: temporal workflow cancel -w %s)\n", id, id)
					return &exitError{Code: 1}
				}
				answer, ok := ask(c, fmt.Sprintf("cancel workflow %s? [y/N] ", id))
				if !ok {
					fmt.Fprintf(c.stderr, "\nstopped waiting; workflow %s keeps running\n", id)
					return &exitError{Code: 1}
				}
				cancel = answer
				if !cancel {
					fmt.Fprintf(c.stderr, "not canceled; still waiting for workflow %s (Ctrl-C again to ask again)\n", id)
					w = watchProgress(ctx, c, tc, run, opts.progress)
					continue
				}
			}
			if err := tc.CancelWorkflow(context.WithoutCancel(ctx), id, runID); err != nil {
				return fmt.Errorf("cancel workflow %s: %w", id, err)
			}
			cancelSent = true
			fmt.Fprintf(c.stderr, "cancel requested; waiting for workflow %s to end\n", id)
			w = watchProgress(ctx, c, tc, run, opts.progress)
		}
	}
}

// ask prints prompt and reads a yes/no answer from stdin. ok is false when a
// second interrupt arrives or stdin ends before an answer.
func ask(c *cli, prompt string) (yes, ok bool) {
	fmt.Fprint(c.stderr, "\n"+prompt)
	answers := make(chan string, 1)
	go func() {
		line, err := bufio.NewReader(c.stdin).ReadString('\n')
		if err != nil && line == "" {
			close(answers)
			return
		}
		answers <- line
	}()
	select {
	case line, open := <-answers:
		if !open {
			return false, false
		}
		a := strings.ToLower(strings.TrimSpace(line))
		return a == "y" || a == "yes", true
	case <-c.interrupts:
		return false, false
	}
}

// finish prints the outcome of a run.
func finish(c *cli, id string, err error, result any, cancelSent bool) error {
	if err == nil {
		if cancelSent {
			fmt.Fprintf(c.stderr, "workflow %s completed before the cancel took effect\n", id)
		}
		b, jerr := json.MarshalIndent(result, "", "  ")
		if jerr != nil {
			return fmt.Errorf("workflow %s result: %w", id, jerr)
		}
		fmt.Fprintln(c.stdout, string(b))
		return nil
	}
	var canceled *temporal.CanceledError
	if errors.As(err, &canceled) {
		fmt.Fprintf(c.stderr, "workflow %s canceled\n", id)
		return &exitError{Code: 1}
	}
	return fmt.Errorf("workflow %s failed: %w", id, err)
}
