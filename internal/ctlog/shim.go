package ctlog

// TODO(#3): temporary stand-ins for package record's decoders, which another
// helper is writing with exactly these signatures. Replace the calls with
// record.NormalizeURL, record.DecodeRFC6962, record.DecodeTile and
// record.TilePath, and delete this file, once they land.

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/cryptobyte"

	"github.com/certlake/certlake/internal/record"
)

type tileLeaf struct {
	Type              record.EntryType
	Cert              []byte
	ChainFingerprints [][32]byte
}

func normalizeURL(u string) string {
	u = strings.TrimRight(u, "/")
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		u = "https://" + u
	}
	return u
}

func tilePath(n uint64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n >= 1000 {
		n /= 1000
		s = fmt.Sprintf("x%03d/%s", n%1000, s)
	}
	return s
}

func decodeRFC6962(leafInput, extraData []byte) (record.EntryType, []byte, [][]byte, error) {
	if len(leafInput) < 15 {
		return 0, nil, nil, errors.New("leaf_input too short")
	}
	typ := record.EntryType(uint16(leafInput[10])<<8 | uint16(leafInput[11]))
	var cert cryptobyte.String
	extra := cryptobyte.String(extraData)
	switch typ {
	case record.X509Entry:
		s := cryptobyte.String(leafInput[12:])
		if !s.ReadUint24LengthPrefixed(&cert) {
			return 0, nil, nil, errors.New("certificate runs past leaf_input")
		}
	case record.PrecertEntry:
		if !extra.ReadUint24LengthPrefixed(&cert) {
			return 0, nil, nil, errors.New("pre-certificate runs past extra_data")
		}
	default:
		return 0, nil, nil, fmt.Errorf("unknown entry type %d", typ)
	}
	var chain [][]byte
	if extra.Skip(3) {
		for len(extra) >= 4 {
			var c cryptobyte.String
			if !extra.ReadUint24LengthPrefixed(&c) {
				break
			}
			chain = append(chain, c)
		}
	}
	return typ, cert, chain, nil
}

func decodeTile(data []byte) ([]tileLeaf, error) {
	var leaves []tileLeaf
	s := cryptobyte.String(data)
	for !s.Empty() {
		var (
			l    tileLeaf
			typ  uint16
			skip cryptobyte.String
			cert cryptobyte.String
		)
		if !s.Skip(8) || !s.ReadUint16(&typ) {
			return leaves, fmt.Errorf("leaf %d: truncated header", len(leaves))
		}
		l.Type = record.EntryType(typ)
		switch l.Type {
		case record.X509Entry:
			if !s.ReadUint24LengthPrefixed(&cert) || !s.ReadUint16LengthPrefixed(&skip) {
				return leaves, fmt.Errorf("leaf %d: truncated certificate", len(leaves))
			}
		case record.PrecertEntry:
			if !s.Skip(32) || !s.ReadUint24LengthPrefixed(&skip) || !s.ReadUint16LengthPrefixed(&skip) || !s.ReadUint24LengthPrefixed(&cert) {
				return leaves, fmt.Errorf("leaf %d: truncated precertificate", len(leaves))
			}
		default:
			return leaves, fmt.Errorf("leaf %d: unknown entry type %d", len(leaves), typ)
		}
		l.Cert = cert
		var chain cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&chain) || len(chain)%32 != 0 {
			return leaves, fmt.Errorf("leaf %d: bad chain", len(leaves))
		}
		for !chain.Empty() {
			var fp [32]byte
			chain.CopyBytes(fp[:])
			l.ChainFingerprints = append(l.ChainFingerprints, fp)
		}
		leaves = append(leaves, l)
	}
	return leaves, nil
}
