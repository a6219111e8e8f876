package ctlog

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunOrderedKeepsOrderAndBoundsWindow(t *testing.T) {
	for _, workers := range []int{1, 3, 8} {
		const jobs = 200
		var running, done, peakAhead atomic.Int64
		var emittedJobs atomic.Int64
		i := uint64(0)
		next := func() (span, bool) {
			if i == jobs {
				return span{}, false
			}
			i++
			return span{start: (i - 1) * 10, end: i*10 - 1}, true
		}
		fetch := func(ctx context.Context, s span) jobResult {
			running.Add(1)
			defer running.Add(-1)
			time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
			if ahead := done.Add(1) - emittedJobs.Load(); ahead > peakAhead.Load() {
				peakAhead.Store(ahead)
			}
			return jobResult{batches: []Batch{{Start: s.start, End: s.end}}}
		}
		want := uint64(0)
		err := runOrdered(t.Context(), workers, 0, jobs*10-1, next, fetch, func(b Batch) error {
			if b.Start != want {
				t.Fatalf("workers=%d: batch starts at %d, want %d", workers, b.Start, want)
			}
			want = b.End + 1
			emittedJobs.Add(1)
			return nil
		})
		if err != nil || want != jobs*10 {
			t.Errorf("workers=%d: runOrdered = %v after %d, want nil after %d", workers, err, want, jobs*10)
		}
		// Jobs finished but not emitted never exceed the window (2·workers)
		// plus the one being emitted and one being handed over.
		if peak := peakAhead.Load(); peak > int64(2*workers+2) {
			t.Errorf("workers=%d: %d jobs finished ahead of emission, want <= %d", workers, peak, 2*workers+2)
		}
	}
}

func TestRunOrderedFailureReportsRest(t *testing.T) {
	boom := errors.New("boom")
	i := uint64(0)
	next := func() (span, bool) {
		if i == 10 {
			return span{}, false
		}
		i++
		return span{start: 100 + (i-1)*10, end: 100 + i*10 - 1}, true
	}
	fetch := func(ctx context.Context, s span) jobResult {
		if s.start == 150 { // half of this job arrived, then it failed
			return jobResult{batches: []Batch{{Start: 150, End: 154}}, next: 155, err: boom}
		}
		return jobResult{batches: []Batch{{Start: s.start, End: s.end}}}
	}
	var last uint64
	err := runOrdered(t.Context(), 4, 100, 199, next, fetch, func(b Batch) error { last = b.End; return nil })
	var re *RangeError
	if !errors.As(err, &re) || re.Start != 155 || re.End != 199 || !errors.Is(err, boom) || last != 154 {
		t.Errorf("runOrdered = %v (last emitted %d), want RangeError [155, 199] wrapping boom after 154", err, last)
	}
	checkNoLeak(t)
}

func TestIssuerCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := newIssuerCache(2)
	var fetches atomic.Int64
	fetch := func(_ context.Context, fp [32]byte) ([]byte, error) {
		fetches.Add(1)
		return fp[:1], nil
	}
	get := func(b byte) {
		if der, err := c.get(t.Context(), [32]byte{b}, fetch); err != nil || der[0] != b {
			t.Fatalf("get(%d) = %v, %v", b, der, err)
		}
	}
	get(1)
	get(2)
	get(1) // 1 is now the most recent
	get(3) // evicts 2
	get(1)
	if fetches.Load() != 3 || c.len() != 2 {
		t.Errorf("fetches = %d, size = %d, want 3, 2", fetches.Load(), c.len())
	}
	get(2)
	if fetches.Load() != 4 {
		t.Errorf("fetches = %d, want 4 (2 was evicted)", fetches.Load())
	}
	// Transient failures are not cached; unavailable issuers are.
	fail := func(context.Context, [32]byte) ([]byte, error) { fetches.Add(1); return nil, errors.New("503") }
	c.get(t.Context(), [32]byte{9}, fail)
	c.get(t.Context(), [32]byte{9}, fail)
	if fetches.Load() != 6 {
		t.Errorf("fetches = %d, want 6 (transient failures refetched)", fetches.Load())
	}
	gone := func(context.Context, [32]byte) ([]byte, error) {
		fetches.Add(1)
		return nil, fmt.Errorf("%w: 404", errIssuerUnavailable)
	}
	c.get(t.Context(), [32]byte{8}, gone)
	if _, err := c.get(t.Context(), [32]byte{8}, gone); !errors.Is(err, errIssuerUnavailable) || fetches.Load() != 7 {
		t.Errorf("get(unavailable) = %v after %d fetches, want errIssuerUnavailable after 7", err, fetches.Load())
	}
}
