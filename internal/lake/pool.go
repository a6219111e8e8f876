package lake

// BufferPool keeps the large buffers that Writers fill and empty again and
// again: row batches (with their base64 text chunks) and the
// file sinks' write chunks. A backfill makes a Writer per range and per
// commit; without the pool each Writer grows its buffers from nothing, and
// that growth (fresh pages, copies, clearing, then GC) cost more CPU than
// encoding the rows. The pool is bounded, so an idle Table holds at most
// maxPooledBatches batches and maxPooledChunks chunks. A Table has its own
// unless Options.Buffers gives one shared by many Tables (a worker whose
// activities each open the table they write). A nil *BufferPool pools
// nothing. It is safe for concurrent use.
type BufferPool struct {
	batches chan *batch
	chunks  chan []byte
}

// Bounds of a BufferPool. A Writer holds about three batches at a time
// (one filling, one queued, one being encoded) and a sink two or three
// chunks; the bounds cover a few concurrent Writers, as a backfill worker
// runs.
const (
	maxPooledBatches = 12
	maxPooledChunks  = 12
)

// NewBufferPool returns an empty pool.
func NewBufferPool() *BufferPool {
	return &BufferPool{
		batches: make(chan *batch, maxPooledBatches),
		chunks:  make(chan []byte, maxPooledChunks),
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
