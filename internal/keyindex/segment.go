package keyindex

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
)

// A segment is a set of entries in one immutable file:
//
//	"certlake-keyindex" formatVersion(uvarint) tableID(str)
//	urls: count(uvarint) str...
//	files: count(uvarint) { path(str) size(uvarint) rows(uvarint)
//	       logs: count(uvarint) { url position(uvarint) bitmap length(uvarint)
//	       bitmap (roaring64 portable serialization) } }
//	CRC-32C of everything before it (4 bytes, little endian)
//
// where str is a uvarint length and the bytes. URLs are listed once: every
// file of a main table names the same logs. The checksum makes a torn or
// altered segment unreadable rather than wrong.

// segmentSuffix names this format's segments. Segments of the format
// before it (per-log ranges, "*.json.gz") are recognised and dropped.
const (
	segmentSuffix    = ".kix"
	oldSegmentSuffix = ".json.gz"
	segmentMagic     = "certlake-keyindex"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func encodeSegment(tableID string, files []File) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(segmentMagic)
	b.Write(binary.AppendUvarint(nil, formatVersion))
	putString(&b, tableID)
	pos := map[string]uint64{}
	var urls []string
	for _, f := range files {
		for u := range f.Keys {
			if _, ok := pos[u]; !ok {
				pos[u] = uint64(len(urls))
				urls = append(urls, u)
			}
		}
	}
	putUvarint(&b, uint64(len(urls)))
	for _, u := range urls {
		putString(&b, u)
	}
	putUvarint(&b, uint64(len(files)))
	for _, f := range files {
		putString(&b, f.Path)
		putUvarint(&b, uint64(f.Size))
		putUvarint(&b, uint64(f.Rows))
		putUvarint(&b, uint64(len(f.Keys)))
		for _, u := range f.urls() {
			bm := f.Keys[u]
			putUvarint(&b, pos[u])
			putUvarint(&b, bm.GetSerializedSizeInBytes())
			if _, err := bm.WriteTo(&b); err != nil {
				return nil, fmt.Errorf("encode key set of %s in %s: %w", u, f.Path, err)
			}
		}
	}
	b.Write(binary.LittleEndian.AppendUint32(nil, crc32.Checksum(b.Bytes(), castagnoli)))
	return b.Bytes(), nil
}

var errCorrupt = errors.New("key index segment is corrupt")

// decodeSegment parses a segment; it never panics on bad input.
func decodeSegment(data []byte) (tableID string, files []File, err error) {
	if len(data) < len(segmentMagic)+4 || string(data[:len(segmentMagic)]) != segmentMagic {
		return "", nil, errCorrupt
	}
	body := data[:len(data)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return "", nil, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	r := &reader{b: body[len(segmentMagic):]}
	if v := r.uvarint(); v != formatVersion {
		return "", nil, fmt.Errorf("key index segment format %d, want %d", v, formatVersion)
	}
	tableID = r.str()
	urls := make([]string, r.count())
	for i := range urls {
		urls[i] = r.str()
	}
	n := r.count()
	for range n {
		if r.err != nil {
			break
		}
		f := File{Path: r.str(), Size: int64(r.uvarint()), Rows: int64(r.uvarint()), Keys: Keys{}}
		for range r.count() {
			p, size := r.uvarint(), r.uvarint()
			raw := r.bytes(size)
			if r.err != nil {
				break
			}
			if p >= uint64(len(urls)) {
				return "", nil, fmt.Errorf("%w: url position %d of %d", errCorrupt, p, len(urls))
			}
			bm := roaring64.New()
			if err := bm.UnmarshalBinary(raw); err != nil {
				return "", nil, fmt.Errorf("%w: key set of %s in %s: %v", errCorrupt, urls[p], f.Path, err)
			}
			f.Keys[urls[p]] = bm
		}
		files = append(files, f)
	}
	if r.err != nil {
		return "", nil, r.err
	}
	if len(r.b) != 0 {
		return "", nil, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(r.b))
	}
	return tableID, files, nil
}

func putUvarint(b *bytes.Buffer, v uint64) { b.Write(binary.AppendUvarint(nil, v)) }

func putString(b *bytes.Buffer, s string) {
	putUvarint(b, uint64(len(s)))
	b.WriteString(s)
}

// reader decodes a segment; the first error sticks and later reads return
// zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = fmt.Errorf("%w: bad varint", errCorrupt)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a length that must fit in what is left (each item takes at
// least a byte), so a corrupt count cannot make a huge allocation.
func (r *reader) count() int {
	v := r.uvarint()
	if v > uint64(len(r.b)) {
		r.err = cmpErr(r.err, fmt.Errorf("%w: count %d past the end", errCorrupt, v))
		return 0
	}
	return int(v)
}

func (r *reader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) || n > math.MaxInt {
		r.err = fmt.Errorf("%w: length %d past the end", errCorrupt, n)
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) str() string { return string(r.bytes(r.uvarint())) }

func cmpErr(old, e error) error {
	if old != nil {
		return old
	}
	return e
}
