package lake

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

type failAfter struct {
	n   int
	err error
}

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	f.n--
	return len(p), nil
}

func TestAsyncSink(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, sizes := range [][]int{
		{},
		{1},
		{chunkSize},
		{chunkSize - 1, 2, chunkSize + 5},
		{3 * chunkSize, 10, 0, 7},
	} {
		var out, want bytes.Buffer
		s := newAsyncSink(&out, nil)
		for _, n := range sizes {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(r.Uint32())
			}
			want.Write(p)
			if got, err := s.Write(p); got != n || err != nil {
				t.Fatalf("Write(%d bytes) = %d, %v", n, got, err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if !bytes.Equal(out.Bytes(), want.Bytes()) {
			t.Errorf("writes of %v: sink wrote %d bytes, want the %d written", sizes, out.Len(), want.Len())
		}
	}

	boom := errors.New("disk full")
	s := newAsyncSink(&failAfter{n: 1, err: boom}, NewBufferPool())
	for range 4 {
		s.Write(make([]byte, chunkSize))
	}
	if err := s.Close(); !errors.Is(err, boom) {
		t.Errorf("Close after a failed write = %v, want %v", err, boom)
	}
	if err := s.Close(); !errors.Is(err, boom) {
		t.Errorf("second Close = %v, want %v", err, boom)
	}
}
