package lake

import (
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/certlake/certlake/internal/pqwrite"
)

// BufferPool keeps the large buffers that Writers fill and empty again and
// again: row batches (with their base64 text chunks) and the
// file sinks' write chunks. A backfill makes a Writer per range and per
// commit; without the pool each Writer grows its buffers from nothing, and
// that growth (fresh pages, copies, clearing, then GC) cost more CPU than
// encoding the rows. The pool is bounded, so an idle Table holds at most
// maxPooledBatches batches and maxPooledChunks chunks. A Table has its own
// unless Options.Buffers gives one shared by many Tables (a worker whose
// activities each open the table they write). A nil *BufferPool pools
// nothing. It also holds the zstd encoders, one per level, which every
// file shares (an encoder allocates its windows once, and EncodeAll is
// safe for concurrent use). It is safe for concurrent use.
type BufferPool struct {
	batches chan *batch
	chunks  chan []byte
	pages   *pqwrite.Pool // column chunk segments
	files   chan *pqwrite.Writer

	mu       sync.Mutex
	encoders map[int]*zstd.Encoder
}

// Bounds of a BufferPool. A Writer holds about three batches at a time
// (one filling, one queued, one being encoded) and a sink two or three
// chunks; the bounds cover a few concurrent Writers, as a backfill worker
// runs.
const (
	maxPooledBatches = 12
	maxPooledChunks  = 12
	// Idle column chunk segments (256 KiB each): 64 MiB, half of what
	// one Writer's open row groups may hold (WriterOptions.RowGroupBytes).
	maxPooledSegments = 256
	// Idle file encoders, each keeping its columns' page buffers (a few
	// MB): as many as a worker writes files at once, about.
	maxPooledFileWriters = 4
)

// NewBufferPool returns an empty pool.
func NewBufferPool() *BufferPool {
	return &BufferPool{
		batches: make(chan *batch, maxPooledBatches),
		chunks:  make(chan []byte, maxPooledChunks),
		pages:   pqwrite.NewPool(maxPooledSegments),
		files:   make(chan *pqwrite.Writer, maxPooledFileWriters),
	}
}

// getBatch returns an empty batch for a table whose as_der is binary or not.
func (p *BufferPool) getBatch(asBinary bool) *batch {
	for p != nil {
		select {
		case b := <-p.batches:
			if b.asBinary == asBinary {
				return b
			}
			// From before the table's as_der type changed: drop it.
		default:
			return newBatch(asBinary)
		}
	}
	return newBatch(asBinary)
}

// putBatch takes back a batch, which must have been reset.
func (p *BufferPool) putBatch(b *batch) {
	if p == nil {
		return
	}
	select {
	case p.batches <- b:
	default:
	}
}

// getChunk returns an empty sink chunk of capacity chunkSize.
func (p *BufferPool) getChunk() []byte {
	if p != nil {
		select {
		case c := <-p.chunks:
			return c
		default:
		}
	}
	return make([]byte, 0, chunkSize)
}

// putChunk takes back a sink chunk.
func (p *BufferPool) putChunk(c []byte) {
	if p == nil || cap(c) != chunkSize {
		return
	}
	select {
	case p.chunks <- c[:0]:
	default:
	}
}

// zstd returns the pool's zstd encoder at level, making it on first use.
// A nil pool makes a new one each time.
func (p *BufferPool) zstd(level int) (*zstd.Encoder, error) {
	if p == nil {
		return newZstd(level)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.encoders[level]; e != nil {
		return e, nil
	}
	e, err := newZstd(level)
	if err != nil {
		return nil, err
	}
	if p.encoders == nil {
		p.encoders = make(map[int]*zstd.Encoder)
	}
	p.encoders[level] = e
	return e, nil
}

func newZstd(level int) (*zstd.Encoder, error) {
	e, err := pqwrite.NewZstd(level)
	if err != nil {
		return nil, fmt.Errorf("zstd encoder at level %d: %w", level, err)
	}
	return e, nil
}

// pagePool returns the pool's column chunk segments (nil for a nil pool).
func (p *BufferPool) pagePool() *pqwrite.Pool {
	if p == nil {
		return nil
	}
	return p.pages
}

// getFileWriter returns a file encoder with columns cols writing to out,
// reusing an idle one when its columns match.
func (p *BufferPool) getFileWriter(out io.Writer, cols []pqwrite.Column, opts pqwrite.Options) (*pqwrite.Writer, error) {
	for p != nil {
		select {
		case fw := <-p.files:
			if slices.Equal(fw.Columns(), cols) && sameOptions(fw.Options(), opts) {
				return fw, fw.Reset(out)
			}
			// Another table's layout: drop it.
			continue
		default:
		}
		break
	}
	return pqwrite.NewWriter(out, cols, opts)
}

// sameOptions: o, as a Writer reports it (defaults filled in), is what
// NewWriter makes of opts.
func sameOptions(o, opts pqwrite.Options) bool {
	return o.CreatedBy == opts.CreatedBy && o.Zstd == opts.Zstd && o.Pool == opts.Pool &&
		(opts.PageBytes == 0 || o.PageBytes == opts.PageBytes) &&
		(opts.DictionaryBytes == 0 || o.DictionaryBytes == opts.DictionaryBytes)
}

// putFileWriter takes back a file encoder whose file is closed.
func (p *BufferPool) putFileWriter(fw *pqwrite.Writer) {
	if p == nil {
		return
	}
	select {
	case p.files <- fw:
	default:
	}
}
