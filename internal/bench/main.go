// Command bench measures certlake against the algorithms of the system it
// replaces, side by side in one run on the same generated data, and prints
// one table of figures (see issue 7 and docs/benchmarks.md):
//
//	go run ./internal/bench -size small            # seconds; what CI runs
//	go run ./internal/bench -size full -out docs/benchmarks.md
//
// Data is generated deterministically from -seed (DuckDB's hash of the seed
// and the key for the lake; the seeded certificate generator of ctlogtest for
// the logs). Every figure that has a reference is measured in the same run as
// the reference, so their ratio holds even when absolute times drift.
//
// The command exits non-zero when an assertion fails (the two gap algorithms
// or the two merges disagree, a backfill misses or duplicates a key). A
// missed performance target is reported in the table, not as a failure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/ctlogtest"
	"github.com/certlake/certlake/internal/lake"
)

// options are the command-line flags.
type options struct {
	size    string
	seed    uint64
	out     string
	dir     string
	only    string
	keep    bool
	verbose bool
	// noRefMerge skips the reference merge; its figures read "not run".
	noRefMerge bool
	// cpuProfile, if set, receives a CPU profile of the parent process
	// (where time goes in fetch+parse+stage and the direct backfill).
	cpuProfile string
	// memProfile, if set, receives the parent's allocation profile at exit.
	memProfile string
	child      string // hidden: run one measured step in this process
	args       childArgs
}

// childArgs carry the parameters of a child step.
type childArgs struct {
	mainPath, stagingPath string
	kind                  string
	n                     int
}

func main() {
	var o options
	flag.StringVar(&o.size, "size", "small", "data size: small (seconds, CI) or full (the issue's sizes, many minutes)")
	flag.Uint64Var(&o.seed, "seed", 20250101, "seed of every generated data set")
	flag.StringVar(&o.out, "out", "", "also write the table as markdown to this file (e.g. docs/benchmarks.md)")
	flag.StringVar(&o.dir, "dir", "", "where generated data is kept between runs (default: a directory under the system temp dir)")
	flag.StringVar(&o.only, "only", "", "comma-separated items to run: gaps, merge, parse, temporal, scaling, billion, objstore, objstorekeys (default all)")
	flag.BoolVar(&o.keep, "keep", true, "keep the generated lakes in -dir for the next run")
	flag.BoolVar(&o.verbose, "v", false, "log progress to stderr")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the parent process (or of a -child run by hand) to this file")
	flag.StringVar(&o.memProfile, "memprofile", "", "write an allocation profile of the parent process to this file")
	flag.BoolVar(&o.noRefMerge, "no-reference-merge", false, "skip the reference merge (hours at -size full on a loaded machine)")
	flag.StringVar(&o.child, "child", "", "internal: run one step as a child process")
	flag.StringVar(&o.args.mainPath, "child-main", "", "internal")
	flag.StringVar(&o.args.stagingPath, "child-staging", "", "internal")
	flag.StringVar(&o.args.kind, "child-kind", "", "internal")
	flag.IntVar(&o.args.n, "child-n", 0, "internal")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctlogtest.QuietKlog()

	if o.child != "" {
		if err := runChild(ctx, o); err != nil {
			fmt.Fprintf(os.Stderr, "bench child %s: %v\n", o.child, err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// errAssertion marks a failed check of correctness: the run's figures are
// printed, then the command fails.
var errAssertion = errors.New("assertion failed")

func run(ctx context.Context, o options) error {
	sz, err := sizeByName(o.size)
	if err != nil {
		return err
	}
	if o.dir == "" {
		o.dir = filepath.Join(os.TempDir(), "certlake-bench")
	}
	logw := io.Discard
	if o.verbose {
		logw = os.Stderr
	}
	b := &bench{
		opts:  o,
		size:  sz,
		log:   slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelInfo})),
		dir:   filepath.Join(o.dir, fmt.Sprintf("%s-seed%d", sz.name, o.seed)),
		start: time.Now(),
		bufs:  lake.NewBufferPool(),
	}
	if o.cpuProfile != "" {
		stop, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if o.memProfile != "" {
		defer func() {
			if f, err := os.Create(o.memProfile); err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	// Backfills run in a worker, which sets the collector's target to
	// worker.gc_percent; measure them the same way.
	gc := "GOGC=" + os.Getenv("GOGC") + " from the environment"
	if os.Getenv("GOGC") == "" {
		gc = "Go's default GC target (the worker's default)"
		if pct := config.Defaults().Worker.GCPercent; pct > 0 {
			debug.SetGCPercent(pct)
			gc = fmt.Sprintf("GC target %d%% (the worker's default worker.gc_percent)", pct)
		}
	}
	b.machine = describeMachine()
	b.machine.gc = gc
	fmt.Println(b.machine.text())
	fmt.Printf("size %s, seed %d, data in %s\n\n", sz.name, o.seed, b.dir)

	fns := map[string]func(context.Context) error{
		"gaps": b.gapsItem, "merge": b.mergeItem, "parse": b.parseItem,
		"temporal": b.temporalItem, "scaling": b.scalingItem, "billion": b.billionItem,
		"objstore": b.objstoreItem, "objstorekeys": b.objstoreKeysItem,
	}
	want := map[string]bool{}
	for _, s := range strings.Split(o.only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			if fns[s] == nil {
				return fmt.Errorf("-only: unknown item %q (items: %s)", s, strings.Join(itemNames, ", "))
			}
			want[s] = true
		}
	}
	var prev string
	if o.out != "" {
		if data, err := os.ReadFile(o.out); err == nil {
			prev = string(data)
		}
	}
	var failures []error
	for _, name := range itemNames {
		it := struct {
			name string
			fn   func(context.Context) error
		}{name, fns[name]}
		if len(want) > 0 && !want[it.name] {
			continue
		}
		t0 := time.Now()
		fmt.Fprintf(os.Stderr, "bench: %s ...\n", it.name)
		b.table.start(it.name)
		if err := it.fn(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", it.name, err)
			failures = append(failures, fmt.Errorf("%s: %w", it.name, err))
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: %s done in %v\n", it.name, time.Since(t0).Round(time.Millisecond))
		if o.out != "" { // after each item, so a stopped run keeps its figures
			if err := os.WriteFile(o.out, []byte(b.markdown(prev)), 0o644); err != nil {
				return fmt.Errorf("write %s: %w", o.out, err)
			}
		}
	}
	fmt.Println(b.table.text())
	for _, n := range b.notes {
		fmt.Println("- " + n.text)
	}
	fmt.Printf("\ntotal %v\n", time.Since(b.start).Round(time.Second))
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(b.markdown(prev)), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", o.out, err)
		}
	}
	if !o.keep {
		os.RemoveAll(b.dir)
	}
	if len(failures) > 0 {
		return errors.Join(failures...)
	}
	return nil
}

// bench is one run: its settings and the figures gathered so far.
type bench struct {
	opts    options
	size    size
	log     *slog.Logger
	dir     string
	start   time.Time
	machine machine
	table   table
	// bufs is the direct backfills' buffer pool, one per process as a
	// worker has one for all its tables (activities.Settings).
	bufs  *lake.BufferPool
	notes []note

	gaps1x  *gapTimes // item 1's figures, the baseline of item 5
	merge1x *mergeRun // item 2's certlake merge (key index current), likewise
	index1x *mergeRun // item 2's key index build, likewise
}

// note is a line printed under the table, and under its item's section.
type note struct{ item, text string }

// note adds a line printed under the table.
func (b *bench) note(format string, args ...any) {
	b.notes = append(b.notes, note{b.table.item, fmt.Sprintf(format, args...)})
}

// startCPUProfile writes a CPU profile to path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
