//go:build !amd64

package sha256x2

const accelerated = false

func blocks(s *[8]uint32, p *byte, n int)          { panic("sha256x2: no block function") }
func blocks2(a, b *[8]uint32, pa, pb *byte, n int) { panic("sha256x2: no block function") }
