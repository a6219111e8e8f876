package lake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/record"
	"github.com/certlake/certlake/internal/storage"
)

// statsTimeFormat is how Delta writers (Spark, delta-rs) render timestamp
// stats: ISO-8601 with milliseconds and Z.
const statsTimeFormat = "2006-01-02T15:04:05.000Z"

// String columns with min/max stats. Long free-text columns (cert_link,
// subject_aggregated, issuer_aggregated) get only nullCount: nothing prunes
// on them and their values would bloat the log.
var statStringColumns = [...]string{
	"update_type", "source_name", "source_url", "serial_number", "fingerprint",
	"sha256", "sha1", "signature_algorithm",
}

// fileStats accumulates the Delta stats of one data file.
type fileStats struct {
	n                     int64
	minCertIndex, maxCert uint64
	minSeen, maxSeen      time.Time
	minNB, maxNB          int64
	minNA, maxNA          int64
	minStr, maxStr        [len(statStringColumns)]string
}

func statStrings(r *record.Row) [len(statStringColumns)]string {
	return [...]string{r.UpdateType, r.SourceName, r.SourceURL, r.SerialNumber, r.Fingerprint, r.SHA256, r.SHA1, r.SignatureAlgorithm}
}

func (s *fileStats) add(r *record.Row) {
	strs := statStrings(r)
	if s.n == 0 {
		s.minCertIndex, s.maxCert = r.CertIndex, r.CertIndex
		s.minSeen, s.maxSeen = r.Seen, r.Seen
		s.minNB, s.maxNB = r.NotBefore, r.NotBefore
		s.minNA, s.maxNA = r.NotAfter, r.NotAfter
		s.minStr, s.maxStr = strs, strs
		s.n = 1
		return
	}
	s.n++
	s.minCertIndex = min(s.minCertIndex, r.CertIndex)
	s.maxCert = max(s.maxCert, r.CertIndex)
	if r.Seen.Before(s.minSeen) {
		s.minSeen = r.Seen
	}
	if r.Seen.After(s.maxSeen) {
		s.maxSeen = r.Seen
	}
	s.minNB, s.maxNB = min(s.minNB, r.NotBefore), max(s.maxNB, r.NotBefore)
	s.minNA, s.maxNA = min(s.minNA, r.NotAfter), max(s.maxNA, r.NotAfter)
	for i, v := range strs {
		s.minStr[i] = min(s.minStr[i], v)
		s.maxStr[i] = max(s.maxStr[i], v)
	}
}

// json renders the stats in the add action's format. Columns appear in
// table order. seen is rendered at millisecond precision, so the maximum is
// rounded up: a stat must never exclude a value the file holds.
func (s *fileStats) json() (string, error) {
	type kv struct {
		k string
		v any
	}
	minV := []kv{
		{"cert_index", s.minCertIndex},
		{"update_type", s.minStr[0]},
		{"seen", s.minSeen.UTC().Truncate(time.Millisecond).Format(statsTimeFormat)},
		{"source_name", s.minStr[1]},
		{"source_url", s.minStr[2]},
		{"serial_number", s.minStr[3]},
		{"fingerprint", s.minStr[4]},
		{"sha256", s.minStr[5]},
		{"sha1", s.minStr[6]},
		{"not_before", s.minNB},
		{"not_after", s.minNA},
		{"signature_algorithm", s.minStr[7]},
	}
	maxSeen := s.maxSeen.UTC()
	if t := maxSeen.Truncate(time.Millisecond); !t.Equal(maxSeen) {
		maxSeen = t.Add(time.Millisecond)
	}
	maxV := []kv{
		{"cert_index", s.maxCert},
		{"update_type", s.maxStr[0]},
		{"seen", maxSeen.Format(statsTimeFormat)},
		{"source_name", s.maxStr[1]},
		{"source_url", s.maxStr[2]},
		{"serial_number", s.maxStr[3]},
		{"fingerprint", s.maxStr[4]},
		{"sha256", s.maxStr[5]},
		{"sha1", s.maxStr[6]},
		{"not_before", s.maxNB},
		{"not_after", s.maxNA},
		{"signature_algorithm", s.maxStr[7]},
	}
	var b bytes.Buffer
	obj := func(key string, kvs []kv) error {
		b.WriteString(`,"` + key + `":{`)
		for i, e := range kvs {
			if i > 0 {
				b.WriteByte(',')
			}
			k, err := json.Marshal(e.k)
			if err != nil {
				return err
			}
			v, err := json.Marshal(e.v)
			if err != nil {
				return err
			}
			b.Write(k)
			b.WriteByte(':')
			b.Write(v)
		}
		b.WriteByte('}')
		return nil
	}
	b.WriteString(`{"numRecords":` + strconv.FormatInt(s.n, 10))
	if err := obj("minValues", minV); err != nil {
		return "", err
	}
	if err := obj("maxValues", maxV); err != nil {
		return "", err
	}
	var nulls []kv
	for _, c := range fileColumns {
		if k := columnKinds[c]; k != kindStringList {
			nulls = append(nulls, kv{c, 0})
		}
	}
	if err := obj("nullCount", nulls); err != nil {
		return "", err
	}
	b.WriteByte('}')
	return b.String(), nil
}

// FileInfo is one live data file of a snapshot with the stats certlake
// prunes on.
type FileInfo struct {
	Path      string // as in the log: relative and URI-encoded, or an absolute URI
	LocalPath string // path on the local file system; "" for a remote table's file until Table.Localize
	SeenDate  string // partition value
	Size      int64
	// NumRecords is the row count from stats, or -1 when the file has none.
	NumRecords int64
	// HasKeyStats is true when the file's stats give min and max of both
	// source_url and cert_index; only then are the four fields below set.
	HasKeyStats  bool
	MinSourceURL string
	MaxSourceURL string
	MinCertIndex uint64
	MaxCertIndex uint64
}

// LiveFiles opens the table at path with opts and lists its live files at
// its latest version: the one way certlake's readers (gap detection,
// coverage) list a table; the snapshot they come from is returned too. A
// missing table is no table and no files, not an error.
func LiveFiles(ctx context.Context, path string, opts Options) (*Table, *delta.Snapshot, []FileInfo, error) {
	t, err := Open(ctx, path, opts)
	if errors.Is(err, ErrNotExist) {
		return nil, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, err
	}
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("snapshot %s: %w", path, err)
	}
	return t, snap, t.Files(snap), nil
}

// Files lists the live data files of snap with their parsed stats, in the
// snapshot's order. A file whose stats cannot be parsed is listed without
// stats (it is then never pruned).
func (t *Table) Files(snap *delta.Snapshot) []FileInfo {
	return Files(snap)
}

// Files lists the live data files of any Delta snapshot; see Table.Files.
func Files(snap *delta.Snapshot) []FileInfo {
	out := make([]FileInfo, 0, len(snap.Files))
	_, local := storage.LocalPath(snap.Store(), "x")
	local = local || snap.Store() == nil
	for _, a := range snap.Files {
		lp := ""
		if local {
			lp = snap.LocalPath(a)
		}
		fi := FileInfo{
			Path:       a.Path,
			LocalPath:  lp,
			SeenDate:   a.PartitionValues[PartitionColumn],
			Size:       a.Size,
			NumRecords: -1,
		}
		if a.Stats != "" {
			parseStats(a.Stats, &fi)
		}
		out = append(out, fi)
	}
	return out
}

// parseStats fills fi from an add action's stats JSON, leaving fields it
// cannot read unset. Numbers are decoded exactly (no float64 round trip).
func parseStats(stats string, fi *FileInfo) {
	var s struct {
		NumRecords *json.Number `json:"numRecords"`
		MinValues  struct {
			SourceURL *string      `json:"source_url"`
			CertIndex *json.Number `json:"cert_index"`
		} `json:"minValues"`
		MaxValues struct {
			SourceURL *string      `json:"source_url"`
			CertIndex *json.Number `json:"cert_index"`
		} `json:"maxValues"`
	}
	d := json.NewDecoder(bytes.NewReader([]byte(stats)))
	d.UseNumber()
	if err := d.Decode(&s); err != nil {
		return
	}
	if s.NumRecords != nil {
		if n, err := strconv.ParseInt(s.NumRecords.String(), 10, 64); err == nil && n >= 0 {
			fi.NumRecords = n
		}
	}
	if s.MinValues.SourceURL == nil || s.MaxValues.SourceURL == nil || s.MinValues.CertIndex == nil || s.MaxValues.CertIndex == nil {
		return
	}
	lo, err1 := parseIndex(*s.MinValues.CertIndex)
	hi, err2 := parseIndex(*s.MaxValues.CertIndex)
	if err1 != nil || err2 != nil {
		return
	}
	fi.HasKeyStats = true
	fi.MinSourceURL, fi.MaxSourceURL = *s.MinValues.SourceURL, *s.MaxValues.SourceURL
	fi.MinCertIndex, fi.MaxCertIndex = lo, hi
}

// parseIndex reads a cert_index stat. Negative values (never written by a
// certstream writer) clamp to 0, which only widens the range.
func parseIndex(n json.Number) (uint64, error) {
	if v, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
		return uint64(max(v, 0)), nil
	}
	return 0, fmt.Errorf("cert_index stat %s is not an integer", n)
}
