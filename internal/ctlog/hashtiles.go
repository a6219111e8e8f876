package ctlog

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/singleflight"

	"github.com/certlake/certlake/internal/record"
	"github.com/certlake/certlake/internal/sha256x2"
)

// tileHeight is the height of static-ct-api tiles: 256 hashes each.
const tileHeight = 8

// provenTree is a verified tree head with the hash tiles of its right edge
// (the partial tiles, and the tiles holding the roots of its largest
// perfect subtrees), authenticated against its root when it was built.
// It is read-only once built.
type provenTree struct {
	tree tlog.Tree
	edge map[tlog.Tile][]byte
}

// hashTiles proves static-ct-api data tiles against a verified checkpoint
// through the log's hash tiles (c2sp.org/static-ct-api, tlog-tiles): the
// leaf hashes of a data tile must equal its level-0 hash tile, whose own
// hash is found in its authenticated parent tile, up to the tiles of the
// tree's right edge, which are authenticated against the root. Parent
// tiles are kept (bounded in bytes), so a tile of 256 entries costs one
// request of 8 KiB and 511 hashes. It is safe for concurrent use.
type hashTiles struct {
	fetch func(ctx context.Context, t tlog.Tile) ([]byte, error)
	max   int // bytes of full tiles kept
	// flight makes the workers that need one tile at once (the level-1
	// tile above their data tiles, at the start of a range) share one
	// fetch of it.
	flight singleflight.Group

	mu    sync.Mutex
	trees map[tlog.Tree]*provenTree // the few most recent; guarded by mu
	full  map[tlog.Tile]*list.Element
	lru   *list.List // of tileData, front most recent; guarded by mu
	bytes int        // guarded by mu
}

type tileData struct {
	t    tlog.Tile
	data []byte
}

func newHashTiles(maxBytes int, fetch func(context.Context, tlog.Tile) ([]byte, error)) *hashTiles {
	return &hashTiles{fetch: fetch, max: maxBytes, trees: map[tlog.Tree]*provenTree{},
		full: map[tlog.Tile]*list.Element{}, lru: list.New()}
}

// prove returns tree with its edge tiles authenticated, fetching them the
// first time.
func (h *hashTiles) prove(ctx context.Context, log string, tree tlog.Tree) (*provenTree, error) {
	h.mu.Lock()
	pt := h.trees[tree]
	h.mu.Unlock()
	if pt != nil {
		return pt, nil
	}
	pt = &provenTree{tree: tree, edge: map[tlog.Tile][]byte{}}
	tr := &edgeReader{ctx: ctx, h: h, pt: pt}
	// With no index asked for, the reader fetches the tiles needed for the
	// tree hash and saves them only if they give the root.
	if _, err := tlog.TileHashReader(tree, tr).ReadHashes(nil); err != nil {
		if tr.err != nil {
			return nil, tr.err
		}
		return nil, verificationErr(log, "hash tiles of the tree of size %d do not give its root: %v", tree.N, err)
	}
	h.mu.Lock()
	if len(h.trees) >= 4 {
		clear(h.trees)
	}
	h.trees[tree] = pt
	h.mu.Unlock()
	return pt, nil
}

// edgeReader is the tlog.TileReader of prove.
type edgeReader struct {
	ctx context.Context
	h   *hashTiles
	pt  *provenTree
	err error // the fetch error, as opposed to a verification failure
}

func (r *edgeReader) Height() int { return tileHeight }

func (r *edgeReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	for i, t := range tiles {
		d, err := r.h.fetch(r.ctx, t)
		if err != nil {
			r.err = err
			return nil, err
		}
		data[i] = d
	}
	return data, nil
}

func (r *edgeReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {
	for i, t := range tiles {
		r.pt.edge[t] = data[i]
	}
}

// consistent proves that the tree of old is a prefix of the tree of cur
// (a checkpoint read after old): the hashes of a consistency proof (RFC
// 6962 section 2.1.2, as tlog.ProveTree builds it) are read from hash
// tiles authenticated against cur's root, and must lead to old's root.
// Tiles that do not authenticate are a verification failure; a proof that
// does not hold is misbehaviour, since both heads carry the log's
// signature: the log forked its tree.
func (h *hashTiles) consistent(ctx context.Context, log string, old, cur treeHead) error {
	tr := &cachedTileReader{ctx: ctx, h: h}
	hr := tlog.TileHashReader(tlog.Tree{N: int64(cur.size), Hash: cur.root}, tr)
	p, err := tlog.ProveTree(int64(cur.size), int64(old.size), hr)
	if err != nil {
		if tr.err != nil {
			return tr.err
		}
		return verificationErr(log, "hash tiles of the tree of size %d do not give its root: %v", cur.size, err)
	}
	if err := tlog.CheckTree(p, int64(cur.size), cur.root, int64(old.size), old.root); err != nil {
		return misbehaviour(log, "checkpoints of sizes %d and %d are not consistent (the log forked its tree): %v", old.size, cur.size, err)
	}
	return nil
}

// cachedTileReader is the tlog.TileReader of consistent: full tiles above
// level 0 come from the cache when there (tlog authenticates every tile it
// reads against the tree anyway), and those it authenticated are kept.
type cachedTileReader struct {
	ctx context.Context
	h   *hashTiles
	err error // the fetch error, as opposed to a verification failure
}

func (r *cachedTileReader) Height() int { return tileHeight }

func (r *cachedTileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	for i, t := range tiles {
		if d, ok := r.h.cached(t); ok {
			data[i] = d
			continue
		}
		d, err := r.h.fetch(r.ctx, t)
		if err != nil {
			r.err = err
			return nil, err
		}
		data[i] = d
	}
	return data, nil
}

func (r *cachedTileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {
	for i, t := range tiles {
		if t.L > 0 && t.W == 1<<tileHeight {
			r.h.keep(t, data[i])
		}
	}
}

// level0 returns the authenticated level-0 hashes of data tile n of pt's
// tree: 256 of them, or fewer for the tree's partial last tile.
func (h *hashTiles) level0(ctx context.Context, log string, pt *provenTree, n uint64) ([]byte, error) {
	return h.tile(ctx, log, pt, tileOf(uint64(pt.tree.N), 0, n))
}

// subtreeRoot returns the authenticated root of the perfect subtree of
// full data tile n of pt's tree: its hash in the level-1 tile above it.
func (h *hashTiles) subtreeRoot(ctx context.Context, log string, pt *provenTree, n uint64) (tlog.Hash, error) {
	parent, err := h.tile(ctx, log, pt, tileOf(uint64(pt.tree.N), 1, n>>tileHeight))
	if err != nil {
		return tlog.Hash{}, err
	}
	k := int(n%(1<<tileHeight)) * tlog.HashSize
	if k+tlog.HashSize > len(parent) {
		return tlog.Hash{}, verificationErr(log, "data tile %d has no hash in its parent tile", n)
	}
	return tlog.Hash(parent[k : k+tlog.HashSize]), nil
}

// tileOf returns tile n of level l in a tree of size size, with its width.
func tileOf(size uint64, l int, n uint64) tlog.Tile {
	count := size >> (uint(l) * tileHeight) // hashes at this tile level
	w := min(uint64(1)<<tileHeight, count-n<<tileHeight)
	return tlog.Tile{H: tileHeight, L: l, N: int64(n), W: int(w)}
}

// tile returns the authenticated data of tile t of pt's tree.
func (h *hashTiles) tile(ctx context.Context, log string, pt *provenTree, t tlog.Tile) ([]byte, error) {
	if d, ok := pt.edge[t]; ok {
		return d, nil
	}
	if t.W < 1<<tileHeight {
		return nil, verificationErr(log, "partial tile %s of the tree of size %d is not on its edge", tilePath(t), pt.tree.N)
	}
	if d, ok := h.cached(t); ok {
		return d, nil
	}
	data, err := h.fetchShared(ctx, t)
	if err != nil {
		return nil, err
	}
	parent, err := h.tile(ctx, log, pt, tileOf(uint64(pt.tree.N), t.L+1, uint64(t.N)>>tileHeight))
	if err != nil {
		return nil, err
	}
	k := int(t.N%(1<<tileHeight)) * tlog.HashSize
	if k+tlog.HashSize > len(parent) {
		return nil, verificationErr(log, "tile %s has no hash in its parent tile", tilePath(t))
	}
	if root := tileRoot(data); string(root[:]) != string(parent[k:k+tlog.HashSize]) {
		return nil, verificationErr(log, "hash tile %s does not match its parent in the tree of size %d", tilePath(t), pt.tree.N)
	}
	if t.L > 0 { // level-0 tiles serve one data tile: not worth keeping
		h.keep(t, data)
	}
	return data, nil
}

// fetchShared fetches full tile t once for the callers that ask for it at
// the same time (each then authenticates it against its own tree). A
// caller whose own context is alive fetches again if the shared fetch
// ended with another caller's context.
func (h *hashTiles) fetchShared(ctx context.Context, t tlog.Tile) ([]byte, error) {
	v, err, _ := h.flight.Do(tilePath(t), func() (any, error) { return h.fetch(ctx, t) })
	if err != nil && ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return h.fetch(ctx, t)
	}
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

func (h *hashTiles) cached(t tlog.Tile) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if el, ok := h.full[t]; ok {
		h.lru.MoveToFront(el)
		return el.Value.(tileData).data, true
	}
	return nil, false
}

func (h *hashTiles) keep(t tlog.Tile, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.full[t]; ok {
		return
	}
	h.full[t] = h.lru.PushFront(tileData{t, data})
	h.bytes += len(data)
	for h.bytes > h.max && h.lru.Len() > 0 {
		old := h.lru.Remove(h.lru.Back()).(tileData)
		delete(h.full, old.t)
		h.bytes -= len(old.data)
	}
}

// tileRoot is the root of the perfect subtree whose leaves (or subtree
// roots) a full tile holds.
func tileRoot(data []byte) tlog.Hash {
	var hs [1 << tileHeight]tlog.Hash
	n := len(data) / tlog.HashSize
	for i := range n {
		copy(hs[i][:], data[i*tlog.HashSize:])
	}
	var th treeHasher
	return reduceRoot(hs[:n], &th)
}

// reduceRoot hashes hs (a power of two of them) pairwise up to their
// root, in place, two nodes at a time.
func reduceRoot(hs []tlog.Hash, th *treeHasher) tlog.Hash {
	for n := len(hs); n > 1; n /= 2 {
		i := 0
		for ; i+1 < n/2; i += 2 {
			th.node2(&hs[2*i], &hs[2*i+1], &hs[2*i+2], &hs[2*i+3], &hs[i], &hs[i+1])
		}
		if i < n/2 {
			hs[i] = th.node(&hs[2*i], &hs[2*i+1])
		}
	}
	return hs[0]
}

// tilePath is the static-ct-api path of hash tile t (tile/<L>/<N>[.p/<W>]).
func tilePath(t tlog.Tile) string {
	p := "tile/" + strconv.Itoa(t.L) + "/" + record.TilePath(uint64(t.N))
	if t.W < 1<<tileHeight {
		p += ".p/" + strconv.Itoa(t.W)
	}
	return p
}

// fetchHashTile fetches hash tile t. A partial tile that is gone (the log
// grew) is read from the full tile, whose first W hashes are the same.
func (s *static) fetchHashTile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	want := t.W * tlog.HashSize
	check := func(body []byte) error {
		if len(body) < want {
			return retryableError{fmt.Errorf("hash tile of %d bytes, want %d", len(body), want)}
		}
		return nil
	}
	body, _, err := s.f.getCapped(ctx, s.log.URL+"/"+tilePath(t), int64(1<<tileHeight*tlog.HashSize), check)
	if errors.Is(err, ErrNotFound) && t.W < 1<<tileHeight {
		full := t
		full.W = 1 << tileHeight
		body, _, err = s.f.getCapped(ctx, s.log.URL+"/"+tilePath(full), int64(1<<tileHeight*tlog.HashSize), check)
	}
	if err != nil {
		return nil, err
	}
	if len(body) != want && t.W == 1<<tileHeight || len(body) > 1<<tileHeight*tlog.HashSize {
		return nil, verificationErr(s.log.URL, "hash tile %s has %d bytes, want %d", tilePath(t), len(body), want)
	}
	return body[:want:want], nil
}

// treeHasher computes RFC 6962 leaf hashes, SHA-256(0x00 || MerkleTreeLeaf),
// and interior node hashes, SHA-256(0x01 || left || right), two at a time
// where the caller has two (internal/sha256x2: on CPUs with SHA
// extensions a pair costs about half of two hashes one by one). Its
// buffers are reused, so a hash allocates nothing; its zero value is ready.
type treeHasher struct{ h sha256x2.Hasher }

// timestampedPrefix is the start of a timestamped entry's leaf hash input:
// the leaf hash prefix, then the MerkleTreeLeaf's version v1 and leaf type
// timestamped_entry.
var (
	leafPrefix        = []byte{0x00}
	timestampedPrefix = []byte{0x00, 0x00, 0x00}
)

// timestamped hashes a MerkleTreeLeaf of version v1 and type
// timestamped_entry around te, a TimestampedEntry.
func (l *treeHasher) timestamped(te []byte) tlog.Hash {
	var h tlog.Hash
	l.h.Sum(timestampedPrefix, te, (*[sha256x2.Size]byte)(&h))
	return h
}

// timestamped2 is timestamped of two entries, into *ha and *hb.
func (l *treeHasher) timestamped2(a, b []byte, ha, hb *tlog.Hash) {
	l.h.Sum2(timestampedPrefix, a, b, (*[sha256x2.Size]byte)(ha), (*[sha256x2.Size]byte)(hb))
}

// leaf hashes a whole MerkleTreeLeaf.
func (l *treeHasher) leaf(mtl []byte) tlog.Hash {
	var h tlog.Hash
	l.h.Sum(leafPrefix, mtl, (*[sha256x2.Size]byte)(&h))
	return h
}

// leaf2 is leaf of two MerkleTreeLeafs, into *ha and *hb.
func (l *treeHasher) leaf2(a, b []byte, ha, hb *tlog.Hash) {
	l.h.Sum2(leafPrefix, a, b, (*[sha256x2.Size]byte)(ha), (*[sha256x2.Size]byte)(hb))
}

// node hashes the interior node whose children are left and right.
func (l *treeHasher) node(left, right *tlog.Hash) tlog.Hash {
	var h tlog.Hash
	l.h.Node((*[sha256x2.Size]byte)(left), (*[sha256x2.Size]byte)(right), (*[sha256x2.Size]byte)(&h))
	return h
}

// node2 hashes two interior nodes, into *d1 and *d2, which may be any of
// the children.
func (l *treeHasher) node2(l1, r1, l2, r2, d1, d2 *tlog.Hash) {
	l.h.Node2((*[sha256x2.Size]byte)(l1), (*[sha256x2.Size]byte)(r1), (*[sha256x2.Size]byte)(l2),
		(*[sha256x2.Size]byte)(r2), (*[sha256x2.Size]byte)(d1), (*[sha256x2.Size]byte)(d2))
}
