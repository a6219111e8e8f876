package delta

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/storage"
)

// remoteDir is a local directory store seen as a remote one: it hides
// LocalPath, so readers take the remote path, and it records how many
// reads were in flight at once.
type remoteDir struct {
	storage.Store
	inFlight, peak atomic.Int64
}

func (r *remoteDir) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	n := r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	for p := r.peak.Load(); n > p && !r.peak.CompareAndSwap(p, n); p = r.peak.Load() {
	}
	time.Sleep(2 * time.Millisecond) // a round trip
	return r.Store.Get(ctx, key)
}

// writeTxnLog writes commits 0..n-1, commit v holding txn (app, v).
func writeTxnLog(t *testing.T, s storage.Store, n int, skip int64) {
	t.Helper()
	for v := range int64(n) {
		if v == skip {
			continue
		}
		line := fmt.Sprintf(`{"txn":{"appId":"app","version":%d}}`+"\n", v)
		if err := storage.PutBytes(context.Background(), s, commitName(v), []byte(line)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReadCommitsRemoteReadsAheadInOrder: a remote log's commits are read
// with several reads in flight and applied in version order, all of them.
func TestReadCommitsRemoteReadsAheadInOrder(t *testing.T) {
	log := &remoteDir{Store: storage.NewDir(t.TempDir())}
	writeTxnLog(t, log, 60, -1)
	var got []int64
	err := readCommits(context.Background(), log, 3, 59, func(c *commit) {
		if len(c.actions) != 1 || c.actions[0].Txn == nil || c.actions[0].Txn.Version != c.version {
			t.Errorf("commit %d holds %+v", c.version, c.actions)
		}
		got = append(got, c.version)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 57 {
		t.Fatalf("applied %d commits, want 57", len(got))
	}
	for i, v := range got {
		if v != int64(3+i) {
			t.Fatalf("applied %v, want 3..59 in order", got)
		}
	}
	if p := log.peak.Load(); p < 2 || p > readAhead {
		t.Errorf("peak reads in flight %d, want 2..%d", p, readAhead)
	}
}

// TestReadCommitsRemoteStopsAtMissingCommit: a commit gone from a remote
// log is an error wrapping fs.ErrNotExist, and no commit after it is
// applied.
func TestReadCommitsRemoteStopsAtMissingCommit(t *testing.T) {
	log := &remoteDir{Store: storage.NewDir(t.TempDir())}
	writeTxnLog(t, log, 40, 20)
	var mu sync.Mutex
	var last int64 = -1
	err := readCommits(context.Background(), log, 0, 39, func(c *commit) {
		mu.Lock()
		defer mu.Unlock()
		last = c.version
	})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want one wrapping fs.ErrNotExist", err)
	}
	if last != 19 {
		t.Errorf("last commit applied %d, want 19 (the one before the missing commit)", last)
	}
}

// statCounter counts Stats per key of a remote-looking store.
type statCounter struct {
	*remoteDir
	mu    sync.Mutex
	stats map[string]int
}

func (s *statCounter) Stat(ctx context.Context, key string) (storage.Info, error) {
	s.mu.Lock()
	s.stats[key]++
	s.mu.Unlock()
	return s.remoteDir.Stat(ctx, key)
}

// TestPrefetchStatsAnswersAsStat: a prefetched name answers what Stat
// answers (found or fs.ErrNotExist), each Stat'ed once however often it is
// asked; another name is Stat'ed when asked.
func TestPrefetchStatsAnswersAsStat(t *testing.T) {
	log := &statCounter{remoteDir: &remoteDir{Store: storage.NewDir(t.TempDir())}, stats: map[string]int{}}
	writeTxnLog(t, log, 3, -1)
	stat := prefetchStats(t.Context(), log, commitName(0), commitName(7))
	for range 2 {
		if info, err := stat(commitName(0)); err != nil || info.Size == 0 {
			t.Errorf("stat(commit 0) = %+v, %v; want its size", info, err)
		}
		if _, err := stat(commitName(7)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stat(commit 7) = %v, want fs.ErrNotExist", err)
		}
	}
	if _, err := stat(commitName(2)); err != nil {
		t.Errorf("stat(commit 2) = %v", err)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, v := range []int64{0, 7, 2} {
		if n := log.stats[commitName(v)]; n != 1 {
			t.Errorf("commit %d Stat'ed %d times, want once", v, n)
		}
	}
}
