//go:build ignore

// gen writes block_amd64.s: SHA-256 block functions for one message and
// for two messages at once, on the x86 SHA extensions. Run it with
// `go generate ./internal/sha256x2`.
//
// The rounds follow Intel's description of the extensions: the state is
// kept as the register pair {A,B,E,F} and {C,D,G,H}; SHA256RNDS2 runs two
// rounds with the message words plus round constants in X0 (an implicit
// operand); the message schedule is extended four words at a time with
// SHA256MSG1, one PALIGNR/PADDD (the w[t-7] term) and SHA256MSG2.
//
// The two-message function emits both messages' instructions group by
// group. Each message's rounds are one chain of dependent SHA256RNDS2, so
// a single message leaves the SHA unit idle between them; the second
// chain fills those cycles.
package main

import (
	"bytes"
	"fmt"
	"log"
	"os"
)

// lane names the XMM registers one message uses: its state pair, its
// four message-schedule registers, a temporary, and the stack offset
// where its state is saved for the feed-forward at a block's end.
type lane struct {
	abef, cdgh string
	w          [4]string
	tmp        string
	ptr        string // register holding the message pointer
	save       int
}

var lanes = [2]lane{
	{abef: "X1", cdgh: "X2", w: [4]string{"X3", "X4", "X5", "X6"}, tmp: "X7", ptr: "SI", save: 0},
	{abef: "X9", cdgh: "X10", w: [4]string{"X11", "X12", "X13", "X14"}, tmp: "X15", ptr: "DI", save: 32},
}

// X0 carries the words plus constants of the rounds (SHA256RNDS2 reads it
// implicitly); X8 holds the byte-swap mask; AX points to the constants.

var k = [64]uint32{
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

type asm struct{ bytes.Buffer }

func (a *asm) op(format string, args ...any) { fmt.Fprintf(&a.Buffer, "\t"+format+"\n", args...) }
func (a *asm) label(l string)                { fmt.Fprintf(&a.Buffer, "%s:\n", l) }

// loadState reads the eight state words at the pointer in reg (h0..h7 in
// order) into the lane's {A,B,E,F} and {C,D,G,H} registers.
func (a *asm) loadState(l lane, reg string) {
	a.op("MOVOU (%s), %s", reg, l.abef)          // a b c d (low to high)
	a.op("MOVOU 16(%s), %s", reg, l.cdgh)        // e f g h
	a.op("PSHUFD $0xb1, %s, %s", l.abef, l.abef) // b a d c
	a.op("PSHUFD $0x1b, %s, %s", l.cdgh, l.cdgh) // h g f e
	a.op("MOVO %s, %s", l.abef, l.tmp)
	a.op("PALIGNR $8, %s, %s", l.cdgh, l.abef)   // f e b a
	a.op("PBLENDW $0xf0, %s, %s", l.tmp, l.cdgh) // h g d c
}

// storeState undoes loadState.
func (a *asm) storeState(l lane, reg string) {
	a.op("PSHUFD $0x1b, %s, %s", l.abef, l.abef) // a b e f
	a.op("PSHUFD $0xb1, %s, %s", l.cdgh, l.cdgh) // g h c d
	a.op("MOVO %s, %s", l.abef, l.tmp)
	a.op("PBLENDW $0xf0, %s, %s", l.cdgh, l.abef) // a b c d
	a.op("PALIGNR $8, %s, %s", l.tmp, l.cdgh)     // e f g h
	a.op("MOVOU %s, (%s)", l.abef, reg)
	a.op("MOVOU %s, 16(%s)", l.cdgh, reg)
}

// group emits the four rounds 4g..4g+3 of one lane, extending the message
// schedule first when g >= 4: w[g] replaces w[g-4] in its register.
func (a *asm) group(l lane, g int) {
	w := l.w[g%4]
	if g < 4 {
		a.op("MOVOU %d(%s), %s", 16*g, l.ptr, w)
		a.op("PSHUFB X8, %s", w)
	} else {
		a.op("SHA256MSG1 %s, %s", l.w[(g-3)%4], w) // w[t-16] + σ0(w[t-15])
		a.op("MOVO %s, %s", l.w[(g-1)%4], l.tmp)
		a.op("PALIGNR $4, %s, %s", l.w[(g-2)%4], l.tmp) // w[t-7]
		a.op("PADDD %s, %s", l.tmp, w)
		a.op("SHA256MSG2 %s, %s", l.w[(g-1)%4], w) // + σ1(w[t-2])
	}
	a.op("VPADDD %d(AX), %s, X0", 16*g, w)
	a.op("SHA256RNDS2 X0, %s, %s", l.abef, l.cdgh)
	a.op("PSHUFD $0x0e, X0, X0")
	a.op("SHA256RNDS2 X0, %s, %s", l.cdgh, l.abef)
}

// function emits a block function over the given lanes: its arguments are
// the lanes' state pointers, then their message pointers, then the number
// of blocks (each lane's message holds that many).
func (a *asm) function(name string, ls []lane) {
	state := []string{"R8", "R9"}
	args := 8 * (2*len(ls) + 1)
	fmt.Fprintf(&a.Buffer, "\n// func %s", name)
	fmt.Fprintf(&a.Buffer, "\nTEXT ·%s(SB), NOSPLIT, $%d-%d\n", name, 32*len(ls), args)
	names := [][2]string{{"a", "pa"}, {"b", "pb"}}
	if len(ls) == 1 {
		names = [][2]string{{"s", "p"}}
	}
	for i, l := range ls {
		a.op("MOVQ %s+%d(FP), %s", names[i][0], 8*i, state[i])
		a.op("MOVQ %s+%d(FP), %s", names[i][1], 8*(len(ls)+i), l.ptr)
	}
	a.op("MOVQ n+%d(FP), CX", 8*2*len(ls))
	a.op("TESTQ CX, CX")
	a.op("JZ %s_done", name)
	a.op("MOVOU mask<>(SB), X8")
	a.op("LEAQ k256<>(SB), AX")
	for i, l := range ls {
		a.loadState(l, state[i])
	}
	a.label(name + "_loop")
	for _, l := range ls {
		a.op("MOVOU %s, %d(SP)", l.abef, l.save)
		a.op("MOVOU %s, %d(SP)", l.cdgh, l.save+16)
	}
	for g := range 16 {
		for _, l := range ls {
			a.group(l, g)
		}
	}
	for _, l := range ls {
		a.op("VPADDD %d(SP), %s, %s", l.save, l.abef, l.abef)
		a.op("VPADDD %d(SP), %s, %s", l.save+16, l.cdgh, l.cdgh)
		a.op("ADDQ $64, %s", l.ptr)
	}
	a.op("DECQ CX")
	a.op("JNZ %s_loop", name)
	for i, l := range ls {
		a.storeState(l, state[i])
	}
	a.label(name + "_done")
	a.op("RET")
}

func main() {
	var a asm
	a.WriteString("// Code generated by gen.go; DO NOT EDIT.\n\n//go:build amd64\n\n#include \"textflag.h\"\n")
	// The mask that byte-swaps each 32-bit word (messages are big-endian).
	a.WriteString("\nDATA mask<>+0(SB)/8, $0x0405060700010203\nDATA mask<>+8(SB)/8, $0x0c0d0e0f08090a0b\nGLOBL mask<>(SB), RODATA|NOPTR, $16\n\n")
	for i, c := range k {
		fmt.Fprintf(&a.Buffer, "DATA k256<>+%d(SB)/4, $0x%08x\n", 4*i, c)
	}
	a.WriteString("GLOBL k256<>(SB), RODATA|NOPTR, $256\n")
	a.function("blocks", lanes[:1])
	a.function("blocks2", lanes[:])
	if err := os.WriteFile("block_amd64.s", a.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}
