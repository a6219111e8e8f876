package ctlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	ct "github.com/google/certificate-transparency-go"
	"github.com/transparency-dev/merkle/proof"
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
	keys   *issuerKeys

	// With verification (the default): sth checks tree heads and heads
	// keeps the verified ones. keyErr, if set, refuses every call.
	sth    sthVerifier
	heads  *heads
	keyErr error

	// readMu makes reading, verifying and accepting a tree head one step
	// for a verified log, so that heads are accepted in the order they
	// were read.
	readMu sync.Mutex
}

func newRFC6962(l Log, cfg Config, workers int, f *fetcher) *rfc6962 {
	r := &rfc6962{log: l, cfg: cfg, workers: workers, f: f, scratch: make(chan *decodeScratch, max(workers, 1)),
		keys: newIssuerKeys(), heads: &heads{log: l.URL}}
	if l.Unverified {
		return r
	}
	key, err := publicKey(l)
	if err == nil {
		r.sth, err = newSTHVerifier(key)
	}
	if err != nil {
		r.keyErr = fmt.Errorf("%s: %w", l.URL, err)
		return r
	}
	if l.ReadOnlyTreeSize != nil && l.ReadOnlyRoot != nil {
		r.heads.accept(treeHead{size: *l.ReadOnlyTreeSize, root: *l.ReadOnlyRoot}) //nolint:errcheck // first head
	}
	return r
}

// decodeScratch is what decoding an answer needs and no entry keeps: its
// elements (which alias the body) and their base64-decoded bytes.
type decodeScratch struct {
	texts []entryText
	buf   []byte
	lh    *treeHasher
}

// maxTreeHeadBytes bounds a get-sth answer; maxProofBytes a proof (64
// hashes of base64 and JSON are under 4 KiB).
const (
	maxTreeHeadBytes = 16 << 10
	maxProofBytes    = 64 << 10
)

// TreeSize implements Reader with get-sth (RFC 6962 section 4.3). Unless
// the log is Unverified, the signature is checked with the log's key and
// the head is proven consistent with the last one verified.
func (r *rfc6962) TreeSize(ctx context.Context) (uint64, error) {
	if r.keyErr != nil {
		return 0, r.keyErr
	}
	if r.log.ReadOnlyTreeSize != nil && (r.log.Unverified || r.log.ReadOnlyRoot != nil) {
		return *r.log.ReadOnlyTreeSize, nil
	}
	head, err := r.readSTH(ctx)
	if err != nil {
		return 0, err
	}
	return head.size, nil
}

func (r *rfc6962) readSTH(ctx context.Context) (treeHead, error) {
	if !r.log.Unverified {
		r.readMu.Lock()
		defer r.readMu.Unlock()
	}
	var head treeHead
	_, _, err := r.f.getCapped(ctx, r.log.URL+"/ct/v1/get-sth", maxTreeHeadBytes, func(body []byte) error {
		if r.log.Unverified {
			var sth struct {
				TreeSize *uint64 `json:"tree_size"`
			}
			if err := json.Unmarshal(body, &sth); err != nil {
				return retryableError{fmt.Errorf("parse get-sth: %w", err)}
			}
			if sth.TreeSize == nil {
				return errors.New("get-sth: no tree_size")
			}
			head.size = *sth.TreeSize
			return nil
		}
		var err error
		head, err = r.sth.parse(r.log.URL, body)
		return err
	})
	if err == nil && !r.log.Unverified {
		if prev, ok := r.heads.current(); ok && prev.size > 0 && head.size > prev.size {
			err = r.consistent(ctx, prev, head)
		}
		if err == nil {
			err = r.heads.accept(head)
		}
	}
	if err != nil {
		noteVerification(r.cfg, r.log.URL, err)
		return treeHead{}, err
	}
	return head, nil
}

// consistent proves that the tree of old is a prefix of the tree of cur
// (get-sth-consistency, RFC 6962 section 4.4).
func (r *rfc6962) consistent(ctx context.Context, old, cur treeHead) error {
	p, err := r.consistencyProof(ctx, old.size, cur.size)
	if err != nil {
		return err
	}
	if err := proof.VerifyConsistency(rfc6962hasher, old.size, cur.size, p, old.root[:], cur.root[:]); err != nil {
		return misbehaviour(r.log.URL, "tree heads of sizes %d and %d are not consistent (the log forked its tree): %s", old.size, cur.size, proofReason(err))
	}
	return nil
}

func (r *rfc6962) consistencyProof(ctx context.Context, first, second uint64) ([][]byte, error) {
	var resp ct.GetSTHConsistencyResponse
	u := fmt.Sprintf("%s/ct/v1/get-sth-consistency?first=%d&second=%d", r.log.URL, first, second)
	_, _, err := r.f.getCapped(ctx, u, maxProofBytes, func(body []byte) error {
		resp.Consistency = nil
		if err := json.Unmarshal(body, &resp); err != nil {
			return retryableError{fmt.Errorf("parse get-sth-consistency: %w", err)}
		}
		return nil
	})
	return resp.Consistency, err
}

// knownHead returns the verified head to prove [.., end] against: the
// latest one if it covers end, or a fresh one.
func (r *rfc6962) knownHead(ctx context.Context, end uint64) (treeHead, error) {
	if head, ok := r.heads.current(); ok && head.size > end {
		return head, nil
	}
	if r.log.ReadOnlyTreeSize != nil && r.log.ReadOnlyRoot != nil {
		head, _ := r.heads.current()
		return head, nil
	}
	return r.readSTH(ctx)
}

// Entries implements Reader with get-entries (RFC 6962 section 4.6). The
// range is split into BatchSize-aligned sub-ranges fetched in parallel.
func (r *rfc6962) Entries(ctx context.Context, start, end uint64, emit func(Batch) error) error {
	if err := checkRange(start, end); err != nil {
		return err
	}
	if r.keyErr != nil {
		return &RangeError{Start: start, End: end, Err: r.keyErr}
	}
	verify := !r.log.Unverified
	var pr *rangeProver
	if verify {
		head, err := r.knownHead(ctx, end)
		if err != nil {
			return &RangeError{Start: start, End: end, Err: err}
		}
		if end >= head.size {
			return &RangeError{Start: start, End: end,
				Err: fmt.Errorf("%s: %w %d", r.log.URL, ErrBeyondTree, head.size)}
		}
		pr = &rangeProver{ctx: ctx, r: r, head: head, group: uint64(r.cfg.VerifyGroup), end: end, emit: emit}
		emit = pr.add
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
	fetch := func(ctx context.Context, s span) jobResult { return r.fetchSpan(ctx, s, verify) }
	err := runOrdered(ctx, r.workers, start, end, next, fetch, emit)
	if pr != nil {
		err = pr.finish(ctx, err)
	}
	noteVerification(r.cfg, r.log.URL, err)
	return err
}

var errNoEntries = errors.New("get-entries returned no entries")

// fetchSpan fetches [s.start, s.end], asking again from the first index
// not returned after each short read. Each response becomes one Batch.
func (r *rfc6962) fetchSpan(ctx context.Context, s span, verify bool) jobResult {
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
			var checks *entryChecks
			if verify {
				if sc.lh == nil {
					sc.lh = &treeHasher{}
				}
				checks = &entryChecks{log: r.log.URL, lh: sc.lh, keys: r.keys}
			}
			sc.buf, err = decodeEntriesChecked(&b, texts[:n], next, sc.buf, &r.chains, checks)
			return err
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
