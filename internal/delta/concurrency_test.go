package delta

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/storage"
)

// Child processes: the test binary re-executes itself with helperEnv set and
// -test.run=^TestHelperProcess$.
const (
	helperEnv    = "DELTA_TEST_HELPER"
	helperRoot   = "DELTA_TEST_ROOT"
	helperWorker = "DELTA_TEST_WORKER"
	helperCount  = "DELTA_TEST_BATCHES"
)

func TestHelperProcess(t *testing.T) {
	switch os.Getenv(helperEnv) {
	case "":
		t.Skip("runs only as a child process of other tests")
	case "append":
		n, _ := strconv.Atoi(os.Getenv(helperCount))
		if err := appendBatches(t, os.Getenv(helperRoot), os.Getenv(helperWorker), n); err != nil {
			t.Fatal(err)
		}
	case "crash":
		crashBeforeLink(t, os.Getenv(helperRoot))
	default:
		t.Fatalf("unknown helper %q", os.Getenv(helperEnv))
	}
}

func helperCmd(ctx context.Context, mode, root, worker string, batches int) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(),
		helperEnv+"="+mode, helperRoot+"="+root, helperWorker+"="+worker, helperCount+"="+strconv.Itoa(batches))
	return cmd
}

// appendBatches commits batches 0..n-1 of worker, one data file each, each
// carrying txn (worker, batch) so a retry is idempotent.
func appendBatches(t testing.TB, root, worker string, n int) error {
	ctx := context.Background()
	tbl, err := Open(ctx, root, Options{CheckpointInterval: 10})
	if err != nil {
		return err
	}
	for b := range n {
		a := dataFile(t, root, fmt.Sprintf("2024-01-%02d", b%3+1), fmt.Sprintf("part-%s-%03d.parquet", worker, b), int64(b+1))
		snap, err := tbl.Snapshot(ctx)
		if err != nil {
			return err
		}
		res, err := tbl.Commit(ctx, snap.Version, []Action{{Add: &a}}, CommitOptions{Operation: "WRITE", Txn: &Txn{AppID: worker, Version: int64(b)}})
		if err != nil {
			return fmt.Errorf("worker %s batch %d: %w", worker, b, err)
		}
		if res.Skipped {
			return fmt.Errorf("worker %s batch %d skipped at %d", worker, b, res.Version)
		}
	}
	return nil
}

func TestConcurrentAppends(t *testing.T) {
	const (
		goroutines = 4
		processes  = 3
		batches    = 15
	)
	ctx := t.Context()
	tbl := newTestTable(t, Options{CheckpointInterval: 10})
	root := tbl.Root()

	var wg sync.WaitGroup
	errs := make(chan error, goroutines+processes)
	for p := range processes {
		wg.Go(func() {
			cmd := helperCmd(ctx, "append", root, fmt.Sprintf("proc%d", p), batches)
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("process %d: %v\n%s", p, err, out)
			}
		})
	}
	for g := range goroutines {
		wg.Go(func() {
			if err := appendBatches(t, root, fmt.Sprintf("gor%d", g), batches); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	total := int64((goroutines + processes) * batches)
	l, err := listLog(t.Context(), tbl.log)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(l.commits)) != total+1 || l.commits[0] != 0 || l.commits[len(l.commits)-1] != total {
		t.Fatalf("commits %d..%d (%d files), want 0..%d with no gap", l.commits[0], l.commits[len(l.commits)-1], len(l.commits), total)
	}
	// Every batch's file was added by exactly one commit.
	added := map[string]int{}
	for v := int64(1); v <= total; v++ {
		acts, err := tbl.ReadCommit(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range acts {
			if a.Add != nil {
				added[a.Add.Path]++
			}
		}
	}
	fresh, err := Open(ctx, root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := fresh.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version != total || int64(len(snap.Files)) != total || int64(len(added)) != total {
		t.Errorf("version %d, %d live files, %d distinct adds; want %d each", snap.Version, len(snap.Files), len(added), total)
	}
	for _, f := range snap.Files {
		if added[f.Path] != 1 {
			t.Errorf("%s added %d times, want once", f.Path, added[f.Path])
		}
	}
	for w, v := range snap.Txns {
		if v != batches-1 {
			t.Errorf("txn %s = %d, want %d", w, v, batches-1)
		}
	}
	if len(snap.Txns) != goroutines+processes {
		t.Errorf("%d txn appIds, want %d", len(snap.Txns), goroutines+processes)
	}
	if err := Validate(ctx, root); err != nil {
		t.Errorf("Validate() = %v", err)
	}

	// A retried batch (same txn) is a no-op, even from a stale read version.
	a := dataFile(t, root, "2024-01-01", "part-gor0-retry.parquet", 1)
	res, err := tbl.Commit(ctx, 3, []Action{{Add: &a}}, CommitOptions{Txn: &Txn{AppID: "gor0", Version: batches - 1}})
	if err != nil || !res.Skipped || res.Version != total {
		t.Errorf("retried Commit() = %+v, %v; want Skipped at %d", res, err, total)
	}
	if v, _ := fresh.LatestVersion(ctx); v != total {
		t.Errorf("LatestVersion() after the retry = %d, want %d", v, total)
	}
}

func TestCommitLosesRaceToSameTxn(t *testing.T) {
	// Two writers of the same batch (a retried activity whose first attempt
	// is still running): exactly one lands, the other is Skipped.
	tbl := newTestTable(t, Options{})
	other, err := Open(t.Context(), tbl.Root(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := dataFile(t, tbl.Root(), "2024-01-01", "a.parquet", 1)
	b := dataFile(t, tbl.Root(), "2024-01-01", "b.parquet", 1)
	txn := &Txn{AppID: "merge-7", Version: 1}
	r1, err := tbl.Commit(t.Context(), 0, []Action{{Add: &a}}, CommitOptions{Txn: txn})
	if err != nil || r1.Skipped {
		t.Fatalf("first Commit() = %+v, %v", r1, err)
	}
	// other read version 0 before the first commit landed.
	r2, err := other.Commit(t.Context(), 0, []Action{{Add: &b}}, CommitOptions{Txn: txn})
	if err != nil || !r2.Skipped || r2.Version != 1 {
		t.Errorf("second Commit() = %+v, %v; want Skipped at 1", r2, err)
	}
	s, _ := tbl.Snapshot(t.Context())
	if len(s.Files) != 1 || s.Files[0].Path != a.Path {
		t.Errorf("files = %v, want only %s", s.Files, a.Path)
	}
}

func TestCommitConflicts(t *testing.T) {
	setup := func(t *testing.T) (*Table, Add) {
		tbl := newTestTable(t, Options{})
		a := dataFile(t, tbl.Root(), "2024-01-01", "a.parquet", 1)
		if _, err := tbl.Commit(t.Context(), 0, []Action{{Add: &a}}, CommitOptions{}); err != nil {
			t.Fatal(err)
		}
		return tbl, a
	}
	tests := []struct {
		name    string
		winner  func(t testing.TB, tbl *Table, a Add) []Action
		ours    func(t testing.TB, tbl *Table, a Add) []Action
		check   func([]Action) error
		wantErr bool
	}{
		{"appends never conflict",
			func(t testing.TB, tbl *Table, a Add) []Action {
				w := dataFile(t, tbl.Root(), "2024-01-02", "w.parquet", 1)
				return []Action{{Add: &w}}
			},
			func(t testing.TB, tbl *Table, a Add) []Action {
				o := dataFile(t, tbl.Root(), "2024-01-02", "o.parquet", 1)
				return []Action{{Add: &o}}
			},
			nil, false},
		{"both remove the same file",
			func(t testing.TB, tbl *Table, a Add) []Action {
				return []Action{{Remove: &Remove{Path: a.Path, DataChange: true}}}
			},
			func(t testing.TB, tbl *Table, a Add) []Action {
				return []Action{{Remove: &Remove{Path: a.Path, DataChange: true}}}
			},
			nil, true},
		{"winner changed metadata",
			func(t testing.TB, tbl *Table, a Add) []Action {
				m := testMeta()
				m.ID, m.Format.Provider = "other", "parquet"
				m.Configuration = map[string]string{"x": "y"}
				return []Action{{MetaData: &m}}
			},
			func(t testing.TB, tbl *Table, a Add) []Action {
				o := dataFile(t, tbl.Root(), "2024-01-02", "o.parquet", 1)
				return []Action{{Add: &o}}
			},
			nil, true},
		{"caller check refuses",
			func(t testing.TB, tbl *Table, a Add) []Action {
				w := dataFile(t, tbl.Root(), "2024-01-02", "w.parquet", 1)
				return []Action{{Add: &w}}
			},
			func(t testing.TB, tbl *Table, a Add) []Action {
				o := dataFile(t, tbl.Root(), "2024-01-02", "o.parquet", 1)
				return []Action{{Add: &o}}
			},
			func(w []Action) error {
				for _, a := range w {
					if a.Add != nil && strings.HasSuffix(a.Add.Path, "w.parquet") {
						return fmt.Errorf("%w: saw w.parquet", ErrConflict)
					}
				}
				return nil
			}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl, a := setup(t)
			// The winner commits at 2 after we read version 1.
			if _, err := tbl.Commit(t.Context(), 1, tt.winner(t, tbl, a), CommitOptions{}); err != nil {
				t.Fatal(err)
			}
			res, err := tbl.Commit(t.Context(), 1, tt.ours(t, tbl, a), CommitOptions{Check: tt.check})
			if tt.wantErr != (err != nil) || (err != nil && !errors.Is(err, ErrConflict)) {
				t.Errorf("Commit() = %+v, %v; want conflict %v", res, err, tt.wantErr)
			}
			if !tt.wantErr && res.Version != 3 {
				t.Errorf("Commit() landed at %d, want 3", res.Version)
			}
		})
	}
}

func TestConcurrentCreate(t *testing.T) {
	root := filepath.Join(t.TempDir(), "t")
	const n = 8
	var wg sync.WaitGroup
	results := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := Create(t.Context(), root, testMeta(), Protocol{}, Options{})
			results <- err
		})
	}
	wg.Wait()
	close(results)
	ok := 0
	for err := range results {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrExists):
			t.Errorf("Create() = %v, want nil or ErrExists", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d Creates succeeded, want exactly 1", ok)
	}
	l, err := listLog(t.Context(), storage.NewDir(filepath.Join(root, logDirName)))
	if err != nil || len(l.commits) != 1 || l.commits[0] != 0 {
		t.Errorf("log after racing Creates = %+v, %v; want only version 0", l, err)
	}
}

// crashBeforeLink runs in a child: it writes a data file and a commit's temp
// file, signals the parent and hangs before linking, waiting to be killed.
func crashBeforeLink(t *testing.T, root string) {
	tbl, err := Open(context.Background(), root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := dataFile(t, root, "2024-01-01", "orphan.parquet", 1)
	tbl.beforeLink = func(string) {
		if err := os.WriteFile(filepath.Join(root, "ready"), nil, 0o644); err != nil {
			t.Error(err)
		}
		time.Sleep(time.Hour)
	}
	_, err = tbl.Commit(context.Background(), 0, []Action{{Add: &a}}, CommitOptions{})
	t.Fatalf("Commit() returned %v; the parent should have killed this process", err)
}

func TestCrashBeforeCommitLeavesTableUnchanged(t *testing.T) {
	ctx := t.Context()
	tbl := newTestTable(t, Options{})
	root := tbl.Root()
	before, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cmd := helperCmd(ctx, "crash", root, "", 0)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(root, "ready")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("child never reached the link step")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred cleanup runs
		t.Fatal(err)
	}
	_ = cmd.Wait()

	// The temp commit and the data file are left behind...
	tmps, _ := filepath.Glob(filepath.Join(root, logDirName, "."+commitName(1)+".*.tmp"))
	if len(tmps) != 1 {
		t.Errorf("orphan temp commits = %v, want one", tmps)
	}
	if _, err := os.Stat(filepath.Join(root, "seen_date=2024-01-01", "orphan.parquet")); err != nil {
		t.Errorf("orphan data file: %v", err)
	}
	// ...and ignored: the table is readable and unchanged.
	fresh, err := Open(ctx, root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	after, err := fresh.Snapshot(ctx)
	if err != nil {
		t.Fatalf("Snapshot() after crash = %v", err)
	}
	if after.Version != before.Version || len(after.Files) != len(before.Files) {
		t.Errorf("after crash: version %d with %d files, want %d with %d", after.Version, len(after.Files), before.Version, len(before.Files))
	}
	if err := Validate(ctx, root); err != nil {
		t.Errorf("Validate() after crash = %v", err)
	}
	// The next writer takes version 1 as if nothing happened.
	a := dataFile(t, root, "2024-01-02", "next.parquet", 1)
	res, err := fresh.Commit(ctx, after.Version, []Action{{Add: &a}}, CommitOptions{})
	if err != nil || res.Version != 1 {
		t.Errorf("Commit() after crash = %+v, %v; want version 1", res, err)
	}
}

func TestUnreadableCheckpointFallsBack(t *testing.T) {
	ctx := t.Context()
	tbl := newTestTable(t, Options{CheckpointInterval: 2})
	for i := range 5 {
		a := dataFile(t, tbl.Root(), "2024-01-01", fmt.Sprintf("f%d.parquet", i), 1)
		if _, err := tbl.Commit(ctx, int64(i), []Action{{Add: &a}}, CommitOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dir := tbl.logDir()
	// A half-written checkpoint from a foreign writer, and our own orphan
	// temp checkpoint.
	if err := os.WriteFile(filepath.Join(dir, checkpointName(4)), []byte("PAR1 truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "."+checkpointName(5)+".123.tmp"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	fresh, read := openTraced(t, tbl.Root())
	s, err := fresh.Snapshot(ctx)
	if err != nil || s.Version != 5 || len(s.Files) != 5 {
		t.Fatalf("Snapshot() = %+v, %v; want version 5 with 5 files", s, err)
	}
	want := []string{checkpointName(4), checkpointName(2), commitName(3), commitName(4), commitName(5)}
	if strings.Join(*read, ",") != strings.Join(want, ",") {
		t.Errorf("read %v, want %v (fall back to checkpoint 2)", *read, want)
	}
}
