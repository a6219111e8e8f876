//go:build amd64

package sha256x2

import "github.com/klauspost/cpuid/v2"

//go:generate go run gen.go

// accelerated tells whether the CPU has the SHA extensions and the SSE4.1,
// SSSE3 and AVX instructions the block functions also use.
var accelerated = cpuid.CPU.Supports(cpuid.SHA, cpuid.SSE4, cpuid.SSSE3, cpuid.AVX)

// blocks hashes n 64-byte blocks at p into s.
//
//go:noescape
func blocks(s *[8]uint32, p *byte, n int)

// blocks2 hashes n blocks at pa into a and n blocks at pb into b.
//
//go:noescape
func blocks2(a, b *[8]uint32, pa, pb *byte, n int)
