package sha256x2

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

// hashers are the accelerated Hasher (where the CPU allows) and the
// generic one.
func hashers(t testing.TB) map[string]*Hasher {
	t.Helper()
	hs := map[string]*Hasher{"generic": {generic: true}}
	if accelerated {
		hs["accelerated"] = &Hasher{}
	} else {
		t.Log("this CPU lacks the SHA extensions: only the generic path is tested")
	}
	return hs
}

func want(prefix, body []byte) [Size]byte {
	return sha256.Sum256(append(append([]byte{}, prefix...), body...))
}

// random is n bytes from rng.
func random(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestSumEveryLength(t *testing.T) {
	data := random(rand.New(rand.NewPCG(1, 2)), 700)
	for name, h := range hashers(t) {
		for _, plen := range []int{0, 1, 3, 55, 56, 63, 64, 65, 100} {
			prefix := data[600 : 600+plen]
			for n := 0; n <= 400; n++ {
				var got [Size]byte
				h.Sum(prefix, data[:n], &got)
				if got != want(prefix, data[:n]) {
					t.Fatalf("%s: Sum(prefix of %d, body of %d) wrong", name, plen, n)
				}
			}
		}
	}
}

func TestSum2Pairs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	data := random(rng, 5000)
	for name, h := range hashers(t) {
		for _, plen := range []int{0, 3, 64, 70} {
			prefix := bytes.Repeat([]byte{0x5a}, plen)
			for range 3000 {
				// Lengths around block edges, and large ones, in any pairing.
				la, lb := rng.IntN(300), rng.IntN(300)
				if rng.IntN(4) == 0 {
					la, lb = rng.IntN(len(data)), rng.IntN(len(data))
				}
				oa, ob := rng.IntN(len(data)-la+1), rng.IntN(len(data)-lb+1)
				a, b := data[oa:oa+la], data[ob:ob+lb]
				var da, db [Size]byte
				h.Sum2(prefix, a, b, &da, &db)
				if da != want(prefix, a) || db != want(prefix, b) {
					t.Fatalf("%s: Sum2(prefix of %d, %d bytes, %d bytes) wrong", name, plen, la, lb)
				}
			}
		}
	}
}

func TestNodes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for name, h := range hashers(t) {
		for range 200 {
			var l1, r1, l2, r2 [Size]byte
			for _, x := range []*[Size]byte{&l1, &r1, &l2, &r2} {
				copy(x[:], random(rng, Size))
			}
			w1 := want([]byte{1}, append(l1[:], r1[:]...))
			w2 := want([]byte{1}, append(l2[:], r2[:]...))
			var d [Size]byte
			h.Node(&l1, &r1, &d)
			if d != w1 {
				t.Fatalf("%s: Node wrong", name)
			}
			// The outputs may be the inputs.
			h.Node2(&l1, &r1, &l2, &r2, &l1, &r2)
			if l1 != w1 || r2 != w2 {
				t.Fatalf("%s: Node2 wrong", name)
			}
		}
	}
}

func TestSumAllocatesNothing(t *testing.T) {
	h := &Hasher{}
	prefix, a, b := []byte{0, 0, 0}, make([]byte, 1300), make([]byte, 900)
	var da, db [Size]byte
	if n := testing.AllocsPerRun(100, func() {
		h.Sum2(prefix, a, b, &da, &db)
		h.Node2(&da, &db, &db, &da, &da, &db)
	}); n != 0 {
		t.Fatalf("%v allocations per run", n)
	}
}

func FuzzSum2(f *testing.F) {
	f.Add([]byte{0, 0, 0}, []byte("a"), bytes.Repeat([]byte("b"), 200))
	f.Fuzz(func(t *testing.T, prefix, a, b []byte) {
		for name, h := range hashers(t) {
			var da, db [Size]byte
			h.Sum2(prefix, a, b, &da, &db)
			if da != want(prefix, a) || db != want(prefix, b) {
				t.Fatalf("%s: Sum2 differs from crypto/sha256", name)
			}
		}
	})
}

// The figures in the package doc: two leaves of the size of a typical
// certificate entry, and two nodes, against crypto/sha256 one at a time.

func BenchmarkLeaves(b *testing.B) {
	prefix, x, y := []byte{0, 0, 0}, make([]byte, 1300), make([]byte, 1250)
	var dx, dy [Size]byte
	b.Run("sha256x2", func(b *testing.B) {
		h := &Hasher{}
		for b.Loop() {
			h.Sum2(prefix, x, y, &dx, &dy)
		}
	})
	b.Run("crypto-sha256", func(b *testing.B) {
		h := &Hasher{generic: true}
		for b.Loop() {
			h.Sum2(prefix, x, y, &dx, &dy)
		}
	})
}

func BenchmarkNodes(b *testing.B) {
	var l, r, d1, d2 [Size]byte
	b.Run("sha256x2", func(b *testing.B) {
		h := &Hasher{}
		for b.Loop() {
			h.Node2(&l, &r, &r, &l, &d1, &d2)
		}
	})
	b.Run("crypto-sha256", func(b *testing.B) {
		h := &Hasher{generic: true}
		for b.Loop() {
			h.Node2(&l, &r, &r, &l, &d1, &d2)
		}
	})
}
