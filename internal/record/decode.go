package record

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// ErrSkippedEntryType reports an RFC 6962 entry whose LogEntryType is neither
// x509_entry nor precert_entry. Such entries produce no row (spec section 6.1).
var ErrSkippedEntryType = errors.New("skipped entry type")

// errTruncated marks a length prefix that runs past the end of its buffer.
var errTruncated = errors.New("truncated")

// DecodeRFC6962 extracts "the certificate" and its chain from one RFC 6962
// get-entries element (spec section 6.1). leafInput is the MerkleTreeLeaf,
// extraData the entry's extra_data, both already base64-decoded.
//
// For an x509_entry the certificate is the ASN.1Cert inside leafInput; for a
// precert_entry it is the pre-certificate at the start of extraData (the
// leaf's TBSCertificate is not used). The chain is read leniently: entries
// are read while at least 4 bytes remain and reading stops at the first
// length that runs past the end, as the live ingester does. The returned
// slices alias leafInput and extraData.
//
// An entry of any other type yields an error wrapping ErrSkippedEntryType.
func DecodeRFC6962(leafInput, extraData []byte) (typ EntryType, cert []byte, chain [][]byte, err error) {
	// MerkleTreeLeaf: version(1) leaf_type(1) timestamp(8) entry_type(2) ...
	if len(leafInput) < 15 {
		return 0, nil, nil, fmt.Errorf("leaf_input of %d bytes: %w", len(leafInput), errTruncated)
	}
	typ = EntryType(uint16(leafInput[10])<<8 | uint16(leafInput[11]))
	switch typ {
	case X509Entry:
		cert, _, err = readU24Prefixed(leafInput[12:])
		if err != nil {
			return 0, nil, nil, fmt.Errorf("x509_entry certificate: %w", err)
		}
		return typ, cert, readChain(extraData), nil
	case PrecertEntry:
		// PrecertChainEntry: ASN.1Cert pre_certificate; ASN.1Cert precertificate_chain<0..2^24-1>.
		var rest []byte
		cert, rest, err = readU24Prefixed(extraData)
		if err != nil {
			return 0, nil, nil, fmt.Errorf("precert_entry pre_certificate: %w", err)
		}
		return typ, cert, readChain(rest), nil
	default:
		return 0, nil, nil, fmt.Errorf("entry type %d: %w", uint16(typ), ErrSkippedEntryType)
	}
}

// readU24Prefixed reads a u24 length and that many bytes.
func readU24Prefixed(b []byte) (body, rest []byte, err error) {
	if len(b) < 3 {
		return nil, nil, errTruncated
	}
	n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
	if n > len(b)-3 {
		return nil, nil, fmt.Errorf("length %d with %d bytes left: %w", n, len(b)-3, errTruncated)
	}
	return b[3 : 3+n], b[3+n:], nil
}

// readChain reads an RFC 6962 certificate chain (a u24 total length, then
// u24-prefixed certificates) the way the live ingester does: the total length
// is ignored, certificates are read while at least 4 bytes remain, and
// reading stops at the first length that runs past the end.
func readChain(b []byte) [][]byte {
	if len(b) < 3 {
		return nil
	}
	b = b[3:]
	var chain [][]byte
	for len(b) >= 4 {
		der, rest, err := readU24Prefixed(b)
		if err != nil {
			break
		}
		chain = append(chain, der)
		b = rest
	}
	return chain
}

// TileLeaf is one entry of a static-ct-api data tile, reduced to what a row
// needs (spec section 6.2).
type TileLeaf struct {
	Type EntryType // x509_entry or precert_entry
	// Cert is "the certificate": the X.509 certificate, or for a
	// precert_entry the pre_certificate. It aliases the decoded tile.
	Cert []byte
	// ChainFingerprints are the SHA-256 fingerprints of the chain
	// certificates, in order; the certificates are served at
	// <prefix>/issuer/<lowercase hex>.
	ChainFingerprints [][32]byte
	// Timestamped is the leaf's RFC 6962 TimestampedEntry (timestamp to
	// extensions): the MerkleTreeLeaf hashed into the log's tree is
	// version 0, leaf_type 0 and these bytes. It aliases the tile.
	Timestamped []byte
	// Extensions are the CtExtensions (static-ct-api: leaf_index). They
	// alias the tile.
	Extensions []byte
	// IssuerKeyHash is a precert_entry's issuer_key_hash: the SHA-256 of
	// the issuing CA's SubjectPublicKeyInfo. Zero for an x509_entry.
	IssuerKeyHash [32]byte
}

// TileError reports where the decoding of a data tile stopped. Leaves are
// length-prefixed, so nothing after a malformed leaf can be found again: the
// leaves at positions Leaf and above are lost and must be reported as failed.
type TileError struct {
	Leaf   int   // position in the tile of the first leaf that could not be decoded
	Offset int   // byte offset of that leaf in the (decompressed) tile
	Err    error // what was wrong with it
}

func (e *TileError) Error() string {
	return fmt.Sprintf("tile leaf %d at byte %d: %v", e.Leaf, e.Offset, e.Err)
}

func (e *TileError) Unwrap() error { return e.Err }

// TileWidth is the number of entries in a full static-ct-api data tile.
const TileWidth = 256

// maxTileBytes bounds the decompressed size of a tile. Real full tiles are
// well under 2 MiB; the bound keeps a gzip bomb from exhausting memory.
const maxTileBytes = 64 << 20

// DecodeTile decodes a static-ct-api data tile (full or partial) into its
// leaves, in order (c2sp.org/static-ct-api, spec section 6.2). A body that
// starts with the gzip magic 1f 8b is decompressed first; if that fails the
// raw body is decoded, as the live ingester does.
//
// Unlike the live ingester (quirk Q13), a malformed leaf is not silently
// dropped together with the rest of the tile: DecodeTile returns the leaves
// decoded before it and a *TileError naming its position. A tile holding more
// than 256 leaves is malformed too; the error then names position 256.
func DecodeTile(data []byte) ([]TileLeaf, error) {
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		if plain, err := gunzip(data); err == nil {
			data = plain
		} else if errors.Is(err, errTileTooLarge) {
			return nil, &TileError{Err: err}
		}
	}
	leaves := make([]TileLeaf, 0, TileWidth)
	off := 0
	for off < len(data) {
		if len(leaves) == TileWidth {
			return leaves, &TileError{Leaf: len(leaves), Offset: off, Err: errors.New("more than 256 leaves in a data tile")}
		}
		leaf, n, err := decodeTileLeaf(data[off:])
		if err != nil {
			return leaves, &TileError{Leaf: len(leaves), Offset: off, Err: err}
		}
		leaves = append(leaves, leaf)
		off += n
	}
	return leaves, nil
}

var errTileTooLarge = fmt.Errorf("gzip tile larger than %d bytes", maxTileBytes)

func gunzip(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(zr, maxTileBytes+1))
	if err != nil {
		return nil, err
	}
	if n > maxTileBytes {
		return nil, errTileTooLarge
	}
	return buf.Bytes(), nil
}

// tileReader reads big-endian fields from a tile, remembering the first
// shortfall so a leaf can be decoded without an error check per field.
type tileReader struct {
	b   []byte
	off int
	err error
}

// take reads n bytes of the field named what+suffix (two parts, so that
// no label is built unless it goes into an error: every field of every
// leaf passes through here).
func (r *tileReader) take(n int, what, suffix string) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b)-r.off {
		r.err = fmt.Errorf("%s%s: %d bytes needed, %d left: %w", what, suffix, n, len(r.b)-r.off, errTruncated)
		return nil
	}
	s := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return s
}

func (r *tileReader) uint(size int, what, suffix string) int {
	v := 0
	for _, c := range r.take(size, what, suffix) {
		v = v<<8 | int(c)
	}
	return v
}

func (r *tileReader) prefixed(size int, what string) []byte {
	n := r.uint(size, what, " length")
	return r.take(n, what, "")
}

// decodeTileLeaf decodes one TileLeaf and returns it with its size in bytes.
//
//	struct {
//	    uint64 timestamp;
//	    LogEntryType entry_type;                     // u16
//	    select (entry_type) {
//	        case x509_entry:    ASN.1Cert signed_entry;               // u24 length
//	        case precert_entry: opaque issuer_key_hash[32];
//	                            TBSCertificate tbs_certificate;       // u24 length
//	    };
//	    CtExtensions extensions;                     // u16 length
//	    select (entry_type) {
//	        case x509_entry:    Empty;
//	        case precert_entry: ASN.1Cert pre_certificate;            // u24 length
//	    };
//	    Fingerprint certificate_chain<0..2^16-1>;    // u16 byte length, 32-byte entries
//	} TileLeaf;
func decodeTileLeaf(b []byte) (TileLeaf, int, error) {
	r := tileReader{b: b}
	r.take(8, "timestamp", "")
	typ := EntryType(r.uint(2, "entry_type", ""))
	var leaf TileLeaf
	if r.err != nil {
		return leaf, 0, r.err
	}
	leaf.Type = typ
	switch typ {
	case X509Entry:
		leaf.Cert = r.prefixed(3, "certificate")
		leaf.Extensions = r.prefixed(2, "extensions")
		leaf.Timestamped = r.b[:r.off:r.off]
	case PrecertEntry:
		copy(leaf.IssuerKeyHash[:], r.take(32, "issuer_key_hash", ""))
		r.prefixed(3, "tbs_certificate")
		leaf.Extensions = r.prefixed(2, "extensions")
		leaf.Timestamped = r.b[:r.off:r.off]
		leaf.Cert = r.prefixed(3, "pre_certificate")
	default:
		return TileLeaf{}, 0, fmt.Errorf("unknown entry type %d", uint16(typ))
	}
	chain := r.prefixed(2, "certificate_chain")
	if r.err != nil {
		return TileLeaf{}, 0, r.err
	}
	if len(chain)%32 != 0 {
		return TileLeaf{}, 0, fmt.Errorf("certificate_chain of %d bytes is not a multiple of 32", len(chain))
	}
	if len(chain) > 0 {
		leaf.ChainFingerprints = make([][32]byte, len(chain)/32)
		for i := range leaf.ChainFingerprints {
			copy(leaf.ChainFingerprints[i][:], chain[32*i:])
		}
	}
	return leaf, r.off, nil
}
