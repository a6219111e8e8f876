package lake

import (
	"io"
	"sync"
)

// Chunking of asyncSink: chunkSize bytes per write(2), at most sinkQueue
// chunks waiting, so a sink holds at most (sinkQueue+2)*chunkSize bytes.
const (
	chunkSize = 4 << 20
	sinkQueue = 4
)

// asyncSink buffers writes into large chunks and writes them to w from its
// own goroutine. Ending a row group copies tens of MB of column chunks to
// the file; with the sink the encoder pays for a memory copy and goes on
// encoding while the kernel takes the data. Write errors are reported by
// Close. Write is not safe for concurrent use.
type asyncSink struct {
	w     io.Writer
	pool  *BufferPool // where chunks come from and go back to; may be nil
	buf   []byte
	queue chan []byte
	free  chan []byte
	done  chan struct{}
	err   error // set by the writer goroutine; read after done
	once  sync.Once
}

func newAsyncSink(w io.Writer, pool *BufferPool) *asyncSink {
	s := &asyncSink{
		w:     w,
		pool:  pool,
		buf:   pool.getChunk(),
		queue: make(chan []byte, sinkQueue),
		free:  make(chan []byte, 2),
		done:  make(chan struct{}),
	}
	go s.run()
	return s
}

func (s *asyncSink) run() {
	defer close(s.done)
	for b := range s.queue {
		if s.err == nil {
			_, s.err = s.w.Write(b)
		}
		select {
		case s.free <- b[:0]:
		default:
			s.pool.putChunk(b)
		}
	}
}

// Write copies p into the sink.
func (s *asyncSink) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		c := copy(s.buf[len(s.buf):cap(s.buf)], p)
		s.buf = s.buf[:len(s.buf)+c]
		p = p[c:]
		if len(s.buf) == cap(s.buf) {
			s.queue <- s.buf
			select {
			case s.buf = <-s.free:
			default:
				s.buf = s.pool.getChunk()
			}
		}
	}
	return n, nil
}

// Close writes what is buffered, waits for the writer goroutine and returns
// the first write error. It is safe to call more than once.
func (s *asyncSink) Close() error {
	s.once.Do(func() {
		if len(s.buf) > 0 {
			s.queue <- s.buf
		} else {
			s.pool.putChunk(s.buf)
		}
		s.buf = nil
		close(s.queue)
		<-s.done
		for len(s.free) > 0 {
			s.pool.putChunk(<-s.free)
		}
	})
	<-s.done
	return s.err
}
