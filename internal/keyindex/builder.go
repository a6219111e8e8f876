package keyindex

import (
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/RoaringBitmap/roaring/v2/roaring64"
	"github.com/parquet-go/parquet-go/encoding"
)

// builder accumulates a file's keys per log as runs of consecutive
// indices, and turns them into bitmaps in bulk: adding runs one by one to
// a roaring bitmap merges each into its container (a copy of the
// container per run), which cost more than reading the file.
type builder struct {
	byURL map[string]int32
	names []string
	logs  []logRuns
	words []uint64 // scratch for dense building
	ident []int32  // 0, 1, 2, ...: see identity
}

// maxRuns is the runs a log holds before they go into its bitmap, so that
// a file of scattered keys takes bounded memory.
const maxRuns = 1 << 16

type logRuns struct {
	bm         *roaring64.Bitmap
	runs       []run
	start, end uint64 // current run [start, end), empty when equal
}

type run struct{ start, end uint64 }

func newBuilder() *builder { return &builder{byURL: map[string]int32{}} }

// identity is the table of log ids of a page of plain strings, whose
// codes are log ids already.
func (b *builder) identity() []int32 {
	for len(b.ident) < len(b.names) {
		b.ident = append(b.ident, int32(len(b.ident)))
	}
	return b.ident
}

func (b *builder) urlID(u []byte) int32 {
	id, ok := b.byURL[string(u)]
	if !ok {
		id = int32(len(b.names))
		b.names = append(b.names, string(u))
		b.byURL[string(u)] = id
		b.logs = append(b.logs, logRuns{bm: roaring64.New()})
	}
	return id
}

// idsOf appends the log id of each value of a BYTE_ARRAY page to dst.
func (b *builder) idsOf(dst []int32, v *encoding.Values) []int32 {
	data, offsets := v.ByteArray()
	for i := 0; i+1 < len(offsets); i++ {
		dst = append(dst, b.urlID(data[offsets[i]:offsets[i+1]]))
	}
	return dst
}

// addRows adds rows of source_url and cert_index (no nulls: codes index
// table, which holds log ids) and returns the rows holding a key.
func (b *builder) addRows(codes, table []int32, idx []int64) int64 {
	idx = idx[:len(codes)]
	logs, negative := b.logs, 0
	for i, code := range codes {
		x := uint64(idx[i])
		if int64(x) < 0 {
			negative++
			continue
		}
		// An empty run [end, end) grows as well as a started one.
		if l := &logs[table[code]]; x == l.end {
			l.end++
		} else {
			l.add(x, b)
		}
	}
	return int64(len(codes) - negative)
}

// addNullable adds the next n rows of two columns of which one holds
// nulls in its page, and advances both.
func (b *builder) addNullable(url, idx *column, n int) int64 {
	var rows int64
	for range n {
		okU := url.defs == nil || int(url.defs[url.row]) == url.leaf.MaxDefinitionLevel
		okI := idx.defs == nil || int(idx.defs[idx.row]) == idx.leaf.MaxDefinitionLevel
		url.row++
		idx.row++
		var id int32
		var x int64
		if okU {
			id = url.table[url.ids[url.v]]
			url.v++
		}
		if okI {
			x = idx.ints[idx.v]
			idx.v++
		}
		if okU && okI && x >= 0 {
			rows++
			if l := &b.logs[id]; uint64(x) == l.end {
				l.end++
			} else {
				l.add(uint64(x), b)
			}
		}
	}
	return rows
}

// add starts a new run at x, ending the current one.
func (l *logRuns) add(x uint64, b *builder) {
	if l.end > l.start {
		l.runs = append(l.runs, run{l.start, l.end})
		if len(l.runs) >= maxRuns {
			b.flush(l)
		}
	}
	l.start, l.end = x, x+1 // x < 2^63: keys are read as int64
}

// flush moves a log's runs into its bitmap.
func (b *builder) flush(l *logRuns) {
	if len(l.runs) == 0 {
		return
	}
	lo, hi, n := uint64(1<<64-1), uint64(0), uint64(0)
	for _, r := range l.runs {
		lo, hi, n = min(lo, r.start), max(hi, r.end), n+r.end-r.start
	}
	base := lo &^ 0xFFFF
	span := hi - base
	if hi <= 1<<32 && span/64 <= max(n, 1<<16) {
		l.bm.Or(b.dense(base, span, l.runs))
	} else {
		// Scattered keys: few to a container, so adding runs one by one
		// is cheap.
		slices.SortFunc(l.runs, func(a, b run) int {
			switch {
			case a.start < b.start:
				return -1
			case a.start > b.start:
				return 1
			}
			return 0
		})
		for _, r := range l.runs {
			l.bm.AddRange(r.start, r.end)
		}
	}
	l.runs = l.runs[:0]
}

// dense builds the bitmap of runs lying in [base, base+span) (base a
// multiple of 2^16, base+span at most 2^32) from a bit array.
func (b *builder) dense(base, span uint64, runs []run) *roaring64.Bitmap {
	words := grow(b.words, int((span+63)/64))
	clear(words)
	b.words = words
	for _, r := range runs {
		setBits(words, r.start-base, r.end-base)
	}
	bm := roaring.FromDense(words, true)
	if base > 0 {
		bm = roaring.AddOffset64(bm, int64(base))
	}
	return roaring64.Roaring32AsRoaring64(bm)
}

// setBits sets bits [lo, hi) of words.
func setBits(words []uint64, lo, hi uint64) {
	for lo < hi {
		w, bit := lo/64, lo%64
		n := min(64-bit, hi-lo)
		mask := ^uint64(0)
		if n < 64 {
			mask = (1<<n - 1) << bit
		}
		words[w] |= mask
		lo += n
	}
}

func (b *builder) keys() Keys {
	out := Keys{}
	for i := range b.logs {
		l := &b.logs[i]
		if l.end > l.start {
			l.runs = append(l.runs, run{l.start, l.end})
			l.start, l.end = 0, 0
		}
		b.flush(l)
		if l.bm.IsEmpty() {
			continue
		}
		l.bm.RunOptimize()
		out[b.names[i]] = l.bm
	}
	return out
}
