// Command demo runs certlake's main job end to end on the embedded default:
// a Temporal dev server with its Web UI, two real CT logs in-process
// (TesseraCT and Trillian+CTFE), a main table with holes, a worker process, a
// backfill into staging and a merge. It is `make demo`.
//
//	go run ./internal/demo [--dir .demo] [--keep-running]
//
// It is a command of its own, not a starter subcommand, so that the
// operator's CLI links none of the in-process logs' test code (Trillian,
// Tessera, their database drivers).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	"go.temporal.io/sdk/client"
	"k8s.io/klog/v2"

	"github.com/certlake/certlake/e2e/devserver"
	"github.com/certlake/certlake/internal/scenario"
	"github.com/certlake/certlake/workflows"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Stdout, os.Stderr, os.Args[1:])
	switch {
	case err == nil, errors.Is(err, pflag.ErrHelp):
	default:
		fmt.Fprintln(os.Stderr, "Error: "+err.Error())
		stop()
		os.Exit(1)
	}
}

// run does the demo and stops what it started unless --keep-running.
func run(ctx context.Context, out, stderr io.Writer, args []string) error {
	fs := pflag.NewFlagSet("demo", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", ".demo", "working directory of the demo (wiped at start)")
	staticEntries := fs.Int("static-entries", 3000, "certificates in the static-ct-api log")
	rfcEntries := fs.Int("rfc6962-entries", 2000, "certificates in the RFC 6962 log")
	uiPort := fs.Int("ui-port", 8233, "port of the Temporal Web UI (0 = any free port)")
	keep := fs.Bool("keep-running", false, "leave the dev server, logs and worker running until Ctrl-C, to browse the Web UI")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Trillian, inside the in-process RFC 6962 log, logs through klog.
	klog.LogToStderr(false)
	klog.SetOutput(io.Discard)
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(abs); err != nil {
		return fmt.Errorf("clean %s: %w", abs, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	step := func(format string, a ...any) { fmt.Fprintf(out, "==> "+format+"\n", a...) }

	step("building the worker")
	workerBin := filepath.Join(abs, "bin", "certlake-worker")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", workerBin, "./worker").CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./worker: %w\n%s", err, out)
	}

	step("starting the Temporal dev server")
	port := *uiPort
	if port == 0 {
		port = freePort()
	}
	srvLog, err := os.Create(filepath.Join(abs, "temporal.log"))
	if err != nil {
		return err
	}
	defer srvLog.Close()
	srv, err := devserver.Start(ctx, devserver.Options{UIPort: fmt.Sprint(port), DB: filepath.Join(abs, "temporal.db"), Output: srvLog})
	if err != nil {
		return fmt.Errorf("start dev server: %w (is port %d free? try --ui-port 0)", err, port)
	}
	defer srv.Stop()
	uiURL := fmt.Sprintf("http://localhost:%d", port)
	step("Temporal at %s, Web UI at %s", srv.FrontendHostPort(), uiURL)

	step("starting two CT logs in-process and filling them (%d + %d certificates)", *staticEntries, *rfcEntries)
	sc, err := scenario.Start(ctx, scenario.Options{
		Dir: filepath.Join(abs, "world"),
		Logs: []scenario.LogSpec{
			{Name: "certlake demo static log", Static: true, Entries: *staticEntries},
			{Name: "certlake demo RFC 6962 log", Entries: *rfcEntries, MaxGetEntries: 32},
		},
	})
	if err != nil {
		return err
	}
	defer sc.Close()
	before := map[string]int{}
	mainKeys, err := scenario.Keys(ctx, sc.MainPath)
	if err != nil {
		return err
	}
	for u, m := range mainKeys {
		before[u] = len(m)
	}
	for _, l := range sc.Logs {
		step("  %s: %s (%d entries; main holds %d, %d missing in %d holes)", l.Source.Name, l.Source.URL,
			l.Entries, before[l.Source.URL], l.MissingCount(), len(l.Missing))
	}

	cfgFile := filepath.Join(abs, "certlake.yaml")
	if err := os.WriteFile(cfgFile, []byte(demoConfig(sc, srv.FrontendHostPort(), uiURL)), 0o644); err != nil {
		return err
	}
	step("starting the worker (%s --config %s)", workerBin, cfgFile)
	workerLog, err := os.Create(filepath.Join(abs, "worker.log"))
	if err != nil {
		return err
	}
	defer workerLog.Close()
	wcmd := exec.Command(workerBin, "--config", cfgFile)
	wcmd.Stdout, wcmd.Stderr = workerLog, workerLog
	if err := wcmd.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	workerExited := make(chan struct{})
	var workerErr error
	go func() {
		workerErr = wcmd.Wait()
		close(workerExited)
		cancel() // a worker that dies takes the demo down with it
	}()
	defer func() {
		_ = wcmd.Process.Signal(os.Interrupt)
		select {
		case <-workerExited:
		case <-time.After(20 * time.Second):
			_ = wcmd.Process.Kill()
		}
	}()
	// explain turns an error into one that says why, when the worker died.
	explain := func(err error) error {
		select {
		case <-workerExited:
			tail, _ := os.ReadFile(workerLog.Name())
			if len(tail) > 2000 {
				tail = tail[len(tail)-2000:]
			}
			return fmt.Errorf("the worker exited (%v); its log ends with:\n%s", workerErr, tail)
		default:
			return err
		}
	}

	tc := srv.Client()
	link := func(run client.WorkflowRun) string {
		return fmt.Sprintf("%s/namespaces/default/workflows/%s/%s/history", uiURL, run.GetID(), run.GetRunID())
	}
	stamp := time.Now().UTC().Format("20060102-150405")
	step("backfill into staging %s", sc.StagingPath)
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "demo-backfill-" + stamp, TaskQueue: workflows.TaskQueue,
		StaticSummary: "demo backfill into " + sc.StagingPath,
	}, workflows.BackfillWorkflowName, workflows.BackfillInput{StagingPath: sc.StagingPath})
	if err != nil {
		return explain(fmt.Errorf("start backfill: %w", err))
	}
	step("  %s", link(run))
	var bres workflows.BackfillResult
	if err := run.Get(ctx, &bres); err != nil {
		return explain(fmt.Errorf("backfill: %w (worker log: %s)", err, workerLog.Name()))
	}
	step("  wrote %d records for %d logs (%d failed ranges)", bres.RecordsWritten, bres.LogsTotal, len(bres.FailedRanges))
	staged, err := scenario.Keys(ctx, sc.StagingPath)
	if err != nil {
		return err
	}

	step("merge staging into main")
	mrun, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "demo-merge-" + stamp, TaskQueue: workflows.TaskQueue,
		StaticSummary: "demo merge of " + sc.StagingPath,
	}, workflows.MergeWorkflowName, workflows.MergeInput{StagingPath: sc.StagingPath})
	if err != nil {
		return explain(fmt.Errorf("start merge: %w", err))
	}
	step("  %s", link(mrun))
	var mres workflows.MergeResult
	if err := mrun.Get(ctx, &mres); err != nil {
		return explain(fmt.Errorf("merge: %w (worker log: %s)", err, workerLog.Name()))
	}
	step("  staging rows %d, inserted %d, skipped %d, staging retired: %t",
		mres.TotalStagingRows, mres.TotalInserted, mres.TotalSkipped, mres.StagingRetired)

	after, err := scenario.Keys(ctx, sc.MainPath)
	if err != nil {
		return err
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "log\tentries\tmain before\tmissing\tstaged\tmain after\tduplicates\tcomplete\t")
	complete := true
	for _, l := range sc.Logs {
		u := l.Source.URL
		dups := 0
		for _, n := range after[u] {
			if n > 1 {
				dups++
			}
		}
		ok := len(after[u]) == int(l.Entries) && dups == 0
		complete = complete && ok
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%t\t\n", l.Source.Name, l.Entries, before[u], l.MissingCount(),
			len(staged[u]), len(after[u]), dups, ok)
	}
	tw.Flush()
	fmt.Fprintln(out)
	fmt.Fprintf(out, "Web UI: %s/namespaces/default/workflows\n", uiURL)
	fmt.Fprintf(out, "  backfill: %s\n  merge:    %s\n", link(run), link(mrun))
	fmt.Fprintf(out, "Lake: %s (main), worker log: %s\n", filepath.Dir(sc.MainPath), workerLog.Name())
	if !complete {
		return errors.New("demo: main is not complete after the merge (see the table above)")
	}
	if *keep {
		fmt.Fprintln(out, "Everything keeps running; press Ctrl-C to stop.")
		<-ctx.Done()
	} else {
		fmt.Fprintln(out, "Stopping the worker, the logs and the dev server (use --keep-running to browse the Web UI).")
	}
	return nil
}

func demoConfig(sc *scenario.Scenario, hostPort, uiURL string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "temporal:\n  address: %q\n  ui_url: %q\nlake:\n  main_path: %q\n  staging_path: %q\n  plan_dir: %q\n",
		hostPort, uiURL, sc.MainPath, sc.StagingPath, sc.PlanDir)
	fmt.Fprintf(&b, "ct:\n  log_list_url: \"\"\n  state_file: %q\n  rate_limit: 50\n  burst: 50\n", sc.StateFile)
	var custom, static []string
	for _, l := range sc.Logs {
		// The in-process logs' keys and origins, so that the demo verifies
		// what it stages as a real deployment does.
		cl := l.ConfigLog()
		e := fmt.Sprintf("    - name: %q\n      url: %q\n      key: %q\n", cl.Name, cl.URL, cl.Key)
		if cl.Origin != "" {
			e += fmt.Sprintf("      origin: %q\n", cl.Origin)
		}
		if l.Source.Static {
			static = append(static, e)
		} else {
			custom = append(custom, e)
		}
	}
	if len(custom) > 0 {
		b.WriteString("  custom_logs:\n" + strings.Join(custom, ""))
	}
	if len(static) > 0 {
		b.WriteString("  static_logs:\n" + strings.Join(static, ""))
	}
	b.WriteString("backfill:\n  chunk_size: 500\n  window: 4\n  stage_batch_rows: 1000\nmerge:\n  batch_rows: 2000\nworker:\n  metrics_address: \"\"\n  log_format: json\n")
	return b.String()
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 8233
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
