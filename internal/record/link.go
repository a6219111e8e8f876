package record

import (
	"strconv"
	"strings"
)

// NormalizeURL returns the canonical spelling of a log URL used as
// source_url and as the log's key in the state file (spec section 3.5):
// trailing slashes are removed and "https://" is prepended unless the URL
// already starts with "https://" or "http://". Nothing else changes: no
// lowercasing, no path cleaning, since rows are matched by exact string.
func NormalizeURL(raw string) string {
	u := strings.TrimRight(raw, "/")
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		u = "https://" + u
	}
	return u
}

// TilePath encodes a tile number the static-ct-api way (spec section 3.6):
// groups of three decimal digits, zero-padded, each but the last prefixed
// with "x". 5 -> "005", 1234 -> "x001/234", 1234567 -> "x001/x234/567".
func TilePath(n uint64) string {
	return string(appendTilePath(make([]byte, 0, 28), n)) // 7 groups at most
}

// appendTilePath appends TilePath(n) to b.
func appendTilePath(b []byte, n uint64) []byte {
	var groups [7]uint64 // a uint64 has at most 20 digits: 7 groups
	k := 0
	for {
		groups[k] = n % 1000
		k++
		n /= 1000
		if n == 0 {
			break
		}
	}
	for i := k - 1; i >= 0; i-- {
		if i > 0 {
			b = append(b, 'x')
		}
		g := groups[i]
		b = append(b, byte('0'+g/100), byte('0'+g/10%10), byte('0'+g%10))
		if i > 0 {
			b = append(b, '/')
		}
	}
	return b
}

// CertLink returns the cert_link column for the entry at index (spec
// section 3.6). For an RFC 6962 log it is the one-entry get-entries URL; for
// a static-ct-api log it is the full data tile holding the entry, without a
// partial-tile suffix, so the 256 entries of a tile share one link.
func CertLink(src Source, index uint64) string {
	var buf [192]byte // built on the stack: one allocation, the string
	b := append(buf[:0], src.URL...)
	if src.Static {
		b = append(b, "/tile/data/"...)
		return string(appendTilePath(b, index/TileWidth))
	}
	b = append(b, "/ct/v1/get-entries?start="...)
	b = strconv.AppendUint(b, index, 10)
	b = append(b, "&end="...)
	return string(strconv.AppendUint(b, index, 10))
}
