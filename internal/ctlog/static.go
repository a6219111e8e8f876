package ctlog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/certlake/certlake/internal/record"
)

// tileWidth is the number of entries in a full data tile (c2sp.org/static-ct-api).
const tileWidth = record.TileWidth

// static reads a log through the static-ct-api: checkpoint, data tiles and
// issuers under the monitoring prefix.
type static struct {
	log     Log
	cfg     Config
	workers int
	f       *fetcher
	issuers *issuerCache
	keys    *issuerKeys

	// With verification (the default): cp checks checkpoints, heads
	// keeps the verified ones and tiles proves data tiles. keyErr, if
	// set, refuses every call (no or bad key).
	cp     checkpointVerifier
	heads  *heads
	tiles  *hashTiles
	keyErr error

	mu   sync.Mutex
	size uint64 // without verification: the last tree size read; guarded by mu

	proofs sync.Pool // of *tileProof, reused from tile to tile

	// readMu makes reading, verifying and accepting a checkpoint one step
	// for a verified log, so that heads are accepted in the order they
	// were read (two reads racing would otherwise look like a tree going
	// backwards).
	readMu sync.Mutex
}

func newStatic(l Log, cfg Config, workers int, f *fetcher) *static {
	s := &static{log: l, cfg: cfg, workers: workers, f: f, issuers: newIssuerCache(cfg.IssuerCacheBytes),
		keys: newIssuerKeys(), heads: &heads{log: l.URL}}
	if l.ReadOnlyTreeSize != nil {
		s.size = *l.ReadOnlyTreeSize
	}
	if l.Unverified {
		return s
	}
	key, err := publicKey(l)
	if err == nil {
		s.cp, err = newCheckpointVerifier(l.Origin, key)
	}
	if err != nil {
		s.keyErr = fmt.Errorf("%s: %w", l.URL, err)
		return s
	}
	s.tiles = newHashTiles(cfg.HashTileCacheBytes, s.fetchHashTile)
	if l.ReadOnlyTreeSize != nil && l.ReadOnlyRoot != nil {
		// The log list's final tree head: no checkpoint needed.
		s.heads.accept(treeHead{size: *l.ReadOnlyTreeSize, root: *l.ReadOnlyRoot}) //nolint:errcheck // first head
	}
	return s
}

// maxCheckpointBytes bounds a checkpoint body (c2sp.org/tlog-checkpoint
// notes are a few hundred bytes).
const maxCheckpointBytes = 16 << 10

// TreeSize implements Reader with the checkpoint, a signed note whose
// second line is the tree size (c2sp.org/tlog-checkpoint). Unless the log
// is Unverified, its origin and signature are checked against the log's
// key and the head is compared with the heads verified before.
func (s *static) TreeSize(ctx context.Context) (uint64, error) {
	if s.keyErr != nil {
		return 0, s.keyErr
	}
	if s.log.ReadOnlyTreeSize != nil {
		if s.log.Unverified || s.log.ReadOnlyRoot != nil {
			return *s.log.ReadOnlyTreeSize, nil
		}
	}
	head, err := s.readCheckpoint(ctx)
	if err != nil {
		return 0, err
	}
	return head.size, nil
}

// readCheckpoint fetches the checkpoint and, unless the log is Unverified,
// verifies it and records it as the latest head.
func (s *static) readCheckpoint(ctx context.Context) (treeHead, error) {
	if !s.log.Unverified {
		s.readMu.Lock()
		defer s.readMu.Unlock()
	}
	var head treeHead
	_, _, err := s.f.getCapped(ctx, s.log.URL+"/checkpoint", maxCheckpointBytes, func(body []byte) error {
		if s.log.Unverified {
			lines := bytes.SplitN(body, []byte("\n"), 3)
			if len(lines) < 3 {
				return retryableError{errors.New("checkpoint: fewer than three lines")}
			}
			n, err := strconv.ParseUint(string(lines[1]), 10, 64)
			if err != nil {
				return fmt.Errorf("checkpoint tree size: %w", err)
			}
			head.size = n
			return nil
		}
		var err error
		head, err = s.cp.parse(s.log.URL, body)
		return err
	})
	if err == nil && !s.log.Unverified {
		err = s.acceptHead(ctx, head)
	}
	if err != nil {
		s.noteVerification(err)
		return treeHead{}, err
	}
	if s.log.Unverified {
		s.mu.Lock()
		s.size = head.size
		s.mu.Unlock()
	}
	return head, nil
}

// acceptHead records a verified checkpoint as the latest head once its
// tree is proven to extend the latest head's tree (through hash tiles), so
// that a log forking its tree is reported rather than followed.
func (s *static) acceptHead(ctx context.Context, head treeHead) error {
	if prev, ok := s.heads.current(); ok && prev.size > 0 && head.size > prev.size {
		if err := s.tiles.consistent(ctx, s.log.URL, prev, head); err != nil {
			return err
		}
	}
	return s.heads.accept(head)
}

// noteVerification counts a verification failure.
func (s *static) noteVerification(err error) {
	noteVerification(s.cfg, s.log.URL, err)
}

// knownHead returns the tree head to read against: the latest verified one
// (or, Unverified, the last size read), refreshed when it does not cover
// end.
func (s *static) knownHead(ctx context.Context, end uint64) (treeHead, error) {
	var head treeHead
	if s.log.Unverified {
		s.mu.Lock()
		head.size = s.size
		s.mu.Unlock()
	} else {
		head, _ = s.heads.current()
	}
	// The width of the last tile depends on the tree size: refresh it
	// unless the range lies within full tiles of a size already known.
	if head.size/tileWidth > end/tileWidth {
		return head, nil
	}
	if s.log.ReadOnlyTreeSize != nil && (s.log.Unverified || s.log.ReadOnlyRoot != nil) {
		return head, nil
	}
	fresh, err := s.readCheckpoint(ctx)
	if err != nil && head.size > end {
		// A bad new checkpoint (reported by readCheckpoint) does not stop
		// ranges that the last verified one proves.
		return head, nil
	}
	return fresh, err
}

// Entries implements Reader with data tiles. Tiles overlapping the range
// are fetched whole (the log's partial last tile as .p/W) and only indices
// inside [start, end] are emitted (quirk Q1). Unless the log is
// Unverified, each tile is proven against the hash tiles of a verified
// checkpoint before any of it is emitted.
func (s *static) Entries(ctx context.Context, start, end uint64, emit func(Batch) error) error {
	if err := checkRange(start, end); err != nil {
		return err
	}
	if s.keyErr != nil {
		return &RangeError{Start: start, End: end, Err: s.keyErr}
	}
	head, err := s.knownHead(ctx, end)
	if err != nil {
		return &RangeError{Start: start, End: end, Err: err}
	}
	size := head.size
	if end >= size {
		return &RangeError{Start: start, End: end,
			Err: fmt.Errorf("%s: %w %d", s.log.URL, ErrBeyondTree, size)}
	}
	var pt *provenTree
	if !s.log.Unverified {
		if pt, err = s.tiles.prove(ctx, s.log.URL, tlog.Tree{N: int64(head.size), Hash: head.root}); err != nil {
			s.noteVerification(err)
			return &RangeError{Start: start, End: end, Err: err}
		}
	}
	tile, done := start/tileWidth, false
	next := func() (span, bool) {
		if done {
			return span{}, false
		}
		sp := span{start: max(start, tile*tileWidth), end: min(end, tile*tileWidth+tileWidth-1)}
		tile, done = tile+1, sp.end == end
		return sp, true
	}
	fetch := func(ctx context.Context, sp span) jobResult {
		return s.fetchTile(ctx, sp, size, pt)
	}
	err = runOrdered(ctx, s.workers, start, end, next, fetch, emit)
	s.noteVerification(err)
	return err
}

// fetchTile fetches the tile holding sp (within one tile) for a log of the
// given tree size, proves it against pt unless pt is nil, and returns sp
// as one Batch.
func (s *static) fetchTile(ctx context.Context, sp span, size uint64, pt *provenTree) jobResult {
	tile := sp.start / tileWidth
	first := tile * tileWidth
	width := min(uint64(tileWidth), size-first)

	var proof *tileProof
	if pt != nil {
		proof = s.takeProof()
		defer s.putProof(proof)
	}
	leaves, seen, err := s.getTile(ctx, tile, width, proof)
	if errors.Is(err, ErrNotFound) && width < tileWidth {
		// The log grew and dropped the partial tile: the full one exists.
		leaves, seen, err = s.getTile(ctx, tile, tileWidth, proof)
	}
	if err == nil && pt != nil {
		err = s.proveTile(ctx, pt, tile, proof, int(width))
	}
	if err != nil {
		return jobResult{next: sp.start, err: err}
	}

	b := Batch{Start: sp.start, End: sp.end, Seen: seen, Entries: make([]record.Entry, 0, sp.end-sp.start+1)}
	// The chains of the batch share one backing array, each capped so
	// that appending to one cannot reach the next.
	nfp := 0
	for off := sp.start - first; off <= sp.end-first; off++ {
		nfp += len(leaves[off].ChainFingerprints)
	}
	chains := make([][]byte, nfp)
	for idx := sp.start; idx <= sp.end; idx++ {
		l := leaves[idx-first]
		n := len(l.ChainFingerprints)
		chain, err := s.chain(ctx, l.ChainFingerprints, chains[:n:n])
		chains = chains[n:]
		if err != nil {
			if errors.Is(err, errIssuerUnavailable) {
				b.Bad = append(b.Bad, BadEntry{Index: idx, Err: fmt.Errorf("entry %d: %w", idx, err)})
				continue
			}
			return jobResult{next: sp.start, err: err}
		}
		if pt != nil && l.Type == record.PrecertEntry {
			if err := s.keys.checkFP(l.IssuerKeyHash, l.ChainFingerprints, chain); err != nil {
				return jobResult{next: sp.start, err: verificationErr(s.log.URL, "entry %d: %v", idx, err)}
			}
			err := error(nil)
			switch proof.precert[idx-first] {
			case precertBad:
				err = errPrecertTBS
			case precertPending:
				err = s.keys.checkPrecert(l.Cert, proof.tbs[idx-first], chain)
			}
			if err != nil {
				return jobResult{next: sp.start, err: verificationErr(s.log.URL, "entry %d: %v", idx, err)}
			}
		}
		b.Entries = append(b.Entries, record.Entry{Index: idx, Type: l.Type, Cert: l.Cert, Chain: chain, Seen: seen})
	}
	if m := s.cfg.Metrics; m != nil {
		m.Fetched(s.log.URL, int(sp.end-sp.start+1))
		if len(b.Bad) > 0 {
			m.Malformed(s.log.URL, len(b.Bad))
		}
	}
	return jobResult{batches: []Batch{b}}
}

// proveTile checks data tile n (its leaf hashes and leaf_index extensions,
// in order) against the tree of pt: the leaves hash to the tree's nodes at
// their indices, and each leaf_index extension names its index.
//
// A full tile's leaves make a perfect subtree whose root is in the level-1
// hash tile above it (authenticated, and kept: one per 65 536 entries), so
// it costs no request of its own; only when that root differs is the
// tile's level-0 hash tile fetched, to name the first wrong entry. The
// log's partial last tile is checked against its level-0 hash tile, which
// is on the tree's edge and was authenticated with it.
//
// Only the first width leaves of p count (the tile read may be the full
// tile of a partial one).
func (s *static) proveTile(ctx context.Context, pt *provenTree, n uint64, p *tileProof, width int) error {
	if err := s.proveLeaves(ctx, pt, n, p.hashes[:width], &p.th, &p.nodes); err != nil {
		return err
	}
	if i := p.badIndex; i < width {
		idx := n*tileWidth + uint64(i)
		if p.badLeafIndex < 0 {
			return verificationErr(s.log.URL, "entry %d (data tile %d) has no leaf_index extension", idx, n)
		}
		return verificationErr(s.log.URL, "entry %d (data tile %d) has leaf_index %d", idx, n, p.badLeafIndex)
	}
	return nil
}

// proveLeaves checks the leaf hashes of data tile n against pt's tree;
// nodes is scratch for the tile's interior nodes.
func (s *static) proveLeaves(ctx context.Context, pt *provenTree, n uint64, hashes []tlog.Hash, th *treeHasher, nodes *[tileWidth]tlog.Hash) error {
	if len(hashes) == tileWidth {
		want, err := s.tiles.subtreeRoot(ctx, s.log.URL, pt, n)
		if err != nil {
			return err
		}
		if reduceRoot(nodes[:copy(nodes[:], hashes)], th) == want {
			return nil
		}
	}
	level0, err := s.tiles.level0(ctx, s.log.URL, pt, n)
	if err != nil {
		return err
	}
	if len(level0) != len(hashes)*tlog.HashSize {
		return verificationErr(s.log.URL, "data tile %d: %d leaves, hash tile has %d", n, len(hashes), len(level0)/tlog.HashSize)
	}
	for i, h := range hashes {
		if string(h[:]) != string(level0[i*tlog.HashSize:(i+1)*tlog.HashSize]) {
			return verificationErr(s.log.URL, "entry %d (data tile %d) does not hash into the tree of size %d",
				n*tileWidth+uint64(i), n, pt.tree.N)
		}
	}
	if len(hashes) == tileWidth {
		// The leaves match a level-0 tile that was authenticated against
		// the same parent: unreachable unless SHA-256 collides.
		return verificationErr(s.log.URL, "data tile %d does not hash into the tree of size %d", n, pt.tree.N)
	}
	return nil
}

// leafIndex reads the leaf_index extension of static-ct-api CtExtensions
// (c2sp.org/static-ct-api: extension_type 0, a 40-bit index).
func leafIndex(ext []byte) (uint64, bool) {
	for len(ext) >= 3 {
		typ, n := ext[0], int(ext[1])<<8|int(ext[2])
		ext = ext[3:]
		if len(ext) < n {
			return 0, false
		}
		if typ == 0 /* leaf_index */ {
			if n != 5 {
				return 0, false
			}
			var v uint64
			for _, b := range ext[:5] {
				v = v<<8 | uint64(b)
			}
			return v, true
		}
		ext = ext[n:]
	}
	return 0, false
}

// tileProof is what proving a data tile needs of it, read while its body
// is at hand: the leaf hashes, the first leaf whose leaf_index extension
// is missing or not its index, and what is known of each precertificate
// (precertState), with a copy of the TBS the log signed for those to be
// checked against their chain. Its arrays are reused from tile to tile
// (static.proofs), so that proving a tile allocates nothing.
type tileProof struct {
	th           treeHasher
	n            int // leaves read
	hashes       [tileWidth]tlog.Hash
	nodes        [tileWidth]tlog.Hash // scratch for proveLeaves: 8 KiB a goroutine's stack would grow for
	badIndex     int                  // the first leaf with a missing or wrong leaf_index; n if none
	badLeafIndex int64                // its leaf_index, -1 if missing
	precert      [tileWidth]precertCheck
	tbs          [tileWidth][]byte // of the precertPending leaves, in tbsBuf
	tbsBuf       []byte
}

// reset forgets what p read, keeping its buffers.
func (p *tileProof) reset() {
	clear(p.precert[:p.n])
	clear(p.tbs[:p.n])
	p.n, p.tbsBuf = 0, p.tbsBuf[:0]
}

func (s *static) takeProof() *tileProof {
	if p, ok := s.proofs.Get().(*tileProof); ok {
		return p
	}
	return &tileProof{}
}

func (s *static) putProof(p *tileProof) {
	p.reset()
	if cap(p.tbsBuf) > 64<<10 { // grown by a tile of rare precertificates
		p.tbsBuf = nil
	}
	s.proofs.Put(p)
}

// getTile fetches and decodes data tile n of the given width (256: full),
// and with proof set reads its tileProof into it too. A body that does not
// decode into exactly width leaves is a failed attempt, retried like a cut
// body (an empty or short tile is never taken for fewer entries).
//
// The body is read into a reused buffer: the certificates of the leaves
// are copied out of it into one buffer of their size, which spares the
// rest of the tile (a precertificate's TBSCertificate, extensions,
// fingerprints) an allocation and keeps it from being held by the entries.
func (s *static) getTile(ctx context.Context, n, width uint64, proof *tileProof) ([]record.TileLeaf, time.Time, error) {
	u := s.log.URL + "/tile/data/" + record.TilePath(n)
	if width < tileWidth {
		u += ".p/" + strconv.FormatUint(width, 10)
	}
	var leaves []record.TileLeaf
	seen, err := s.f.use(ctx, u, func(body []byte) error {
		var err error
		leaves, err = record.DecodeTile(body)
		if err != nil {
			return retryableError{fmt.Errorf("decode tile: %w", err)}
		}
		if uint64(len(leaves)) != width {
			return retryableError{fmt.Errorf("tile has %d leaves, want %d", len(leaves), width)}
		}
		if proof != nil {
			s.readTileProof(proof, n, leaves)
		}
		for i := range leaves { // they alias the body
			leaves[i].Timestamped, leaves[i].Extensions = nil, nil
		}
		copyCerts(leaves)
		return nil
	})
	if err != nil {
		return nil, time.Time{}, err // leaves would alias the body
	}
	return leaves, seen, nil
}

// readTileProof reads into p the tileProof of data tile n's leaves, which
// alias its body.
func (s *static) readTileProof(p *tileProof, n uint64, leaves []record.TileLeaf) {
	p.reset() // of an attempt retried
	p.n, p.badIndex = len(leaves), len(leaves)
	for i := range leaves {
		l := &leaves[i]
		if i%2 == 1 { // leaves are hashed in pairs
			p.th.timestamped2(leaves[i-1].Timestamped, l.Timestamped, &p.hashes[i-1], &p.hashes[i])
		} else if i == len(leaves)-1 {
			p.hashes[i] = p.th.timestamped(l.Timestamped)
		}
		if p.badIndex == p.n {
			if li, ok := leafIndex(l.Extensions); !ok {
				p.badIndex, p.badLeafIndex = i, -1
			} else if li != n*tileWidth+uint64(i) {
				p.badIndex, p.badLeafIndex = i, int64(li)
			}
		}
		if l.Type != record.PrecertEntry {
			continue
		}
		p.precert[i] = s.keys.precertState(l.Cert, l.Timestamped, l.ChainFingerprints)
		if p.precert[i] == precertPending {
			tbs, _ := timestampedTBS(l.Timestamped)
			p.tbsBuf = append(p.tbsBuf, tbs...)
			p.tbs[i] = p.tbsBuf[len(p.tbsBuf)-len(tbs):]
		}
	}
}

// copyCerts points the certificates of leaves to copies in one new buffer.
func copyCerts(leaves []record.TileLeaf) {
	size := 0
	for _, l := range leaves {
		size += len(l.Cert)
	}
	buf := make([]byte, size)
	for i := range leaves {
		n := copy(buf, leaves[i].Cert)
		leaves[i].Cert, buf = buf[:n:n], buf[n:]
	}
}

// errIssuerUnavailable marks an issuer the log does not serve (404) or
// serves with the wrong fingerprint: the entries that need it are reported
// as BadEntry rather than written with a shorter chain (quirk Q14).
var errIssuerUnavailable = errors.New("issuer unavailable")

var errIssuerMismatch = errors.New("issuer body does not hash to its fingerprint")

// chain resolves the issuer fingerprints of a leaf into their DER, in
// chain (of their length) or nil if there are none.
func (s *static) chain(ctx context.Context, fps [][32]byte, chain [][]byte) ([][]byte, error) {
	if len(fps) == 0 {
		return nil, nil
	}
	for i, fp := range fps {
		der, err := s.issuers.get(ctx, fp, s.fetchIssuer)
		if err != nil {
			return nil, err
		}
		chain[i] = der
	}
	return chain, nil
}

// maxIssuerBytes bounds an issuer certificate.
const maxIssuerBytes = 64 << 10

// fetchIssuer fetches <prefix>/issuer/<hex fingerprint> and checks that the
// body hashes to the fingerprint.
func (s *static) fetchIssuer(ctx context.Context, fp [32]byte) ([]byte, error) {
	u := s.log.URL + "/issuer/" + hex.EncodeToString(fp[:])
	// A body with another hash may have been cut or changed on the way:
	// it is asked for again, and only then is the issuer unavailable.
	body, _, err := s.f.getCapped(ctx, u, maxIssuerBytes, func(body []byte) error {
		if sha256.Sum256(body) != fp {
			return retryableError{errIssuerMismatch}
		}
		return nil
	})
	var he *HTTPError
	switch {
	case err == nil:
	case errors.Is(err, errIssuerMismatch),
		errors.As(err, &he) && he.Status >= 400 && he.Status < 500 && he.Status != 429 && he.Status != 408:
		return nil, fmt.Errorf("%w: %w", errIssuerUnavailable, err)
	default:
		return nil, err
	}
	// Kept for as long as the cache and the entries hold it, and shared by
	// every entry the issuer signed: an exact copy, so that the body's
	// buffer (sized for a tile when the length was not known) is let go
	// and no append to one entry's chain can write into another's.
	der := make([]byte, len(body))
	copy(der, body)
	return der, nil
}
