package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/certlake/certlake/internal/coverage"
	"github.com/certlake/certlake/internal/gaps"
	"github.com/certlake/certlake/internal/lake"
)

// coverageScreenshot is the README's picture of a coverage page; it is
// rewritten only when CERTLAKE_UPDATE_SCREENSHOT=1.
const coverageScreenshot = "../docs/coverage.png"

// chromium finds Debian's chromium, or the browser named by
// CERTLAKE_CHROMIUM; without one the test is skipped, except under CI.
func chromium(t *testing.T) string {
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
	if os.Getenv("CI") == "" {
		t.Skip("chromium not found (apt-get install chromium)")
	}
	t.Fatal("chromium not found and CI is set")
	return ""
}

// browser starts headless chromium that can reach nothing: the page must
// need no network.
func browser(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a headless browser")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1180, 900),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND"),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// pageNumbers is what the rendered page shows, read from the DOM.
type pageNumbers struct {
	Drawn int                           `json:"drawn"`
	Total map[string]float64            `json:"total"`
	Logs  map[string]map[string]float64 `json:"logs"`
}

const readPage = `(() => {
  const val = e => Number(e.dataset.value);
  const out = {drawn: Number(document.body.dataset.drawn || 0), total: {}, logs: {}};
  for (const e of document.querySelectorAll("p.sub [data-field]")) out.total[e.dataset.field] = val(e);
  for (const s of document.querySelectorAll("section.log")) {
    const m = {};
    for (const e of s.querySelectorAll("[data-field]")) m[e.dataset.field] = val(e);
    out.logs[s.dataset.log] = m;
  }
  return out;
})()`

// pixel returns the color of the canvas of log u at x, y as "r,g,b".
func pixel(u string, x, y int) string {
	return fmt.Sprintf(`(() => { const c = document.querySelector('section.log[data-log=%q] canvas');
  const d = c.getContext("2d").getImageData(%d, %d, 1, 1).data; return d[0] + "," + d[1] + "," + d[2]; })()`, u, x, y)
}

// TestCoverageHTML writes the coverage page of a small lake, opens it in
// headless chromium, and checks that it draws every bar and that its
// numbers are starter gaps --json's, and the lake's.
func TestCoverageHTML(t *testing.T) {
	const (
		a = "https://ct.example.com/logs/a"
		b = "https://ct.example.com/logs/b"
		c = "https://ct.example.com/logs/c" // in the state file, not in the lake
	)
	dir := t.TempDir()
	state := filepath.Join(dir, "certstream_state.json")
	stateBody := fmt.Sprintf(`{"version": 1, "logs": {
  %q: {"current_index": 200, "tree_size": 210, "last_success": 1732550400},
  %q: {"current_index": 1040, "tree_size": 1100, "last_success": 1732550400},
  %q: {"current_index": 30, "tree_size": 30, "last_success": 1732550400}}}`, a, b, c)
	if err := os.WriteFile(state, []byte(stateBody), 0o644); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "lake", "main")
	staging := filepath.Join(dir, "lake", "staging")
	appendRows(t, main, lake.RoleMain, a, [2]uint64{0, 39}, [2]uint64{50, 99})
	appendRows(t, main, lake.RoleMain, b, [2]uint64{1000, 1009}, [2]uint64{1020, 1049})
	appendRows(t, staging, lake.RoleStaging, b, [2]uint64{1010, 1014})
	work := workdir(t, fmt.Sprintf("lake:\n  main_path: %s\n  staging_path: %s\nct:\n  state_file: %s\n", main, staging, state))
	bctx := browser(t)

	for _, mode := range [][]string{nil, {"--from", "20"}} {
		t.Run(fmt.Sprintf("Args%v", mode), func(t *testing.T) {
			out := filepath.Join(work, "coverage.html")
			r := runStarter(t, append([]string{"coverage", "--out", out}, mode...)...)
			if r.code != 0 || !strings.Contains(r.stdout, "wrote "+out) {
				t.Fatalf("coverage = %d, %q, %q", r.code, r.stdout, r.stderr)
			}
			r = runStarter(t, append([]string{"gaps", "--json"}, mode...)...)
			var plan gapsView
			if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil {
				t.Fatalf("gaps --json: %v", err)
			}
			html, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			// Self-contained: nothing to fetch.
			if m := regexp.MustCompile(`(?i)<(link|img|iframe)|\ssrc=|href=|@import|url\(`).Find(html); m != nil {
				t.Errorf("coverage page refers to something outside it: %q", m)
			}

			if err := chromedp.Do(bctx, chromedp.Navigate("file://"+out), chromedp.WaitVisible(chromedp.CSS(`body[data-drawn]`))); err != nil {
				t.Fatal(err)
			}
			got, err := chromedp.Run(bctx, chromedp.Evaluate[pageNumbers](readPage))
			if err != nil {
				t.Fatal(err)
			}
			if got.Drawn != len(plan.Logs) {
				t.Errorf("page drew %d bars, want %d", got.Drawn, len(plan.Logs))
			}
			// The plan's numbers are gaps --json's.
			if got.Total["planned_entries"] != float64(plan.TotalEntries) || got.Total["planned_ranges"] != float64(plan.TotalRanges) {
				t.Errorf("page plans %g entries in %g ranges, gaps --json %d in %d", got.Total["planned_entries"], got.Total["planned_ranges"], plan.TotalEntries, plan.TotalRanges)
			}
			for _, l := range plan.Logs {
				p := got.Logs[l.SourceURL]
				if p["planned_entries"] != float64(l.Entries) || p["planned_ranges"] != float64(l.Ranges) || p["requests"] != float64(l.Requests) ||
					p["ceiling"] != float64(l.Ceiling) || p["eta"] != l.ETASeconds {
					t.Errorf("page log %s = %v; gaps --json: %d entries in %d ranges, %d requests, eta %g s, ceiling %d", l.SourceURL, p, l.Entries, l.Ranges, l.Requests, l.ETASeconds, l.Ceiling)
				}
			}
			// The lake's numbers over [0, ceiling).
			want := map[string]map[string]uint64{
				a: {"main": 90, "staged": 0, "missing": 110, "past_ceiling": 0},
				b: {"main": 30, "staged": 5, "missing": 1005, "past_ceiling": 10},
				c: {"main": 0, "staged": 0, "missing": 30, "past_ceiling": 0},
			}
			for u, w := range want {
				for k, n := range w {
					if got.Logs[u][k] != float64(n) {
						t.Errorf("page log %s %s = %g, want %d", u, k, got.Logs[u][k], n)
					}
				}
			}
			// The bar: a's index 10 is in main (green), 45 missing (red);
			// one index per 5 pixels.
			green, err := chromedp.Run(bctx, chromedp.Evaluate[string](pixel(a, 52, 14)))
			if err != nil {
				t.Fatal(err)
			}
			red, err := chromedp.Run(bctx, chromedp.Evaluate[string](pixel(a, 227, 14)))
			if err != nil {
				t.Fatal(err)
			}
			if green != "46,125,50" || red != "229,57,53" {
				t.Errorf("bar of %s: pixel of index 10 = %s, of 45 = %s; want green 46,125,50 and red 229,57,53", a, green, red)
			}
		})
	}
}

// TestCoverageScales builds the page of 20 logs of 2 billion indices with
// 9,000 holes each (180,000 ranges): the page stays small, since it holds
// bins, and draws in the browser. With CERTLAKE_UPDATE_SCREENSHOT=1 its
// screenshot becomes the README's.
func TestCoverageScales(t *testing.T) {
	const ceiling = 2_000_000_000
	rng := rand.New(rand.NewPCG(20, 2))
	var logs []coverage.Log
	for i := range 20 {
		u := fmt.Sprintf("https://ct%d.example.com/logs/2026h1", i)
		l := coverage.Log{URL: u, Name: fmt.Sprintf("Example %02d 2026h1", i), Ceiling: ceiling}
		// The ingester started late on some logs, and left holes.
		start := uint64(0)
		if i%3 == 0 {
			start = uint64(rng.IntN(600_000_000))
			l.AbsentAll = append(l.AbsentAll, gaps.Range{SourceURL: u, Start: 0, End: start - 1})
		}
		pos := start
		for range 9_000 {
			pos += uint64(rng.IntN(400_000)) + 2
			n := uint64(rng.IntN(20_000)) + 1
			if i%5 == 1 && rng.IntN(300) == 0 {
				n = uint64(rng.IntN(40_000_000)) // an outage
			}
			if pos+n >= ceiling {
				break
			}
			l.AbsentAll = append(l.AbsentAll, gaps.Range{SourceURL: u, Start: pos, End: pos + n - 1})
			pos += n
		}
		// Staging holds every third hole; main lacks what staging holds.
		for k, r := range l.AbsentAll {
			l.AbsentMain = append(l.AbsentMain, r)
			if k%3 != 1 || r.Start == 0 {
				l.Planned = append(l.Planned, r)
			}
		}
		var still []gaps.Range
		for k, r := range l.AbsentAll {
			if k%3 != 1 || r.Start == 0 {
				still = append(still, r)
			}
		}
		l.AbsentAll = still
		if i%4 == 2 {
			l.PastCeiling = uint64(rng.IntN(5_000_000))
		}
		// At Google's 32 entries per request and 5 requests/s.
		for _, r := range l.Planned {
			l.PlannedRequests += (r.Len() + 31) / 32
		}
		l.ETASeconds = float64(l.PlannedRequests) / 5
		logs = append(logs, l)
	}
	begin := time.Now()
	rep := coverage.Build("certlake coverage of a synthetic lake: 20 logs x 2 billion indices", logs, coverage.Options{})
	built := time.Since(begin)
	out := filepath.Join(t.TempDir(), "coverage.html")
	if err := writeFileAtomic(out, func(f *os.File) error { return coverage.WriteHTML(f, rep) }); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built in %v, page of %d KiB", built.Round(time.Millisecond), st.Size()>>10)
	if st.Size() > 2<<20 {
		t.Errorf("page of 20 logs is %d bytes, want under 2 MiB", st.Size())
	}
	for _, l := range rep.Logs {
		if l.Main+l.Staged+l.Missing != ceiling || len(l.BinMain) != 600 {
			t.Errorf("log %s: %d + %d + %d indices in %d bins, want %d in 600", l.URL, l.Main, l.Staged, l.Missing, len(l.BinMain), uint64(ceiling))
		}
	}

	bctx := browser(t)
	begin = time.Now()
	if err := chromedp.Do(bctx, chromedp.Navigate("file://"+out), chromedp.WaitVisible(chromedp.CSS(`body[data-drawn]`))); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(bctx, chromedp.Evaluate[pageNumbers](readPage))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rendered in %v", time.Since(begin).Round(time.Millisecond))
	if got.Drawn != 20 || got.Total["missing"] != float64(rep.Missing) || got.Total["planned_entries"] != float64(rep.PlannedEntries) {
		t.Errorf("page: %d bars, %g missing, %g planned; want 20, %d, %d", got.Drawn, got.Total["missing"], got.Total["planned_entries"], rep.Missing, rep.PlannedEntries)
	}
	png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("CERTLAKE_UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile(coverageScreenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("updated %s", coverageScreenshot)
	}
}
