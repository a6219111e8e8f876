package statefile

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// sample is the example of spec/record-format.md section 7, plus an unknown
// field that must be ignored.
const sample = `{
  "version": 1,
  "logs": {
    "https://ct.googleapis.com/logs/us1/argon2025h2": {
      "current_index": 1234567890,
      "tree_size": 1234568000,
      "last_success": 1732550400
    },
    "https://mon.willow.ct.letsencrypt.org/2025h2d": {
      "current_index": 98304,
      "tree_size": 98410,
      "last_success": 1732550399,
      "comment": "unknown fields are ignored"
    }
  }
}`

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "certstream_state.json")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoad(t *testing.T) {
	st, err := Load(writeFile(t, sample))
	if err != nil {
		t.Fatalf("Load(sample) = %v", err)
	}
	want := State{Version: 1, Logs: map[string]LogState{
		"https://ct.googleapis.com/logs/us1/argon2025h2": {1234567890, 1234568000, 1732550400},
		"https://mon.willow.ct.letsencrypt.org/2025h2d":  {98304, 98410, 1732550399},
	}}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("Load(sample) = %+v, want %+v", st, want)
	}
}

func TestCeiling(t *testing.T) {
	st, err := Load(writeFile(t, sample))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		url  string
		want uint64
		ok   bool
	}{
		{"https://ct.googleapis.com/logs/us1/argon2025h2", 1234567890, true},
		{"https://ct.googleapis.com/logs/us1/argon2025h2/", 1234567890, true},
		{"mon.willow.ct.letsencrypt.org/2025h2d//", 98304, true},
		{"https://ct.googleapis.com/logs/us1/argon2026h1", 0, false},
		{"http://mon.willow.ct.letsencrypt.org/2025h2d", 0, false}, // another scheme is another log
	} {
		got, ok := st.Ceiling(tc.url)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Ceiling(%q) = %d, %v, want %d, %v", tc.url, got, ok, tc.want, tc.ok)
		}
	}
}

func TestLoadNormalizesKeys(t *testing.T) {
	st, err := Load(writeFile(t, `{"version": 1, "logs": {
		"ct.example.com/logs/a/": {"current_index": 5, "tree_size": 6, "last_success": 7}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Logs["https://ct.example.com/logs/a"]; !ok || len(st.Logs) != 1 {
		t.Errorf("Load keys = %v, want only https://ct.example.com/logs/a", st.Logs)
	}
}

func TestLoadErrors(t *testing.T) {
	entry := func(fields string) string {
		return `{"version": 1, "logs": {"https://ct.example.com/logs/a": {` + fields + `}}}`
	}
	for _, tc := range []struct {
		name    string
		text    string
		want    error
		mention []string // substrings the message must contain
	}{
		{"NotJSON", `{"version": 1,`, ErrMalformed, nil},
		{"Empty", ``, ErrMalformed, nil},
		{"Array", `[]`, ErrMalformed, nil},
		{"NoVersion", `{"logs": {}}`, ErrMalformed, []string{`"version"`}},
		{"WrongVersion", `{"version": 2, "logs": {}}`, ErrMalformed, []string{"version 2"}},
		{"NoLogs", `{"version": 1}`, ErrMalformed, []string{`"logs"`}},
		{"NullLog", `{"version": 1, "logs": {"https://ct.example.com/logs/a": null}}`, ErrMalformed, []string{"logs/a"}},
		{"MissingCurrentIndex", entry(`"tree_size": 1, "last_success": 2`), ErrMalformed, []string{"logs/a", "current_index"}},
		{"MissingTreeSize", entry(`"current_index": 1, "last_success": 2`), ErrMalformed, []string{"logs/a", "tree_size"}},
		{"MissingLastSuccess", entry(`"current_index": 1, "tree_size": 2`), ErrMalformed, []string{"logs/a", "last_success"}},
		{"NegativeIndex", entry(`"current_index": -1, "tree_size": 2, "last_success": 3`), ErrMalformed, []string{"logs/a"}},
		{"StringIndex", entry(`"current_index": "10", "tree_size": 2, "last_success": 3`), ErrMalformed, []string{"logs/a"}},
		{
			"TwoSpellingsOfOneLog",
			`{"version": 1, "logs": {
				"https://ct.example.com/logs/a": {"current_index": 1, "tree_size": 2, "last_success": 3},
				"https://ct.example.com/logs/a/": {"current_index": 1, "tree_size": 2, "last_success": 3}}}`,
			ErrMalformed, []string{"same log"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.text)
			_, err := Load(path)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Load(%s) = %v, want %v", tc.text, err, tc.want)
			}
			for _, s := range append(tc.mention, path) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Load(%s) = %q, want it to mention %q", tc.text, err, s)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.json")
	_, err := Load(path)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), path) {
		t.Errorf("Load(absent) = %v, want ErrNotFound naming %s", err, path)
	}
	// The error names certlake's own config keys, not the Rust
	// ingester's (ct_log.state_file).
	if msg := err.Error(); !strings.Contains(msg, "ct.state_file") || !strings.Contains(msg, "backfill.ceiling") || strings.Contains(msg, "ct_log") {
		t.Errorf("Load(absent) = %q, want it to name ct.state_file and backfill.ceiling only", msg)
	}
}
