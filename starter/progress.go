package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"go.temporal.io/sdk/client"

	"github.com/certlake/certlake/workflows"
)

// progressKind says which progress query answer a run gives.
type progressKind int

const (
	backfillProgress progressKind = iota + 1
	mergeProgress
)

// progressOptions says how --wait shows a run's progress on stderr (stdout
// keeps only the final JSON): a live table on a terminal, plain lines
// otherwise, or nothing.
type progressOptions struct {
	kind     progressKind
	live     bool          // stderr is a terminal: redraw a table in place
	interval time.Duration // between queries; 0: 2 s live, 30 s plain
	off      bool          // --no-progress
}

// snapshot is one answer of the progress query, of either kind.
type snapshot struct {
	at       time.Time
	backfill *workflows.BackfillProgress
	merge    *workflows.MergeProgress
}

// progressView draws snapshots. show is called from one goroutine; close
// draws the last snapshot for good and releases the terminal.
type progressView interface {
	show(s snapshot)
	close()
}

// watcher queries a run's progress every interval and hands the answers
// to a view, until stopped.
type watcher struct {
	cancel context.CancelFunc
	done   chan struct{}
	final  chan struct{} // closed by finish: query once more before closing
	once   sync.Once
}

// watchProgress starts querying run; stop ends it and waits for the last
// drawing. A failed query (no worker polling yet, a busy one) is skipped:
// progress is best effort, the run's outcome is not.
func watchProgress(ctx context.Context, c *cli, tc client.Client, run client.WorkflowRun, opts progressOptions) *watcher {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	w := &watcher{cancel: cancel, done: make(chan struct{}), final: make(chan struct{})}
	if opts.off || opts.kind == 0 {
		close(w.done)
		return w
	}
	interval := opts.interval
	if interval <= 0 {
		interval = 30 * time.Second
		if opts.live {
			interval = 2 * time.Second
		}
	}
	var view progressView
	if opts.live {
		view = newLiveView(c.stderr, run.GetID())
	} else {
		view = &plainView{w: c.stderr, id: run.GetID()}
	}
	go func() {
		defer close(w.done)
		defer view.close()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if s, ok := queryProgress(ctx, tc, run, opts.kind); ok {
				view.show(s)
			}
			select {
			case <-ctx.Done():
				return
			case <-w.final:
				// The run has ended: its last state (the query of a
				// closed run is answered from its history).
				fctx, cancel := context.WithTimeout(parent, 5*time.Second)
				defer cancel()
				if s, ok := queryProgress(fctx, tc, run, opts.kind); ok {
					view.show(s)
				}
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// stop ends the display where it is (an interrupt: a prompt follows).
func (w *watcher) stop() {
	w.cancel()
	<-w.done
}

// finish shows the run's final state, then ends the display.
func (w *watcher) finish() {
	w.once.Do(func() { close(w.final) })
	<-w.done
	w.cancel()
}

// queryProgress asks the run for its progress.
func queryProgress(ctx context.Context, tc client.Client, run client.WorkflowRun, kind progressKind) (snapshot, bool) {
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := tc.QueryWorkflow(qctx, run.GetID(), run.GetRunID(), workflows.ProgressQuery)
	if err != nil {
		return snapshot{}, false
	}
	s := snapshot{at: time.Now()}
	switch kind {
	case backfillProgress:
		s.backfill = &workflows.BackfillProgress{}
		err = v.Get(s.backfill)
	case mergeProgress:
		s.merge = &workflows.MergeProgress{}
		err = v.Get(s.merge)
	}
	return s, err == nil
}

// logRow is one log's line of the table, computed as the Web UI's
// progress table does (workflows.renderBackfillDetails).
type logRow struct {
	name, state                       string
	planned, fetched, failed          uint64
	rows                              int64
	rate                              float64 // entries/s since the log started
	eta                               time.Duration
	hasRate, hasETA, done, failedLike bool
}

func logRows(p *workflows.BackfillProgress) []logRow {
	logs := append([]workflows.LogProgress(nil), p.Logs...)
	sort.SliceStable(logs, func(i, j int) bool { return displayName(logs[i]) < displayName(logs[j]) })
	out := make([]logRow, 0, len(logs))
	for _, l := range logs {
		r := logRow{name: displayName(l), state: l.State, planned: l.PlannedEntries, fetched: l.FetchedEntries,
			failed: l.FailedEntries, rows: l.Rows}
		if el := l.UpdatedAt.Sub(l.StartedAt).Seconds(); el > 0 && l.FetchedEntries > 0 {
			r.rate, r.hasRate = float64(l.FetchedEntries)/el, true
			if l.State == "running" && l.PlannedEntries > l.FetchedEntries {
				r.eta, r.hasETA = time.Duration(float64(l.PlannedEntries-l.FetchedEntries)/r.rate*float64(time.Second)), true
			}
		}
		r.done = l.State == "done"
		r.failedLike = l.State == "failed" || l.State == "canceled"
		out = append(out, r)
	}
	return out
}

func displayName(l workflows.LogProgress) string {
	if l.Name != "" {
		return l.Name
	}
	return l.SourceURL
}

func (r logRow) rateText() string {
	if !r.hasRate {
		return "-"
	}
	return fmt.Sprintf("%.0f/s", r.rate)
}

func (r logRow) etaText() string {
	if !r.hasETA {
		return "-"
	}
	return humanDuration(r.eta)
}

func percent(n, of uint64) float64 {
	if of == 0 {
		return 100
	}
	return 100 * float64(n) / float64(of)
}

// plainView prints a few lines per snapshot, for logs and pipes: when
// something changed, and every tenth snapshot anyway, to show it is alive.
type plainView struct {
	w         io.Writer
	id        string
	last      string // the last snapshot printed, without timestamps
	unchanged int
}

func (v *plainView) show(s snapshot) {
	var b strings.Builder
	v.format(&b, s)
	if text := b.String(); text != v.last || v.unchanged >= 9 {
		v.last, v.unchanged = text, 0
		ts := s.at.UTC().Format("15:04:05")
		for _, line := range strings.SplitAfter(text, "\n") {
			if line != "" {
				fmt.Fprint(v.w, ts+" "+line)
			}
		}
		return
	}
	v.unchanged++
}

func (v *plainView) format(w io.Writer, s snapshot) {
	switch {
	case s.backfill != nil:
		rows := logRows(s.backfill)
		var planned, fetched, failed uint64
		var staged int64
		for _, r := range rows {
			planned, fetched, failed, staged = planned+r.planned, fetched+r.fetched, failed+r.failed, staged+r.rows
		}
		fmt.Fprintf(w, "backfill %s: %s, %d logs, fetched %d/%d (%.1f%%), rows %d, failed %d\n",
			v.id, s.backfill.Phase, len(rows), fetched, planned, percent(fetched, planned), staged, failed)
		for _, r := range rows {
			fmt.Fprintf(w, "  %s %s: fetched %d/%d (%.1f%%), rows %d, failed %d, rate %s, ETA %s\n",
				r.name, r.state, r.fetched, r.planned, percent(r.fetched, r.planned), r.rows, r.failed, r.rateText(), r.etaText())
		}
	case s.merge != nil:
		m := s.merge
		fmt.Fprintf(w, "merge %s: %s, batches %d/%d, staging rows %d, inserted %d, skipped %d\n",
			v.id, m.Phase, m.BatchesDone, m.Batches, m.TotalStagingRows, m.TotalInserted, m.TotalSkipped)
	}
}

func (v *plainView) close() {}

// liveView redraws one bar per log (a merge: one bar of batches) in place
// with mpb, from the latest snapshot.
type liveView struct {
	p      *mpb.Progress
	header *mpb.Bar

	mu     sync.Mutex // guards the fields below, read by mpb's decorators
	title  string
	rows   map[string]logRow
	merge  *workflows.MergeProgress
	bars   map[string]*mpb.Bar
	order  int
	closed bool
}

// newLiveView starts drawing on w. It has its own context: stopping the
// watcher must not stop mpb before close draws the last snapshot.
func newLiveView(w io.Writer, id string, opts ...mpb.ContainerOption) *liveView {
	v := &liveView{rows: map[string]logRow{}, bars: map[string]*mpb.Bar{}, title: "waiting for " + id}
	v.p = mpb.New(append([]mpb.ContainerOption{mpb.WithOutput(w), mpb.WithRefreshRate(250 * time.Millisecond)}, opts...)...)
	v.header = v.p.New(0, mpb.NopStyle(), mpb.BarPriority(-1), mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.title
	})))
	return v
}

func (v *liveView) show(s snapshot) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	switch {
	case s.backfill != nil:
		v.title = "backfill: " + s.backfill.Phase
		for _, r := range logRows(s.backfill) {
			v.rows[r.name] = r
			b := v.bars[r.name]
			if b == nil {
				b = v.logBar(r.name)
				v.bars[r.name] = b
			}
			b.SetTotal(int64(max(r.planned, 1)), false)
			b.SetCurrent(int64(min(r.fetched, max(r.planned, 1))))
		}
	case s.merge != nil:
		v.title = "merge: " + s.merge.Phase
		v.merge = s.merge
		b := v.bars[""]
		if b == nil {
			b = v.mergeBar()
			v.bars[""] = b
		}
		b.SetTotal(int64(max(s.merge.Batches, 1)), false)
		b.SetCurrent(int64(s.merge.BatchesDone))
	}
}

// logBar adds the bar of one log: name, state, bar, then the counters.
func (v *liveView) logBar(name string) *mpb.Bar {
	v.order++
	row := func(f func(r logRow) string) decor.DecorFunc {
		return func(decor.Statistics) string {
			v.mu.Lock()
			defer v.mu.Unlock()
			return f(v.rows[name])
		}
	}
	return v.p.New(1, mpb.BarStyle(), mpb.BarPriority(v.order),
		mpb.PrependDecorators(
			decor.Name(name, decor.WC{C: decor.DSyncWidthR | decor.DextraSpace}),
			decor.Any(row(func(r logRow) string { return r.state }), decor.WC{C: decor.DSyncWidthR | decor.DextraSpace}),
		),
		mpb.AppendDecorators(
			decor.Any(row(func(r logRow) string {
				return fmt.Sprintf("%d/%d %5.1f%%", r.fetched, r.planned, percent(r.fetched, r.planned))
			}), decor.WC{C: decor.DSyncWidth | decor.DextraSpace}),
			decor.Any(row(func(r logRow) string { return fmt.Sprintf("rows %d", r.rows) }), decor.WC{C: decor.DSyncWidth | decor.DextraSpace}),
			decor.Any(row(func(r logRow) string { return fmt.Sprintf("failed %d", r.failed) }), decor.WC{C: decor.DSyncWidth | decor.DextraSpace}),
			decor.Any(row(func(r logRow) string { return r.rateText() }), decor.WC{C: decor.DSyncWidth | decor.DextraSpace}),
			decor.Any(row(func(r logRow) string { return "ETA " + r.etaText() }), decor.WC{C: decor.DSyncWidth | decor.DextraSpace}),
		))
}

// mergeBar adds the bar of a merge: batches done, rows inserted and skipped.
func (v *liveView) mergeBar() *mpb.Bar {
	return v.p.New(1, mpb.BarStyle(), mpb.BarPriority(1),
		mpb.PrependDecorators(decor.Name("batches", decor.WC{C: decor.DextraSpace})),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			v.mu.Lock()
			defer v.mu.Unlock()
			m := v.merge
			return fmt.Sprintf("%d/%d  staging rows %d  inserted %d  skipped %d", m.BatchesDone, m.Batches, m.TotalStagingRows, m.TotalInserted, m.TotalSkipped)
		}, decor.WC{C: decor.DextraSpace})))
}

// close draws the last snapshot and gives the terminal back: bars of logs
// done are completed, the others stay where they stopped.
func (v *liveView) close() {
	v.mu.Lock()
	v.closed = true
	bars := make(map[string]*mpb.Bar, len(v.bars))
	for k, b := range v.bars {
		bars[k] = b
	}
	rows := v.rows
	v.mu.Unlock()
	for name, b := range bars {
		if r, ok := rows[name]; (ok && r.done) || (name == "" && v.merge != nil && v.merge.Phase == "done") {
			b.SetTotal(-1, true)
		} else {
			b.Abort(false)
		}
	}
	v.header.Abort(false)
	v.p.Wait()
}
