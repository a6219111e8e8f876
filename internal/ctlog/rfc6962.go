package ctlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// rfc6962 reads a log through the RFC 6962 section 4 API.
type rfc6962 struct {
	log     Log
	cfg     Config
	workers int
	f       *fetcher

	// scratch keeps decoding buffers, one set per span being fetched.
	scratch chan *decodeScratch
	// chains shares chain certificates among entries.
	chains chainCache
}

func newRFC6962(l Log, cfg Config, workers int, f *fetcher) *rfc6962 {
	return &rfc6962{log: l, cfg: cfg, workers: workers, f: f, scratch: make(chan *decodeScratch, max(workers, 1))}
}

// decodeScratch is what decoding an answer needs and no entry keeps: its
// elements (which alias the body) and their base64-decoded bytes.
type decodeScratch struct {
	texts []entryText
	buf   []byte
}

// TreeSize implements Reader with get-sth (RFC 6962 section 4.3).
func (r *rfc6962) TreeSize(ctx context.Context) (uint64, error) {
	if r.log.ReadOnlyTreeSize != nil {
		return *r.log.ReadOnlyTreeSize, nil
	}
	var sth struct {
		TreeSize *uint64 `json:"tree_size"`
	}
	_, _, err := r.f.get(ctx, r.log.URL+"/ct/v1/get-sth", func(body []byte) error {
		sth.TreeSize = nil
		if err := json.Unmarshal(body, &sth); err != nil {
			return retryableError{fmt.Errorf("parse get-sth: %w", err)}
		}
		if sth.TreeSize == nil {
			return errors.New("get-sth: no tree_size")
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return *sth.TreeSize, nil
}

// Entries implements Reader with get-entries (RFC 6962 section 4.6). The
// range is split into BatchSize-aligned sub-ranges fetched in parallel.
func (r *rfc6962) Entries(ctx context.Context, start, end uint64, emit func(Batch) error) error {
	if err := checkRange(start, end); err != nil {
		return err
	}
	bs := uint64(r.cfg.BatchSize)
	cur, done := start, false
	next := func() (span, bool) {
		if done {
			return span{}, false
		}
		// Align sub-ranges on multiples of BatchSize, as logs and their
		// caches tend to.
		s := span{start: cur, end: end}
		if room := bs - 1 - cur%bs; end-cur > room {
			s.end = cur + room
		}
		cur, done = s.end+1, s.end == end
		return s, true
	}
	return runOrdered(ctx, r.workers, start, end, next, r.fetchSpan, emit)
}

var errNoEntries = errors.New("get-entries returned no entries")

// fetchSpan fetches [s.start, s.end], asking again from the first index
// not returned after each short read. Each response becomes one Batch.
func (r *rfc6962) fetchSpan(ctx context.Context, s span) jobResult {
	var res jobResult
	sc := r.takeScratch()
	defer r.putScratch(sc)
	next := s.start
	for {
		var b Batch
		u := fmt.Sprintf("%s/ct/v1/get-entries?start=%d&end=%d", r.log.URL, next, s.end)
		seen, err := r.f.use(ctx, u, func(body []byte) error {
			texts, err := parseGetEntries(body, sc.texts)
			if err != nil {
				return retryableError{fmt.Errorf("parse get-entries: %w", err)}
			}
			if len(texts) == 0 {
				// Never step over indices the log did not return
				// (quirk Q4): ask again, and fail the range if it
				// keeps answering nothing.
				return retryableError{errNoEntries}
			}
			sc.texts = texts[:0]
			// A log may return more than asked; never emit past s.end.
			n := uint64(len(texts))
			if n-1 > s.end-next {
				n = s.end - next + 1
			}
			// Decoded here, while the body (which texts alias) is ours.
			b = Batch{Start: next, End: next + n - 1}
			sc.buf = decodeEntries(&b, texts[:n], next, sc.buf, &r.chains)
			return nil
		})
		if err != nil {
			res.next, res.err = next, err
			return res
		}
		b.Seen = seen
		for i := range b.Entries {
			b.Entries[i].Seen = seen
		}
		r.report(b)
		res.batches = append(res.batches, b)
		if b.End == s.end {
			return res
		}
		next = b.End + 1
	}
}

func (r *rfc6962) report(b Batch) {
	if m := r.cfg.Metrics; m != nil {
		m.Fetched(r.log.URL, int(b.End-b.Start+1))
		if len(b.Bad) > 0 {
			m.Malformed(r.log.URL, len(b.Bad))
		}
	}
}

// takeScratch returns kept decoding buffers, or new ones.
func (r *rfc6962) takeScratch() *decodeScratch {
	select {
	case sc := <-r.scratch:
		return sc
	default:
		return new(decodeScratch)
	}
}

// putScratch keeps sc for a later span unless r holds enough already. A
// buffer grown for a rare huge answer is let go, and no element is left
// pointing into a body.
func (r *rfc6962) putScratch(sc *decodeScratch) {
	if cap(sc.buf) > maxHintBytes {
		sc.buf = nil
	}
	clear(sc.texts[:cap(sc.texts)])
	select {
	case r.scratch <- sc:
	default:
	}
}
