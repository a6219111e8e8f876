package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/certificate-transparency-go/scanner"
	tesseractdata "github.com/transparency-dev/tesseract/testdata"
	"golang.org/x/sync/errgroup"

	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/ctlog"
	"github.com/certlake/certlake/internal/ctlogtest"
	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/record"
)

// realEntries returns the real captured entries the module ships:
// scanner.FourEntries (with chains), tesseract's ExampleFullTile (256
// precerts) and the navigli2025h2 tiles under internal/record/testdata
// (1,024 entries in full tiles; found from the module root).
func realEntries() ([]record.Entry, error) {
	var out []record.Entry
	var resp struct {
		Entries []struct {
			LeafInput []byte `json:"leaf_input"`
			ExtraData []byte `json:"extra_data"`
		} `json:"entries"`
	}
	if err := json.Unmarshal([]byte(scanner.FourEntries), &resp); err != nil {
		return nil, fmt.Errorf("scanner.FourEntries: %w", err)
	}
	for i, e := range resp.Entries {
		typ, cert, chain, err := record.DecodeRFC6962(e.LeafInput, e.ExtraData)
		if err != nil {
			return nil, fmt.Errorf("scanner.FourEntries %d: %w", i, err)
		}
		out = append(out, record.Entry{Index: uint64(i), Type: typ, Cert: cert, Chain: chain})
	}
	tile := func(name string, body []byte) error {
		leaves, err := record.DecodeTile(body)
		if err != nil {
			return fmt.Errorf("tile %s: %w", name, err)
		}
		for i, l := range leaves {
			out = append(out, record.Entry{Index: uint64(i), Type: l.Type, Cert: l.Cert})
		}
		return nil
	}
	if err := tile("tesseract ExampleFullTile", tesseractdata.ExampleFullTile); err != nil {
		return nil, err
	}
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	for _, n := range []string{"000", "001", "002", "003"} {
		p := filepath.Join(root, "internal", "record", "testdata", "navigli2025h2", n+".gz")
		body, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if err := tile(p, body); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// moduleRoot finds the directory holding go.mod, from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory; run from the certlake module")
		}
		dir = parent
	}
}

// parseRate builds rows from entries on one goroutine for at least d and
// returns rows per CPU-second of the whole process (GC included).
func parseRate(entries []record.Entry, d time.Duration) (float64, int) {
	var bld record.Builder
	src := record.Source{URL: "https://ct.bench.example/parse/", Name: "Parse bench"}
	seen := time.Now()
	n := 0
	t0, c0 := time.Now(), cpuSelf()
	for time.Since(t0) < d {
		for _, e := range entries {
			e.Seen = seen
			if _, err := bld.Build(e, src); err == nil {
				n++
			}
		}
	}
	return float64(n) / (cpuSelf() - c0).Seconds(), n
}

// servedLog is a CT log running in a child process.
type servedLog struct {
	log   ctlog.Log
	n     uint64
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// startLogChild starts an in-process CT log of kind ("static" or "rfc6962")
// holding n generated entries, in a child process so its CPU is not
// charged to the certlake process being measured.
func (b *bench) startLogChild(ctx context.Context, kind, name string, n int) (*servedLog, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "-child", "serve-log", "-child-kind", kind, "-child-n", fmt.Sprint(n),
		"-child-main", name, "-seed", fmt.Sprint(b.opts.seed))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "READY ")
	f := strings.Fields(rest)
	var key []byte
	if ok && len(f) == 3 {
		key, err = base64.StdEncoding.DecodeString(f[1])
	}
	if err != nil || !ok || len(f) != 3 {
		stdin.Close()
		cmd.Wait()
		return nil, fmt.Errorf("%s log child: no READY line (%q, %v)", kind, line, err)
	}
	return &servedLog{
		log: ctlog.Log{URL: f[0], Name: "Bench " + kind + " " + name, Static: kind == "static",
			Key: key, Origin: strings.TrimPrefix(f[2], "-")},
		n:     uint64(n),
		cmd:   cmd,
		stdin: stdin,
	}, nil
}

// cpu returns the CPU time the log's process used so far (user + system,
// from /proc; 0 where there is no /proc).
func (s *servedLog) cpu() time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is the first, utime and stime the 12th and 13th.
	_, rest, ok := strings.Cut(string(data), ") ")
	if !ok {
		return 0
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	// /proc counts in USER_HZ ticks, 100 per second on Linux.
	return time.Duration(utime+stime) * (time.Second / 100)
}

func (s *servedLog) stop() {
	s.stdin.Close()
	s.cmd.Wait()
}

// childServeLog is the child side of startLogChild: it fills a log and
// serves it until its stdin closes.
func childServeLog(ctx context.Context, a childArgs, seed uint64) error {
	gen, err := ctlogtest.NewGenerator(ctlogtest.GeneratorOptions{Seed: fmt.Sprintf("bench-%d-%s", seed, a.mainPath)})
	if err != nil {
		return err
	}
	opts := ctlogtest.Options{Name: a.mainPath, Roots: []*x509.Certificate{gen.Root()}}
	var l *ctlogtest.Log
	var dir string
	switch a.kind {
	case "static":
		base := os.TempDir()
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			base = "/dev/shm" // Tessera fsyncs every file; tmpfs keeps the fill fast
		}
		if dir, err = os.MkdirTemp(base, "certlake-bench-log-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		l, err = ctlogtest.StartStatic(ctx, dir, opts)
	case "rfc6962":
		l, err = ctlogtest.StartRFC6962(ctx, opts)
	default:
		return fmt.Errorf("unknown log kind %q", a.kind)
	}
	if err != nil {
		return err
	}
	defer l.Close()
	if err := l.AddBulk(ctx, a.n, gen, nil); err != nil {
		return err
	}
	// The key and origin let the parent verify what the log serves.
	fmt.Printf("READY %s %s %s\n", l.URL, l.KeyBase64(), cmp.Or(l.Origin, "-"))
	io.Copy(io.Discard, os.Stdin) // until the parent closes it
	return nil
}

// target is one range of one log to backfill.
type target struct {
	log        ctlog.Log
	start, end uint64 // inclusive
}

// backfillSettings are shared by the direct and the Temporal backfill.
type backfillSettings struct {
	chunk     uint64 // entries per range (FetchRange)
	window    int    // ranges in flight per log
	batchRows int    // rows per staging commit
	// client, if set, sends the direct backfill's requests (to count
	// them); nil: the reader's own.
	client *http.Client
	// table opens the staging table (storage and scratch of a remote
	// one); Role and Buffers are set by directBackfill.
	table lake.Options
}

// defaultBackfill uses the worker's default chunk and window.
var defaultBackfill = backfillSettings{
	chunk: config.Defaults().Backfill.ChunkSize, window: config.Defaults().Backfill.Window, batchRows: 50_000,
}

// fetchConfig is the reader configuration of both backfills: no rate limit.
func fetchConfig() ctlog.Config {
	return ctlog.Config{DefaultRateLimit: 0, DefaultConcurrency: 4, BackoffInitial: 50 * time.Millisecond, BackoffMax: time.Second}
}

// countingTransport counts the requests it sends.
type countingTransport struct {
	base http.RoundTripper
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

// newCountingClient returns a client like the reader's own (idle
// connections for every request in flight) that counts its requests.
func newCountingClient() (*http.Client, *countingTransport) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	ct := &countingTransport{base: t}
	return &http.Client{Transport: ct}, ct
}

// directBackfill does what the backfill workflow's FetchRange activities do,
// without Temporal: per log, chunks of s.chunk entries with s.window in
// flight, each fetched (ctlog), parsed (record.Builder) and staged
// (lake.Writer) with a Delta txn commit every s.batchRows rows.
// Tables share bufs, as every table of a worker shares its one pool.
func directBackfill(ctx context.Context, bufs *lake.BufferPool, stagingPath string, targets []target, s backfillSettings) (int64, error) {
	// As FetchRange creates staging tables with the default configuration:
	// as_der follows main's type, base64 text (lake.as_der_binary false).
	opts := s.table
	opts.Role, opts.Buffers = lake.RoleStaging, bufs
	t, err := lake.OpenOrCreate(ctx, stagingPath, opts)
	if err != nil {
		return 0, err
	}
	var bld record.Builder
	var mu sync.Mutex
	var rows int64
	g, ctx := errgroup.WithContext(ctx)
	for _, tg := range targets {
		cfg := fetchConfig()
		cfg.HTTPClient = s.client
		reader := ctlog.New(tg.log, cfg)
		chunks := make(chan [2]uint64)
		g.Go(func() error {
			defer close(chunks)
			for s0 := tg.start; s0 <= tg.end; s0 += s.chunk {
				select {
				case chunks <- [2]uint64{s0, min(s0+s.chunk-1, tg.end)}:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
		for range s.window {
			g.Go(func() error {
				for c := range chunks {
					n, err := stageRange(ctx, t, reader, &bld, tg.log, c[0], c[1], s.batchRows)
					if err != nil {
						return err
					}
					mu.Lock()
					rows += n
					mu.Unlock()
				}
				return nil
			})
		}
	}
	err = g.Wait()
	return rows, err
}

// stageRange fetches, parses and stages [start, end] of one log.
func stageRange(ctx context.Context, t *lake.Table, reader ctlog.Reader, bld *record.Builder, l ctlog.Log,
	start, end uint64, batchRows int) (int64, error) {
	src := l.Source()
	appID := fmt.Sprintf("certlake-bench-direct:%s:%d-%d", src.URL, start, end)
	var rows int64
	w := t.NewWriter(lake.WriterOptions{})
	defer func() { w.Abort() }()
	covered, pending := start, 0
	flush := func() error {
		if pending == 0 && covered == start {
			return nil
		}
		// As FetchRange: read the table's txn watermark, then commit.
		if _, err := t.Snapshot(ctx); err != nil {
			return err
		}
		cr, err := w.Commit(ctx, lake.CommitOptions{Operation: "WRITE", Txn: &delta.Txn{AppID: appID, Version: int64(covered)}})
		if err != nil {
			return err
		}
		rows += cr.Rows
		pending = 0
		w = t.NewWriter(lake.WriterOptions{})
		return nil
	}
	err := reader.Entries(ctx, start, end, func(bt ctlog.Batch) error {
		if len(bt.Bad) > 0 {
			return fmt.Errorf("%w: %s: %d entries could not be decoded, first %d: %v",
				errAssertion, src.URL, len(bt.Bad), bt.Bad[0].Index, bt.Bad[0].Err)
		}
		for _, e := range bt.Entries {
			r, err := bld.Build(e, src)
			if err != nil {
				return fmt.Errorf("%w: %s entry %d: %v", errAssertion, src.URL, e.Index, err)
			}
			if err := w.Write(r); err != nil {
				return err
			}
			pending++
		}
		covered = bt.End + 1
		if pending >= batchRows {
			return flush()
		}
		return nil
	})
	if err != nil {
		return rows, err
	}
	return rows, flush()
}

// checkStaged asserts that a staging table holds exactly want keys, once each.
func checkStaged(ctx context.Context, path string, want uint64) error {
	return checkStagedAt(ctx, path, lake.Options{}, want)
}

// checkStagedAt is checkStaged of a table opened with opts (a remote one).
func checkStagedAt(ctx context.Context, path string, opts lake.Options, want uint64) error {
	d, err := digestTableAt(ctx, path, opts)
	if err != nil {
		return err
	}
	if d.Rows != int64(want) || d.Keys != int64(want) {
		return fmt.Errorf("%w: %s holds %d rows, %d distinct keys; want %d of each", errAssertion, path, d.Rows, d.Keys, want)
	}
	return nil
}

// parseItem is item 3: the parse ceiling and fetch+parse+stage from both
// kinds of log.
func (b *bench) parseItem(ctx context.Context) error {
	entries, err := realEntries()
	if err != nil {
		return err
	}
	ceiling, _ := parseRate(entries, b.size.parseTime)
	b.table.add(row{
		what:     fmt.Sprintf("parse ceiling: rows per CPU-second, %d real entries", len(entries)),
		certlake: fmt.Sprintf("%.0f rows/s", ceiling), target: ">= 25000/core", result: passIf(ceiling >= 25000),
	})
	for _, kind := range []string{"static", "rfc6962"} {
		sl, err := b.startLogChild(ctx, kind, kind, b.size.parseN)
		if err != nil {
			return err
		}
		// The same parse, on the entries this log serves (generated ECDSA
		// certificates with their chains), tells parse apart from the rest.
		own, err := fetchSample(ctx, sl.log, min(sl.n, 4096))
		if err != nil {
			sl.stop()
			return err
		}
		ownRate, _ := parseRate(own, b.size.parseTime)
		// One run of each kind, not counted, warms the log's files and
		// caches first (the first read of a log is slower).
		for _, verify := range []bool{false, true} {
			if _, err := b.fetchOnce(ctx, sl, kind, verify); err != nil {
				sl.stop()
				return err
			}
		}
		// End to end: verified runs (the default) on every core.
		runs := make([]fetchRun, 0, b.size.fetchRuns)
		for range max(b.size.fetchRuns, 1) {
			r, err := b.fetchOnce(ctx, sl, kind, true)
			if err != nil {
				sl.stop()
				return err
			}
			runs = append(runs, r)
		}
		// Verification's cost: verified runs alternate with unverified
		// ones, so that each pair sees about the same machine load, and the
		// ratio of their CPU per entry is the cost of verification. The
		// pairs take turns at going first (verified, unverified, then
		// unverified, verified). certlake runs on one vCPU and the log on
		// the other (pinApart).
		pinned, unpin := b.pinApart(sl)
		verified := make([]fetchRun, 0, b.size.verifyPairs)
		plain := make([]fetchRun, 0, b.size.verifyPairs)
		// The first pair after pinning is not counted (its threads have
		// just moved).
		for i := range max(b.size.verifyPairs, 2) + 1 {
			for _, verify := range [][]bool{{false, true}, {true, false}}[i%2] {
				r, err := b.fetchOnce(ctx, sl, kind, verify)
				if err != nil {
					unpin()
					sl.stop()
					return err
				}
				switch {
				case i == 0:
				case verify:
					verified = append(verified, r)
				default:
					plain = append(plain, r)
				}
			}
		}
		unpin()
		sl.stop()
		for _, r := range verificationRows(kind, verified, plain, pinned) {
			b.table.add(r)
		}
		// The median run by wall time: the machine is shared, and a single
		// run can land on a burst of someone else's load.
		slices.SortFunc(runs, func(a, b fetchRun) int { return cmp.Compare(a.wall, b.wall) })
		rows := fetchRows(kind, runs[len(runs)/2], ceiling, ownRate, b.machine.cores)
		if len(runs) > 1 {
			rows[0].what += fmt.Sprintf(" (median of %d runs: %.0f%%-%.0f%%)", len(runs),
				100*runs[len(runs)-1].rate()/ceiling, 100*runs[0].rate()/ceiling)
		}
		for _, r := range rows {
			b.table.add(r)
		}
	}
	return nil
}

// pinApart pins this process to vCPU 0 and the log's to vCPU 1, and
// returns whether it did and the function that undoes it. On one CPU, or
// where pinning fails, the runs stay unpinned (the figure then says so).
func (b *bench) pinApart(sl *servedLog) (bool, func()) {
	unpin := func() {
		for _, pid := range []int{0, sl.cmd.Process.Pid} {
			if err := pinProcess(pid, -1); err != nil && pid == 0 {
				b.log.Warn("unpin", "err", err)
			}
		}
	}
	if runtime.NumCPU() < 2 {
		return false, func() {}
	}
	for cpu, pid := range []int{0, sl.cmd.Process.Pid} { // this process on vCPU 0, the log on 1
		if err := pinProcess(pid, cpu); err != nil {
			b.log.Warn("verification pairs run unpinned", "err", err)
			unpin()
			return false, func() {}
		}
	}
	return true, unpin
}

// fetchRun is one backfill of a whole log into a fresh staging table.
type fetchRun struct {
	n        int64
	wall     time.Duration
	cpu      time.Duration // of the certlake process
	logCPU   time.Duration // of the log's process (0 if unknown)
	requests int64         // HTTP requests to the log
}

// verificationRows compare verified and unverified runs of one log: the
// median CPU per entry of each (certlake's process: fetch, verify, parse,
// stage), the cost of verification as the median of the pairs' ratios (a
// pair ran back to back, under about the same load of a shared machine),
// and the requests per million entries.
func verificationRows(kind string, verified, plain []fetchRun, pinned bool) []row {
	med := func(v []float64) float64 {
		slices.Sort(v)
		if len(v)%2 == 0 {
			return (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
		return v[len(v)/2]
	}
	each := func(rs []fetchRun, f func(fetchRun) float64) []float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		return v
	}
	cpuPerEntry := func(r fetchRun) float64 { return float64(r.cpu.Nanoseconds()) / 1e3 / float64(r.n) }
	perMillion := func(r fetchRun) float64 { return float64(r.requests) * 1e6 / float64(r.n) }
	v, p := med(each(verified, cpuPerEntry)), med(each(plain, cpuPerEntry))
	rv, rp := med(each(verified, perMillion)), med(each(plain, perMillion))
	// Pair i ran verified first if i is even. The geometric mean of a
	// verified-first and an unverified-first pair cancels any effect of
	// the position in a pair: before runs began with settle, the second
	// run of a pair paid for the first one's garbage and cost 10-50% more
	// (pinned, 14 of 15 static pairs in one run), and single pairs' ratios
	// swung both ways.
	n := min(len(verified), len(plain)) / 2 * 2
	couples := make([]float64, 0, n/2)
	for i := 0; i < n; i += 2 {
		r := cpuPerEntry(verified[i]) / cpuPerEntry(plain[i]) * cpuPerEntry(verified[i+1]) / cpuPerEntry(plain[i+1])
		couples = append(couples, 100*(math.Sqrt(r)-1))
	}
	extra := med(slices.Clone(couples))
	where := "certlake on one vCPU, the log on the other"
	if !pinned {
		where = "unpinned"
	}
	return []row{{
		what: fmt.Sprintf("verification cost, %s log: certlake CPU per entry (fetch+verify+parse+stage), verified vs not (median over %d couples of alternating pairs, %s; couples %+.0f%% to %+.0f%%)",
			kind, len(couples), where, slices.Min(couples), slices.Max(couples)),
		certlake: fmt.Sprintf("%.2f µs", v), reference: fmt.Sprintf("%.2f µs unverified", p),
		ratio: fmt.Sprintf("%+.1f%%", extra), target: "<= +10%", result: passIf(extra <= 10),
	}, {
		what:     fmt.Sprintf("verification, %s log: requests per million entries", kind),
		certlake: fmt.Sprintf("%.0f", rv), reference: fmt.Sprintf("%.0f unverified", rp),
		ratio: fmt.Sprintf("+%.0f extra", rv-rp),
	}}
}

// settle starts a run from a quiet process: the garbage of the run before
// collected (else a run pays for its predecessor's, which is of the other
// kind in every other pair), and no thread still busy with what came
// before (DuckDB's check of the staging table the run before wrote: its
// threads' CPU is this process's). It waits until 50 ms pass with under
// 2 ms of the process's CPU, for at most 2 s.
func (b *bench) settle() {
	runtime.GC()
	start, c0 := time.Now(), cpuSelf()
	for time.Since(start) < 2*time.Second {
		c := cpuSelf()
		time.Sleep(50 * time.Millisecond)
		if cpuSelf()-c < 2*time.Millisecond {
			break
		}
	}
	b.log.Debug("settled", "wait", time.Since(start).Round(time.Millisecond), "cpu", (cpuSelf() - c0).Round(time.Millisecond))
}

// gcCycles is the number of GC cycles this process has completed.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func (r fetchRun) rate() float64 { return float64(r.n) / r.wall.Seconds() }

// fetchOnce backfills all of sl into a fresh staging table and checks that
// it holds every entry once.
func (b *bench) fetchOnce(ctx context.Context, sl *servedLog, kind string, verify bool) (fetchRun, error) {
	path := filepath.Join(b.dir, "runs", "parse-"+kind)
	l := sl.log
	l.Unverified = !verify
	settings := defaultBackfill
	client, counter := newCountingClient()
	defer client.CloseIdleConnections()
	settings.client = client
	os.RemoveAll(path)
	defer os.RemoveAll(path)
	var r fetchRun
	var err error
	b.settle()
	t0, c0, l0, g0 := time.Now(), cpuSelf(), sl.cpu(), gcCycles()
	// The label lets a -cpuprofile tell the backfill's samples apart
	// (pprof -tagfocus item=backfill-static, or =backfill-static-verified).
	mode := map[bool]string{true: "-verified", false: "-unverified"}[verify]
	pprof.Do(ctx, pprof.Labels("item", "backfill-"+kind+mode), func(ctx context.Context) {
		r.n, err = directBackfill(ctx, b.bufs, path, []target{{l, 0, sl.n - 1}}, settings)
	})
	r.wall, r.cpu, r.logCPU = time.Since(t0), cpuSelf()-c0, sl.cpu()-l0
	r.requests = counter.n.Load()
	b.log.Info("backfill run", "log", kind, "verified", verify, "entries", r.n, "wall", r.wall.Round(time.Millisecond),
		"cpu_per_entry_us", fmt.Sprintf("%.2f", float64(r.cpu.Nanoseconds())/1e3/float64(max(r.n, 1))), "requests", r.requests, "gc_cycles", gcCycles()-g0)
	if err != nil {
		return r, fmt.Errorf("fetch+parse+stage from %s log: %w", kind, err)
	}
	return r, checkStaged(ctx, path, sl.n)
}

// fetchRows are item 3's figures for one backfill run r.
//
// The target row is the figure: end-to-end rows/s (wall, on all the
// machine's cores, the log serving on the same cores) against the parse
// ceiling in rows/s per core. The rows after it say what a backfill costs:
// certlake's rows per CPU-second against the same ceiling (a stricter
// figure, independent of the core count), and the CPU each entry took in
// certlake and in the log; the log's share bounds the end-to-end rate,
// since even a client that cost nothing would get at most
// cores / (log CPU per entry).
func fetchRows(kind string, r fetchRun, ceiling, ownRate float64, cores int) []row {
	rate := r.rate()
	perCPU := float64(r.n) / r.cpu.Seconds()
	frac := rate / ceiling
	rows := []row{{
		what:     fmt.Sprintf("fetch+parse+stage, %s log, %s entries: end-to-end rows/s on %d cores", kind, count(r.n), cores),
		certlake: fmt.Sprintf("%.0f rows/s", rate), reference: fmt.Sprintf("ceiling %.0f/core", ceiling),
		ratio: fmt.Sprintf("%.0f%%", 100*frac), target: ">= 60% of ceiling", result: passIf(frac >= 0.6),
	}, {
		what:     fmt.Sprintf("fetch+parse+stage, %s log: certlake's rows per CPU-second", kind),
		certlake: fmt.Sprintf("%.0f rows/s", perCPU), reference: fmt.Sprintf("ceiling %.0f", ceiling),
		ratio: fmt.Sprintf("%.0f%%", 100*perCPU/ceiling),
	}, {
		what:      fmt.Sprintf("fetch+parse+stage, %s log: vs parse of the same entries", kind),
		certlake:  fmt.Sprintf("%.0f rows/s", perCPU),
		reference: fmt.Sprintf("parse only %.0f", ownRate),
		ratio:     fmt.Sprintf("%.0f%%", 100*perCPU/ownRate),
	}}
	if r.logCPU > 0 {
		perEntry := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(r.n) }
		bound := float64(cores) / (r.logCPU.Seconds() / float64(r.n))
		rows = append(rows, row{
			what:      fmt.Sprintf("fetch+parse+stage, %s log: CPU per entry, certlake vs the log serving it", kind),
			certlake:  fmt.Sprintf("%.1f µs", perEntry(r.cpu)),
			reference: fmt.Sprintf("log %.1f µs", perEntry(r.logCPU)),
			ratio:     fmt.Sprintf("bound %.0f%%", 100*bound/ceiling),
		})
	}
	return rows
}

// fetchSample returns the first n entries of a log, copied out of the
// reader's buffers.
func fetchSample(ctx context.Context, l ctlog.Log, n uint64) ([]record.Entry, error) {
	var out []record.Entry
	err := ctlog.New(l, fetchConfig()).Entries(ctx, 0, n-1, func(bt ctlog.Batch) error {
		for _, e := range bt.Entries {
			e.Cert = slices.Clone(e.Cert)
			chain := make([][]byte, len(e.Chain))
			for i, c := range e.Chain {
				chain[i] = slices.Clone(c)
			}
			e.Chain = chain
			out = append(out, e)
		}
		return nil
	})
	return out, err
}
