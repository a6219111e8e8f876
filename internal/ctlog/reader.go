package ctlog

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/certlake/certlake/internal/record"
)

// Reader reads one log. Its methods are safe for concurrent use; the
// request rate and concurrency limits hold across concurrent calls.
type Reader interface {
	// TreeSize returns the log's current tree size: from get-sth (RFC
	// 6962) or the checkpoint (static-ct-api), or Log.ReadOnlyTreeSize for
	// a read-only log.
	TreeSize(ctx context.Context) (uint64, error)

	// Entries fetches the inclusive range [start, end] and calls emit with
	// consecutive batches in index order: batch k covers [Start, End] with
	// no gap and no overlap with batch k-1, and each index of the range
	// appears in exactly one batch, either as an Entry or as a BadEntry.
	// emit is called from the calling goroutine, never concurrently.
	//
	// If emit returns an error, Entries stops and returns it. If part of
	// the range cannot be fetched after the retries (or ctx is done), the
	// batches before it have been emitted and Entries returns a
	// [*RangeError] naming the unfetched rest [Start, end].
	Entries(ctx context.Context, start, end uint64, emit func(Batch) error) error
}

// Batch is a run of consecutive indices [Start, End] (inclusive) from one
// HTTP response. Every index in it is in exactly one of Entries and Bad,
// both sorted by index.
//
// The bytes of Entries (Cert, Chain) belong to the caller and stay valid
// after emit returns: the reader never reuses them. They are read-only: a
// chain certificate may be one copy shared by many entries. Cert and each
// chain certificate have a capacity equal to their length, so appending to
// one copies it.
type Batch struct {
	Start, End uint64
	Entries    []record.Entry
	Bad        []BadEntry
	// Seen is when the response was read; every entry of the batch carries
	// the same time in Entry.Seen.
	Seen time.Time

	// hashes are the leaf hashes of [Start, End] while the batch waits
	// for its range proof (RFC 6962); nil once emitted.
	hashes []tlog.Hash
}

// BadEntry is an index the log served but that could not be decoded (or,
// for static-ct-api, whose issuer is missing): it is reported, never dropped.
type BadEntry struct {
	Index uint64
	Err   error
}

// New returns a Reader for l: a static-ct-api reader if l.Static, an RFC
// 6962 reader otherwise. Each Reader has its own rate limiter and
// concurrency bound; build one per log and reuse it.
func New(l Log, cfg Config) Reader {
	cfg = cfg.withDefaults()
	l.URL = record.NormalizeURL(l.URL)
	lim := cfg.limitFor(l)
	f := newFetcher(l.URL, cfg, lim, cfg.Limiters.gate(l.Operator))
	if l.Static {
		return newStatic(l, cfg, lim.Concurrency, f)
	}
	return newRFC6962(l, cfg, lim.Concurrency, f)
}

// span is an inclusive range of indices fetched as one job.
type span struct{ start, end uint64 }

// jobResult is what fetching one span produced: the batches of its fetched
// prefix, and if err is set, the first index that was not fetched.
type jobResult struct {
	batches []Batch
	next    uint64
	err     error
}

// runOrdered fetches the spans that next yields (in index order) with up to
// workers jobs in flight, and hands the batches to emit in span order.
// Jobs are queued in order as they start; the queue holds 2·workers, so at
// most 2·workers+2 jobs' results are held at once, which bounds memory.
// A failed job stops the run with a RangeError from its first unfetched
// index to end.
func runOrdered(ctx context.Context, workers int, start, end uint64, next func() (span, bool),
	fetch func(context.Context, span) jobResult, emit func(Batch) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	queue := make(chan chan jobResult, 2*workers)
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		defer close(queue)
		for {
			s, ok := next()
			if !ok {
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			ch := make(chan jobResult, 1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := fetch(ctx, s)
				<-sem
				ch <- r
			}()
			select {
			case queue <- ch:
			case <-ctx.Done():
				return
			}
		}
	}()
	// stop cancels the jobs still running and waits for them, so no
	// goroutine outlives the call.
	stop := func() {
		cancel()
		<-dispatched
		wg.Wait()
	}

	emitted, complete := start, false // first index not yet emitted; all emitted
	for ch := range queue {
		var r jobResult
		select {
		case r = <-ch:
		case <-ctx.Done():
			stop()
			return &RangeError{Start: emitted, End: end, Err: ctx.Err()}
		}
		for _, b := range r.batches {
			if err := emit(b); err != nil {
				stop()
				return err
			}
			emitted, complete = b.End+1, b.End == end
		}
		if r.err != nil {
			stop()
			return &RangeError{Start: r.next, End: end, Err: r.err}
		}
	}
	stop()
	if err := ctx.Err(); err != nil && !complete {
		return &RangeError{Start: emitted, End: end, Err: err}
	}
	return nil
}

// checkRange validates an Entries range.
func checkRange(start, end uint64) error {
	if start > end {
		return fmt.Errorf("invalid range [%d, %d]: start after end", start, end)
	}
	return nil
}
