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

	mu   sync.Mutex
	size uint64 // largest tree size seen; guarded by mu
}

func newStatic(l Log, cfg Config, workers int, f *fetcher) *static {
	s := &static{log: l, cfg: cfg, workers: workers, f: f, issuers: newIssuerCache(cfg.IssuerCacheSize)}
	if l.ReadOnlyTreeSize != nil {
		s.size = *l.ReadOnlyTreeSize
	}
	return s
}

// TreeSize implements Reader with the checkpoint, a signed note whose
// second line is the tree size (c2sp.org/tlog-checkpoint). The signature
// is not verified: entries are not checked against the tree either.
func (s *static) TreeSize(ctx context.Context) (uint64, error) {
	if s.log.ReadOnlyTreeSize != nil {
		return *s.log.ReadOnlyTreeSize, nil
	}
	var size uint64
	_, _, err := s.f.get(ctx, s.log.URL+"/checkpoint", func(body []byte) error {
		lines := bytes.SplitN(body, []byte("\n"), 3)
		if len(lines) < 3 {
			return retryableError{errors.New("checkpoint: fewer than three lines")}
		}
		n, err := strconv.ParseUint(string(lines[1]), 10, 64)
		if err != nil {
			return fmt.Errorf("checkpoint tree size: %w", err)
		}
		size = n
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.size = max(s.size, size)
	s.mu.Unlock()
	return size, nil
}

func (s *static) knownSize() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// Entries implements Reader with data tiles. Tiles overlapping the range
// are fetched whole (the log's partial last tile as .p/W) and only indices
// inside [start, end] are emitted (quirk Q1).
func (s *static) Entries(ctx context.Context, start, end uint64, emit func(Batch) error) error {
	if err := checkRange(start, end); err != nil {
		return err
	}
	// The width of the last tile depends on the tree size: refresh it
	// unless the range lies within full tiles of a size already known.
	lastTile := end / tileWidth
	size := s.knownSize()
	if size/tileWidth <= lastTile {
		var err error
		if size, err = s.TreeSize(ctx); err != nil {
			return &RangeError{Start: start, End: end, Err: err}
		}
	}
	if end >= size {
		return &RangeError{Start: start, End: end,
			Err: fmt.Errorf("%s: %w %d", s.log.URL, ErrBeyondTree, size)}
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
		return s.fetchTile(ctx, sp, size)
	}
	return runOrdered(ctx, s.workers, start, end, next, fetch, emit)
}

// fetchTile fetches the tile holding sp (within one tile) for a log of the
// given tree size, and returns sp as one Batch.
func (s *static) fetchTile(ctx context.Context, sp span, size uint64) jobResult {
	tile := sp.start / tileWidth
	first := tile * tileWidth
	width := min(uint64(tileWidth), size-first)
	need := int(sp.end - first + 1) // leaves needed from the start of the tile

	leaves, decodeErr, seen, err := s.getTile(ctx, tile, width, need)
	if errors.Is(err, ErrNotFound) && width < tileWidth {
		// The log grew and dropped the partial tile: the full one exists.
		leaves, decodeErr, seen, err = s.getTile(ctx, tile, tileWidth, need)
	}
	if err != nil {
		return jobResult{next: sp.start, err: err}
	}

	b := Batch{Start: sp.start, End: sp.end, Seen: seen, Entries: make([]record.Entry, 0, sp.end-sp.start+1)}
	// The chains of the batch share one backing array, each capped so
	// that appending to one cannot reach the next.
	nfp := 0
	for off := int(sp.start - first); off < min(need, len(leaves)); off++ {
		nfp += len(leaves[off].ChainFingerprints)
	}
	chains := make([][]byte, nfp)
	for idx := sp.start; idx <= sp.end; idx++ {
		off := int(idx - first)
		if off >= len(leaves) {
			err := decodeErr
			if err == nil {
				err = fmt.Errorf("tile has %d leaves, want at least %d", len(leaves), need)
			}
			b.Bad = append(b.Bad, BadEntry{Index: idx, Err: fmt.Errorf("entry %d: tile %d: %w", idx, tile, err)})
			continue
		}
		l := leaves[off]
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

// getTile fetches and decodes data tile n of the given width (256: full).
// A body that does not decode into at least need leaves is fetched again,
// since the transport may have cut it; only when the log serves the same
// bytes twice is it taken as malformed, and decodeErr says why.
//
// The body is read into a reused buffer: the certificates of the leaves
// are copied out of it into one buffer of their size, which spares the
// rest of the tile (a precertificate's TBSCertificate, extensions,
// fingerprints) an allocation and keeps it from being held by the entries.
func (s *static) getTile(ctx context.Context, n, width uint64, need int) ([]record.TileLeaf, error, time.Time, error) {
	u := s.log.URL + "/tile/data/" + record.TilePath(n)
	if width < tileWidth {
		u += ".p/" + strconv.FormatUint(width, 10)
	}
	var (
		leaves    []record.TileLeaf
		decodeErr error
		lastBad   *[32]byte
	)
	seen, err := s.f.use(ctx, u, func(body []byte) error {
		leaves, decodeErr = record.DecodeTile(body)
		if decodeErr == nil && len(leaves) >= need {
			copyCerts(leaves)
			return nil
		}
		sum := sha256.Sum256(body)
		if lastBad != nil && *lastBad == sum {
			copyCerts(leaves)
			return nil // the same bytes again: the tile itself is malformed
		}
		lastBad = &sum
		if decodeErr != nil {
			return retryableError{fmt.Errorf("decode tile: %w", decodeErr)}
		}
		return retryableError{fmt.Errorf("tile has %d leaves, want at least %d", len(leaves), need)}
	})
	if err != nil {
		return nil, nil, time.Time{}, err // leaves would alias the body
	}
	return leaves, decodeErr, seen, nil
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

// fetchIssuer fetches <prefix>/issuer/<hex fingerprint> and checks that the
// body hashes to the fingerprint.
func (s *static) fetchIssuer(ctx context.Context, fp [32]byte) ([]byte, error) {
	u := s.log.URL + "/issuer/" + hex.EncodeToString(fp[:])
	body, _, err := s.f.get(ctx, u, func(body []byte) error {
		if sha256.Sum256(body) != fp {
			return errIssuerMismatch
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
