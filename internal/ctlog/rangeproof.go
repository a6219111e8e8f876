package ctlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"slices"

	ct "github.com/google/certificate-transparency-go"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	merklehash "github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
)

// rfc6962hasher is the Merkle tree hasher of RFC 6962 section 2.1.
var rfc6962hasher = merklehash.DefaultHasher

// rangeFactory makes compact ranges of RFC 6962 trees. Their interior
// hashes are tlog.NodeHash, the same SHA-256(0x01 || left || right) as
// rfc6962hasher.HashChildren without its two allocations per node. It
// hashes only where ranges merge (appendLeaves hashes the rest).
var rangeFactory = compact.RangeFactory{Hash: func(left, right []byte) []byte {
	h := tlog.NodeHash(tlog.Hash(left), tlog.Hash(right))
	return h[:]
}}

// rangeProver holds back the batches of an RFC 6962 range until they are
// proven against a verified tree head, and emits them then. It keeps the
// compact range [0, next) of the tree (transparency-dev/merkle's compact
// ranges): the hashes of its perfect subtrees. The first group's left edge
// comes from the inclusion proof of its first entry (get-entry-and-proof);
// then each group's leaf hashes are appended, and the root of [0, next) is
// proven to be a prefix of the head's tree with a consistency proof
// (get-sth-consistency), or is the head's root. A wrong, missing, shifted
// or extra leaf changes that root, so every entry emitted is one the log
// signed at its index. Batches arrive in index order (runOrdered).
type rangeProver struct {
	ctx   context.Context // of the Entries call
	r     *rfc6962
	head  treeHead
	group uint64 // entries per proof
	end   uint64 // last index of the range
	emit  func(Batch) error

	tree    *compact.Range // [0, next) of the log's tree, once started
	pending []Batch        // batches not yet proven, consecutive
	leaves  []tlog.Hash    // the pending leaf hashes, reduced in place by appendLeaves
	th      treeHasher
}

// appendLeaves appends leaf hashes to the compact range t. It hashes the
// perfect subtrees that cover them itself, two nodes at a time (about half
// the time of one Append per leaf, and no allocation per node), and
// merges their roots into t; hashes is overwritten.
func appendLeaves(t *compact.Range, hashes []tlog.Hash, th *treeHasher) error {
	begin, end := t.End(), t.End()+uint64(len(hashes))
	nodes := compact.RangeNodes(begin, end, nil)
	roots := make([][]byte, len(nodes))
	for i, id := range nodes {
		lo, hi := id.Coverage()
		root := reduceRoot(hashes[lo-begin:hi-begin], th)
		roots[i] = root[:] // a copy: hashes is the caller's scratch
	}
	r, err := rangeFactory.NewRange(begin, end, roots)
	if err != nil {
		return err
	}
	return t.AppendRange(r, nil)
}

// add takes the next batch, and proves and emits the pending ones when it
// ends a group (or the range).
func (p *rangeProver) add(b Batch) error {
	p.pending = append(p.pending, b)
	first := p.pending[0].Start
	if b.End == p.end || b.End+1-first >= p.group {
		return p.flush(p.ctx)
	}
	return nil
}

// finish proves what is pending after the fetch ended with err (nil: the
// whole range was fetched) and returns the error to report.
func (p *rangeProver) finish(ctx context.Context, err error) error {
	if len(p.pending) == 0 {
		return err
	}
	var re *RangeError
	if err != nil && !errors.As(err, &re) {
		return err // emit failed: nothing more is emitted
	}
	if ferr := p.flush(ctx); ferr != nil {
		return ferr
	}
	return err
}

// flush proves the pending batches and emits them. A proof that fails is
// a *RangeError from the first pending index to the end of the range.
func (p *rangeProver) flush(ctx context.Context) error {
	batches := p.pending
	p.pending = nil
	start := batches[0].Start
	if err := p.prove(ctx, batches); err != nil {
		return &RangeError{Start: start, End: p.end, Err: err}
	}
	for _, b := range batches {
		b.hashes = nil
		if err := p.emit(b); err != nil {
			return err
		}
	}
	return nil
}

func (p *rangeProver) prove(ctx context.Context, batches []Batch) error {
	log := p.r.log.URL
	start, last := batches[0].Start, batches[len(batches)-1].End
	if p.tree == nil {
		t, err := p.leftEdge(ctx, start)
		if err != nil {
			return err
		}
		p.tree = t
	}
	if p.tree.End() != start {
		return fmt.Errorf("range proof at %d, batch at %d", p.tree.End(), start)
	}
	// Appending changes p.tree: work on a copy so that a failure leaves
	// nothing half-proven in it.
	t := rangeFactory.NewEmptyRange(0)
	if err := t.AppendRange(p.tree, nil); err != nil {
		return err
	}
	p.leaves = p.leaves[:0]
	for _, b := range batches {
		if uint64(len(b.hashes)) != b.End-b.Start+1 {
			return verificationErr(log, "entries [%d, %d]: %d leaf hashes", b.Start, b.End, len(b.hashes))
		}
		p.leaves = append(p.leaves, b.hashes...)
	}
	if err := appendLeaves(t, p.leaves, &p.th); err != nil {
		return err
	}
	root, err := t.GetRootHash(nil)
	if err != nil {
		return err
	}
	size := t.End()
	if size == p.head.size {
		if string(root) != string(p.head.root[:]) {
			return verificationErr(log, "entries [%d, %d] do not hash into the tree of size %d", start, last, p.head.size)
		}
	} else {
		cp, err := p.r.consistencyProof(ctx, size, p.head.size)
		if err != nil {
			return err
		}
		if err := proof.VerifyConsistency(rfc6962hasher, size, p.head.size, cp, root, p.head.root[:]); err != nil {
			return verificationErr(log, "entries [%d, %d] do not hash into the tree of size %d: %s", start, last, p.head.size, proofReason(err))
		}
	}
	p.tree = t
	return nil
}

// leftEdge returns the compact range [0, start) of the log's tree: the
// left siblings on the path of leaf start, read from its inclusion proof
// (get-entry-and-proof, RFC 6962 section 4.8). They are taken on trust
// here; the first group's proof fails if they are wrong.
func (p *rangeProver) leftEdge(ctx context.Context, start uint64) (*compact.Range, error) {
	if start == 0 {
		return rangeFactory.NewEmptyRange(0), nil
	}
	var resp ct.GetEntryAndProofResponse
	u := fmt.Sprintf("%s/ct/v1/get-entry-and-proof?leaf_index=%d&tree_size=%d", p.r.log.URL, start, p.head.size)
	_, _, err := p.r.f.getCapped(ctx, u, p.r.cfg.MaxResponseBytes, func(body []byte) error {
		resp.AuditPath = nil
		if err := json.Unmarshal(body, &resp); err != nil {
			return retryableError{fmt.Errorf("parse get-entry-and-proof: %w", err)}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	left, err := leftSiblings(start, p.head.size, resp.AuditPath)
	if err != nil {
		return nil, verificationErr(p.r.log.URL, "inclusion proof of entry %d: %v", start, err)
	}
	r, err := rangeFactory.NewRange(0, start, left)
	if err != nil {
		return nil, verificationErr(p.r.log.URL, "inclusion proof of entry %d: %v", start, err)
	}
	return r, nil
}

// leftSiblings picks from the inclusion proof of leaf index in a tree of
// size size the hashes of the nodes left of its path, which are the
// perfect subtrees making up [0, index), in left-to-right order. Below the
// level where the paths to index and size-1 part, a proof hash is a left
// sibling where index has a 1 bit; above it every hash is (RFC 6962
// section 2.1.1; the split is merkle/proof's).
func leftSiblings(index, size uint64, path [][]byte) ([][]byte, error) {
	inner := bits.Len64(index ^ (size - 1))
	if want := inner + bits.OnesCount64(index>>inner); len(path) != want {
		return nil, fmt.Errorf("%d hashes, want %d", len(path), want)
	}
	var left [][]byte
	for i, h := range path {
		if len(h) != 32 {
			return nil, fmt.Errorf("hash %d of %d bytes", i, len(h))
		}
		if i >= inner || index>>i&1 == 1 {
			left = append(left, h)
		}
	}
	slices.Reverse(left) // highest first
	return left, nil
}

// proofReason says briefly why a proof failed: merkle/proof's root
// mismatch error prints both roots as lists of bytes over several lines.
func proofReason(err error) string {
	var rm proof.RootMismatchError
	if errors.As(err, &rm) {
		return fmt.Sprintf("root %x..., want %x...", rm.CalculatedRoot[:min(8, len(rm.CalculatedRoot))], rm.ExpectedRoot[:min(8, len(rm.ExpectedRoot))])
	}
	return err.Error()
}
