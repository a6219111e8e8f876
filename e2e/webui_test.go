package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/certlake/certlake/e2e/devserver"
	"github.com/certlake/certlake/internal/scenario"
	"github.com/certlake/certlake/workflows"
)

// webUIScreenshot is where the committed screenshot of the Web UI lives;
// it is rewritten only when CERTLAKE_UPDATE_SCREENSHOT=1.
const webUIScreenshot = "testdata/webui/backfill-progress.png"

// A running backfill shows its per-log progress table (the markdown of
// workflow.SetCurrentDetails) on the run's User Metadata tab of the Temporal
// Web UI, as an operator would find it: workflows list, the run, the tab.
func TestWebUIShowsRunningBackfillProgress(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end test; skipped with -short")
	}
	chrome := webUIChromium(t)
	began := time.Now()
	srv, ui := startWebUIDevServer(t)
	t.Logf("dev server with Web UI at %s up in %s", ui, time.Since(began).Round(time.Millisecond))

	e := webUIEnv(t, srv, scenario.Options{Logs: twoLogs(3000, 2000), HoleEvery: 40})
	run := e.start("webui-backfill", workflows.BackfillWorkflowName, workflows.BackfillInput{
		StagingPath: e.sc.StagingPath, ChunkSize: 200, Window: 1})
	started := time.Now()
	t.Cleanup(func() {
		// A failed assertion must not leave the run fetching behind the test.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = e.c.CancelWorkflow(ctx, run.GetID(), run.GetRunID())
		_ = run.Get(ctx, nil)
	})
	t.Logf("scenario, worker and backfill %s started after %s", run.GetID(), time.Since(began).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(t.Context(), 75*time.Second)
	defer cancel()
	bctx := webUIBrowser(ctx, t, chrome)

	// The workflows list shows the run; its link leads to the run's page.
	list := ui + "/namespaces/default/workflows"
	link := fmt.Sprintf(`a[href*="/workflows/%s/%s"]`, url.PathEscape(run.GetID()), run.GetRunID())
	if err := chromedp.Do(bctx,
		chromedp.Navigate(list),
		chromedp.WaitVisible(chromedp.CSS(link)),
		chromedp.Click(chromedp.CSS(link)),
		chromedp.WaitVisible(chromedp.CSS(`a[href$="/user-metadata"]`)),
	); err != nil {
		t.Fatalf("find run %s on %s: %v", run.GetID(), list, err)
	}
	runPage, err := chromedp.Run(bctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("run page %s", runPage)

	// The User Metadata tab renders the current details: first the table as
	// the page loaded it, then (the UI does not poll; "R" refreshes) rows
	// whose fetched counts have moved.
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`a[href$="/user-metadata"]`))); err != nil {
		t.Fatalf("open User Metadata tab: %v", err)
	}
	rows := webUIWaitRows(bctx, t, 20*time.Second, false, func(rows map[string][]string) bool {
		return len(rows) == len(e.sc.Logs)
	}, e.sc)
	t.Logf("progress table shown %s after the start: %q", time.Since(started).Round(time.Millisecond), rows)
	rows = webUIWaitRows(bctx, t, 40*time.Second, true, func(rows map[string][]string) bool {
		for _, r := range rows {
			if n, err := strconv.ParseUint(r[3], 10, 64); err != nil || n == 0 {
				return false
			}
		}
		return len(rows) == len(e.sc.Logs)
	}, e.sc)
	t.Logf("fetched counts moved %s after the start: %q", time.Since(started).Round(time.Millisecond), rows)

	// Per-log rows: name, state, planned = the holes main was left with,
	// 0 < fetched <= planned, nothing failed.
	for _, l := range e.sc.Logs {
		r := rows[l.Source.Name]
		planned, fetched := strconv.FormatUint(l.MissingCount(), 10), r[3]
		if r[2] != planned {
			t.Errorf("planned of %q = %s, want %s (row %q)", l.Source.Name, r[2], planned, r)
		}
		if n, err := strconv.ParseUint(fetched, 10, 64); err != nil || n == 0 || n > l.MissingCount() {
			t.Errorf("fetched of %q = %q, want 1..%s (row %q)", l.Source.Name, fetched, planned, r)
		}
		if r[1] != "running" && r[1] != "done" {
			t.Errorf("state of %q = %q, want running or done (row %q)", l.Source.Name, r[1], r)
		}
		if r[5] != "0" {
			t.Errorf("failed of %q = %q, want 0 (row %q)", l.Source.Name, r[5], r)
		}
	}
	webUICheckRowsVisible(bctx, t)

	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	out := filepath.Join(t.TempDir(), "backfill-progress.png")
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot (%d bytes) at %s", len(png), out)
	if os.Getenv("CERTLAKE_UPDATE_SCREENSHOT") == "1" {
		if err := os.MkdirAll(filepath.Dir(webUIScreenshot), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(webUIScreenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("updated %s", webUIScreenshot)
	}

	// The run was still going while the table was read: cancel it.
	if err := e.c.CancelWorkflow(t.Context(), run.GetID(), run.GetRunID()); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	var canceled *temporal.CanceledError
	if err := run.Get(t.Context(), nil); !errors.As(err, &canceled) {
		t.Fatalf("backfill after cancel: err = %v, want Canceled (it ended before the UI was read?)", err)
	}
	t.Logf("whole test %s", time.Since(began).Round(time.Millisecond))
}

// webUIWaitRows waits until done accepts the progress rows shown on the
// page, keyed by log name (only rows of sc's logs with every column), and
// returns them. With refresh it presses R, the Web UI's refresh key, before
// each look.
func webUIWaitRows(ctx context.Context, t *testing.T, wait time.Duration, refresh bool, done func(map[string][]string) bool, sc *scenario.Scenario) map[string][]string {
	t.Helper()
	names := map[string]bool{}
	for _, l := range sc.Logs {
		names[l.Source.Name] = true
	}
	deadline := time.Now().Add(wait)
	for {
		if refresh {
			if err := chromedp.Do(ctx, chromedp.KeyEvent("r")); err != nil {
				t.Fatalf("press R: %v", err)
			}
			time.Sleep(time.Second)
		}
		rows := map[string][]string{}
		for _, r := range webUITableRows(ctx, t) {
			if len(r) >= 8 && names[r[0]] { // 9 cells since the last failure column
				rows[r[0]] = r
			}
		}
		if done(rows) {
			return rows
		}
		if time.Now().After(deadline) {
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
			t.Fatalf("after %s the User Metadata tab shows progress rows %q; page:\n%s", wait, rows, html)
		}
		if !refresh {
			time.Sleep(300 * time.Millisecond)
		}
	}
}

// webUITableRows returns the trimmed cells of every body row of the tables
// on the page. The Web UI renders markdown in a same-origin iframe
// (/render?content=...), so the iframes' documents are searched too.
func webUITableRows(ctx context.Context, t *testing.T) [][]string {
	t.Helper()
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](`(() => {
		const docs = [document];
		for (const f of document.querySelectorAll("iframe")) {
			try { if (f.contentDocument) docs.push(f.contentDocument); } catch (e) {}
		}
		return docs.flatMap(d => Array.from(d.querySelectorAll("table tr"))).
			map(tr => Array.from(tr.querySelectorAll("td")).map(td => td.innerText.trim())).
			filter(r => r.length > 0);
	})()`))
	if err != nil {
		t.Fatalf("read tables: %v", err)
	}
	return rows
}

// webUICheckRowsVisible fails the test when a row of a table in the
// markdown iframes lies below the iframe's bottom edge: the UI sizes the
// iframe once, from the rendered body, and a clipped row is one the
// operator cannot read.
func webUICheckRowsVisible(ctx context.Context, t *testing.T) {
	t.Helper()
	clipped, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(() => {
		const out = [];
		for (const f of document.querySelectorAll("iframe")) {
			const d = f.contentDocument;
			if (!d) continue;
			for (const tr of d.querySelectorAll("tbody tr")) {
				const b = tr.getBoundingClientRect().bottom;
				if (b > f.clientHeight) out.push(tr.cells[0].innerText + ": row bottom " + b + "px, iframe " + f.clientHeight + "px");
			}
		}
		return out;
	})()`))
	if err != nil {
		t.Fatalf("measure rows: %v", err)
	}
	if len(clipped) > 0 {
		t.Errorf("progress rows clipped by the Web UI's iframe: %q", clipped)
	}
}

// webUIChromium finds Debian's chromium, or the browser named by
// CERTLAKE_CHROMIUM. Without one the test is skipped on a developer's
// machine but fails under CI, so CI cannot skip it silently.
func webUIChromium(t *testing.T) string {
	t.Helper()
	names := []string{"/usr/bin/chromium", "chromium", "chromium-browser"}
	if p := os.Getenv("CERTLAKE_CHROMIUM"); p != "" {
		names = []string{p}
	}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium not found (apt-get install chromium); the Web UI test needs a headless browser"
	if os.Getenv("CI") == "" {
		t.Skip(msg)
	}
	t.Fatal(msg + " and CI is set, so it may not be skipped")
	return ""
}

// startWebUIDevServer starts a dev server of the test's own with the Web UI
// on a free port (the package's shared server runs headless) and returns it
// with the UI's base URL.
func startWebUIDevServer(t *testing.T) (*testsuite.DevServer, string) {
	t.Helper()
	_, uiPort, err := net.SplitHostPort(freePort(t))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := devserver.Start(t.Context(), devserver.Options{UIPort: uiPort})
	if err != nil {
		t.Fatalf("start dev server with UI: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	ui := "http://localhost:" + uiPort
	// The UI server may come up a moment after the frontend.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := webUIGet(t.Context(), ui+"/")
		if err == nil && resp < 500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Web UI at %s not answering: status %d, %v", ui, resp, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return srv, ui
}

// webUIGet returns the status of a GET of u.
func webUIGet(ctx context.Context, u string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// webUIEnv is newEnv against srv: the scenario's logs, a config whose
// fetches are slowed so the backfill runs for minutes, and a worker.
func webUIEnv(t *testing.T, srv *testsuite.DevServer, opts scenario.Options) *env {
	t.Helper()
	opts.Dir = t.TempDir()
	sc, err := scenario.Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("scenario: %v", err)
	}
	t.Cleanup(func() { sc.Close() })
	e := &env{t: t, sc: sc, c: srv.Client(),
		queue: fmt.Sprintf("certlake-webui-%d-%d", os.Getpid(), queueSeq.Add(1))}
	e.cfg = testConfig(sc, e.queue)
	e.cfg.Temporal.Address = srv.FrontendHostPort()
	// A few small requests a second: the run lasts long past the test.
	e.cfg.CT.RateLimit = 1
	e.cfg.CT.Burst = 1
	e.cfg.CT.BatchSize = 32
	e.startWorker()
	return e
}

// webUIBrowser starts headless chromium with a fresh profile that cannot
// reach anything but this machine.
func webUIBrowser(ctx context.Context, t *testing.T, chrome string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Tests must not touch the internet (fonts, telemetry): only
		// localhost resolves.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE localhost"),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", chrome, err)
	}
	return bctx
}
