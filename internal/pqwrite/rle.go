package pqwrite

import "encoding/binary"

// appendHybrid appends vals in Parquet's RLE/bit-packed hybrid encoding
// with the given bit width (1 to 32): runs of eight or more equal values,
// taken at group boundaries, become RLE runs; the rest is bit-packed in
// groups of eight, the last group padded with zeros (readers stop at the
// page's value count).
func appendHybrid(dst []byte, vals []uint32, width int) []byte {
	packedFrom := -1 // start of the pending bit-packed values, -1: none
	flushPacked := func(to int) {
		if packedFrom < 0 {
			return
		}
		dst = appendPacked(dst, vals[packedFrom:to], width)
		packedFrom = -1
	}
	for i := 0; i < len(vals); {
		r := 1
		for i+r < len(vals) && vals[i+r] == vals[i] {
			r++
		}
		if r >= 8 {
			flushPacked(i)
			dst = binary.AppendUvarint(dst, uint64(r)<<1)
			v := vals[i]
			for b := 0; b < (width+7)/8; b++ {
				dst = append(dst, byte(v>>(8*b)))
			}
			i += r
			continue
		}
		if packedFrom < 0 {
			packedFrom = i
		}
		i = min(i+8, len(vals))
	}
	flushPacked(len(vals))
	return dst
}

// appendPacked appends one bit-packed run of vals (padded to a multiple
// of eight values).
func appendPacked(dst []byte, vals []uint32, width int) []byte {
	groups := (len(vals) + 7) / 8
	dst = binary.AppendUvarint(dst, uint64(groups)<<1|1)
	var acc uint64
	bits := 0
	for g := range groups {
		for j := range 8 {
			var v uint32
			if k := g*8 + j; k < len(vals) {
				v = vals[k]
			}
			acc |= uint64(v) << bits
			bits += width
			for bits >= 8 {
				dst = append(dst, byte(acc))
				acc >>= 8
				bits -= 8
			}
		}
	}
	// Eight values of any width end on a byte boundary.
	return dst
}

// bitWidth is the number of bits needed for values up to max.
func bitWidth(max uint32) int {
	w := 0
	for max > 0 {
		w++
		max >>= 1
	}
	return w
}
