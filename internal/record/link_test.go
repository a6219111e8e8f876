package record

import (
	"testing"

	"filippo.io/sunlight"
	"golang.org/x/mod/sumdb/tlog"
)

func TestNormalizeURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://ct.googleapis.com/logs/us1/argon2025h2/", "https://ct.googleapis.com/logs/us1/argon2025h2"},
		{"mon.willow.ct.letsencrypt.org/2025h2d/", "https://mon.willow.ct.letsencrypt.org/2025h2d"},
		{"https://ct.example.net/log", "https://ct.example.net/log"},
		{"http://localhost:8080/log///", "http://localhost:8080/log"},
		{"HTTPS://Example.COM/Log/", "https://HTTPS://Example.COM/Log"},
		{"ct.example.net/a//b/../c", "https://ct.example.net/a//b/../c"},
		{"ftp://x/", "https://ftp://x"},
		{"https://", "https://https:"}, // trimmed first, then prefixed, as the ingester does
		{"", "https://"},
	}
	for _, tt := range tests {
		if got := NormalizeURL(tt.in); got != tt.want {
			t.Errorf("NormalizeURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTilePath(t *testing.T) {
	tests := []struct {
		n    uint64
		want string
	}{
		{0, "000"}, {5, "005"}, {999, "999"}, {1000, "x001/000"}, {1234, "x001/234"},
		{123456, "x123/456"}, {1234567, "x001/x234/567"}, {4822, "x004/822"},
		{1000000, "x001/x000/000"},
		{18446744073709551615, "x018/x446/x744/x073/x709/x551/615"},
	}
	for _, tt := range tests {
		if got := TilePath(tt.n); got != tt.want {
			t.Errorf("TilePath(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
	// sunlight's encoder (via x/mod/sumdb/tlog) as an independent reference.
	for _, n := range []int64{0, 1, 999, 1000, 1001, 99999, 100000, 999999, 1000000, 123456789, 1 << 40} {
		want := sunlight.TilePath(tlog.Tile{H: sunlight.TileHeight, L: -1, N: n, W: 256})[len("tile/data/"):]
		if got := TilePath(uint64(n)); got != want {
			t.Errorf("TilePath(%d) = %q, want %q (sunlight)", n, got, want)
		}
	}
}

func TestCertLink(t *testing.T) {
	rfc := Source{URL: "https://ct.example.net/log", Name: "Example Log"}
	static := Source{URL: "https://mon.willow.ct.letsencrypt.org/2025h2d", Name: "Willow", Static: true}
	tests := []struct {
		src   Source
		index uint64
		want  string
	}{
		{rfc, 0, "https://ct.example.net/log/ct/v1/get-entries?start=0&end=0"},
		{rfc, 1234567, "https://ct.example.net/log/ct/v1/get-entries?start=1234567&end=1234567"},
		{static, 1234567, "https://mon.willow.ct.letsencrypt.org/2025h2d/tile/data/x004/822"},
		{static, 0, "https://mon.willow.ct.letsencrypt.org/2025h2d/tile/data/000"},
		{static, 255, "https://mon.willow.ct.letsencrypt.org/2025h2d/tile/data/000"},
		{static, 256, "https://mon.willow.ct.letsencrypt.org/2025h2d/tile/data/001"},
	}
	for _, tt := range tests {
		if got := CertLink(tt.src, tt.index); got != tt.want {
			t.Errorf("CertLink(%+v, %d) = %q, want %q", tt.src, tt.index, got, tt.want)
		}
	}
}
