package ctlog

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"math/bits"
	"testing"
)

// FuzzTreeHeads feeds arbitrary checkpoints and get-sth answers to the tree
// head verifiers: they must never panic, and never accept a head that the
// key did not sign.
func FuzzTreeHeads(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	const origin = "fuzz.example/log"
	cp, err := newCheckpointVerifier(origin, key.Public())
	if err != nil {
		f.Fatal(err)
	}
	sth, err := newSTHVerifier(key.Public())
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(origin + "\n10\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— fuzz.example/log AAAA\n"))
	f.Add([]byte(`{"tree_size":10,"timestamp":1,"sha256_root_hash":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","tree_head_signature":"BAMARzBFAiEA"}`))
	f.Add([]byte(origin + "\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		if h, err := cp.parse("fuzz", body); err == nil {
			t.Fatalf("checkpoint accepted without a signature by the key: %+v", h)
		}
		if h, err := sth.parse("fuzz", body); err == nil {
			t.Fatalf("STH accepted without a signature by the key: %+v", h)
		}
	})
}

// FuzzLeftSiblings checks that any inclusion proof either is refused or
// yields the compact range [0, index).
func FuzzLeftSiblings(f *testing.F) {
	f.Add(uint64(5), uint64(700), uint8(10))
	f.Add(uint64(0), uint64(1), uint8(0))
	f.Add(uint64(699), uint64(700), uint8(3))
	f.Fuzz(func(t *testing.T, index, size uint64, n uint8) {
		if size == 0 || index >= size {
			return
		}
		path := make([][]byte, n)
		for i := range path {
			path[i] = make([]byte, 32)
			path[i][0] = byte(i)
		}
		left, err := leftSiblings(index, size, path)
		if err != nil {
			return
		}
		if len(left) != bits.OnesCount64(index) {
			t.Fatalf("leftSiblings(%d, %d) = %d hashes, want %d", index, size, len(left), bits.OnesCount64(index))
		}
		if _, err := rangeFactory.NewRange(0, index, left); err != nil {
			t.Fatalf("leftSiblings(%d, %d) does not make a compact range: %v", index, size, err)
		}
	})
}

// FuzzLeafIndex reads arbitrary CtExtensions.
func FuzzLeafIndex(f *testing.F) {
	f.Add([]byte{0, 0, 5, 0, 0, 0, 1, 2})
	f.Add([]byte{1, 0, 0, 0, 0, 5, 0, 0, 0, 0, 7})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, ext []byte) {
		if v, ok := leafIndex(ext); ok && v >= 1<<40 {
			t.Fatalf("leafIndex(%x) = %d, beyond 40 bits", ext, v)
		}
	})
}
