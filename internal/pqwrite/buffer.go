package pqwrite

import "io"

// segmentSize is the size of the segments column chunks are buffered in.
// A chunk grows by whole segments, so its pages are never copied to grow
// it (a row group's as_der chunk is tens of MB).
const segmentSize = 256 << 10

// Pool keeps segments for reuse by Writers, which would otherwise allocate
// (and clear) a column chunk's memory for every row group. It holds at most
// maxSegments idle segments. A nil *Pool allocates every segment. It is
// safe for concurrent use.
type Pool struct {
	segs chan []byte
}

// NewPool returns a pool keeping up to maxSegments idle segments of
// 256 KiB.
func NewPool(maxSegments int) *Pool {
	return &Pool{segs: make(chan []byte, maxSegments)}
}

func (p *Pool) get() []byte {
	if p != nil {
		select {
		case s := <-p.segs:
			return s
		default:
		}
	}
	return make([]byte, 0, segmentSize)
}

func (p *Pool) put(s []byte) {
	if p == nil || cap(s) != segmentSize {
		return
	}
	select {
	case p.segs <- s[:0]:
	default:
	}
}

// segBuf is an append-only byte buffer made of segments.
type segBuf struct {
	segs [][]byte
	n    int
}

func (b *segBuf) write(pool *Pool, p []byte) {
	b.n += len(p)
	for len(p) > 0 {
		if len(b.segs) == 0 || len(b.segs[len(b.segs)-1]) == segmentSize {
			b.segs = append(b.segs, pool.get())
		}
		last := &b.segs[len(b.segs)-1]
		c := copy((*last)[len(*last):segmentSize], p)
		*last = (*last)[:len(*last)+c]
		p = p[c:]
	}
}

// writeTo writes the buffer to w.
func (b *segBuf) writeTo(w io.Writer) (int64, error) {
	var n int64
	for _, s := range b.segs {
		m, err := w.Write(s)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// reset returns the segments to pool.
func (b *segBuf) reset(pool *Pool) {
	for _, s := range b.segs {
		pool.put(s)
	}
	clear(b.segs)
	b.segs, b.n = b.segs[:0], 0
}
