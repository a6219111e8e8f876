// Package scenario sets up a realistic certlake lake for the demo, the end to
// end tests and the benchmarks: real CT logs running in-process (package
// ctlogtest) filled with generated certificates, a main table holding their
// entries with holes the way a live ingester leaves them (restarts, outages,
// dropped batches), and the ingester's state file.
package scenario

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/ctlog"
	"github.com/certlake/certlake/internal/ctlogtest"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/record"
)

// LogSpec describes one in-process log of a scenario.
type LogSpec struct {
	Name    string // description (source_name)
	Static  bool   // TesseraCT static-ct-api log; false: Trillian+CTFE RFC 6962
	Entries int    // certificates added to it
	// MaxGetEntries caps get-entries answers of an RFC 6962 log (short
	// reads); 0 means 32, like Google's logs.
	MaxGetEntries int
}

// Options configure Start.
type Options struct {
	Dir  string    // root of everything the scenario writes; required
	Logs []LogSpec // required
	// Seed makes certificates and holes reproducible. Default "certlake".
	Seed string
	// HoleEvery is the mean number of entries between two holes in main;
	// 0 means 150. Negative: main holds every entry (no holes).
	HoleEvery int
	// NoMain leaves the main table out (for historical backfills).
	NoMain bool
	Logger *slog.Logger // nil discards
}

// Log is one running log of a scenario.
type Log struct {
	*ctlogtest.Log
	Source  record.Source // URL normalized, Name = LogSpec.Name
	Entries uint64
	Missing []Range // the holes main was left with, sorted
}

// ConfigLog is l as the worker's config names it (ct.custom_logs or
// ct.static_logs), with its key and origin so that it is verified.
func (l *Log) ConfigLog() config.Log {
	return config.Log{Name: l.Source.Name, URL: l.Source.URL, Key: l.KeyBase64(), Origin: l.Origin}
}

// Reader is l as ctlog reads it, verified.
func (l *Log) Reader() ctlog.Log {
	return ctlog.Log{URL: l.Source.URL, Name: l.Source.Name, Static: l.Source.Static, Key: l.KeyDER(), Origin: l.Origin}
}

// Range is an inclusive range of indices.
type Range struct{ Start, End uint64 }

// Len returns the number of indices in r.
func (r Range) Len() uint64 { return r.End - r.Start + 1 }

// MissingCount returns how many entries main lacks for l.
func (l *Log) MissingCount() uint64 {
	var n uint64
	for _, r := range l.Missing {
		n += r.Len()
	}
	return n
}

// Scenario is a running set of logs and the lake files around them.
type Scenario struct {
	Dir         string
	MainPath    string // the main table
	StagingPath string // where a backfill should stage (not created)
	StateFile   string // the live ingester's state file, ceilings = tree sizes
	PlanDir     string
	Logs        []*Log
}

// Start launches the logs, fills them, writes main with holes and the state
// file. Close stops the logs.
func Start(ctx context.Context, opts Options) (s *Scenario, err error) {
	if opts.Dir == "" || len(opts.Logs) == 0 {
		return nil, errors.New("scenario: Dir and Logs are required")
	}
	if opts.Seed == "" {
		opts.Seed = "certlake"
	}
	if opts.HoleEvery == 0 {
		opts.HoleEvery = 150
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s = &Scenario{
		Dir:         opts.Dir,
		MainPath:    filepath.Join(opts.Dir, "lake", "main"),
		StagingPath: filepath.Join(opts.Dir, "lake", "staging"),
		StateFile:   filepath.Join(opts.Dir, "certstream_state.json"),
		PlanDir:     filepath.Join(opts.Dir, "lake", "plans"),
	}
	started := s // the error returns set s to nil
	defer func() {
		if err != nil {
			started.Close()
		}
	}()
	for i, spec := range opts.Logs {
		gen, err := ctlogtest.NewGenerator(ctlogtest.GeneratorOptions{
			Seed:   fmt.Sprintf("%s-%d", opts.Seed, i),
			Domain: fmt.Sprintf("log%d.certlake.test", i),
		})
		if err != nil {
			return nil, fmt.Errorf("scenario: generator: %w", err)
		}
		lopts := ctlogtest.Options{Name: fmt.Sprintf("log%d", i), Roots: []*x509.Certificate{gen.Root()}, Logger: logger,
			MaxGetEntries: spec.MaxGetEntries}
		if lopts.MaxGetEntries == 0 {
			lopts.MaxGetEntries = 32
		}
		var l *ctlogtest.Log
		if spec.Static {
			l, err = ctlogtest.StartStatic(ctx, filepath.Join(opts.Dir, "logs", fmt.Sprintf("log%d", i)), lopts)
		} else {
			l, err = ctlogtest.StartRFC6962(ctx, lopts)
		}
		if err != nil {
			return nil, fmt.Errorf("scenario: start log %s: %w", spec.Name, err)
		}
		sl := &Log{Log: l, Entries: uint64(spec.Entries),
			Source: record.Source{URL: record.NormalizeURL(l.URL), Name: spec.Name, Static: spec.Static}}
		s.Logs = append(s.Logs, sl)
		if spec.Entries > 0 {
			if err := l.AddBulk(ctx, spec.Entries, gen, nil); err != nil {
				return nil, fmt.Errorf("scenario: fill log %s: %w", spec.Name, err)
			}
		}
		if !opts.NoMain && opts.HoleEvery > 0 {
			sl.Missing = holes(uint64(spec.Entries), opts.HoleEvery, rand.New(rand.NewPCG(uint64(i)+1, 42)))
		}
	}
	if err := s.writeState(); err != nil {
		return nil, err
	}
	if !opts.NoMain {
		if err := s.writeMain(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// holes picks the ranges main lacks: runs of varying length (single dropped
// entries, lost batches, an outage), never the first or last entry, so that
// catch-up mode sees every one of them.
func holes(n uint64, every int, rng *rand.Rand) []Range {
	var out []Range
	if n < 3 {
		return nil
	}
	i := uint64(1 + rng.IntN(every))
	for i < n-1 {
		var length uint64
		switch p := rng.IntN(10); {
		case p < 5:
			length = 1
		case p < 8:
			length = uint64(2 + rng.IntN(40))
		default:
			length = uint64(50 + rng.IntN(400))
		}
		end := min(i+length-1, n-2)
		out = append(out, Range{Start: i, End: end})
		i = end + 2 + uint64(rng.IntN(2*every))
	}
	return out
}

// writeState writes the live ingester's state file with every log caught up:
// current_index = tree_size = the number of entries.
func (s *Scenario) writeState() error {
	type logState struct {
		CurrentIndex uint64 `json:"current_index"`
		TreeSize     uint64 `json:"tree_size"`
		LastSuccess  int64  `json:"last_success"`
	}
	st := struct {
		Version int                 `json:"version"`
		Logs    map[string]logState `json:"logs"`
	}{Version: 1, Logs: map[string]logState{}}
	for _, l := range s.Logs {
		st.Logs[l.Source.URL] = logState{CurrentIndex: l.Entries, TreeSize: l.Entries, LastSuccess: time.Now().Unix()}
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.StateFile), 0o755); err != nil {
		return err
	}
	return os.WriteFile(s.StateFile, b, 0o644)
}

// writeMain reads every log through certlake's own reader and parser (the
// same rows a live ingester writes) and appends all entries but the holes to
// main, in several commits, as an ingester's periodic flushes would.
func (s *Scenario) writeMain(ctx context.Context) error {
	t, err := lake.OpenOrCreate(ctx, s.MainPath, lake.Options{Role: lake.RoleMain})
	if err != nil {
		return fmt.Errorf("scenario: create main: %w", err)
	}
	for _, l := range s.Logs {
		if l.Entries == 0 {
			continue
		}
		r := ctlog.New(l.Reader(), ctlog.Config{DefaultConcurrency: 8})
		missing := l.Missing
		w := t.NewWriter(lake.WriterOptions{})
		rows := 0
		err := r.Entries(ctx, 0, l.Entries-1, func(b ctlog.Batch) error {
			for _, e := range b.Entries {
				for len(missing) > 0 && missing[0].End < e.Index {
					missing = missing[1:]
				}
				if len(missing) > 0 && missing[0].Start <= e.Index {
					continue
				}
				row, err := record.Build(e, l.Source)
				if err != nil {
					return fmt.Errorf("build entry %d: %w", e.Index, err)
				}
				if err := w.Write(row); err != nil {
					return err
				}
				rows++
			}
			if len(b.Bad) > 0 {
				return fmt.Errorf("entry %d of %s: %w", b.Bad[0].Index, l.Source.URL, b.Bad[0].Err)
			}
			if rows >= 2000 {
				if _, err := w.Commit(ctx, lake.CommitOptions{}); err != nil {
					return err
				}
				w, rows = t.NewWriter(lake.WriterOptions{}), 0
			}
			return nil
		})
		if err != nil {
			w.Abort()
			return fmt.Errorf("scenario: write main for %s: %w", l.Source.URL, err)
		}
		if _, err := w.Commit(ctx, lake.CommitOptions{}); err != nil {
			return fmt.Errorf("scenario: write main for %s: %w", l.Source.URL, err)
		}
	}
	return nil
}

// Close stops every log.
func (s *Scenario) Close() error {
	var errs []error
	for _, l := range s.Logs {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}

// WriteIndices appends the rows of the given indices of log l, fetched from
// the log and parsed as a live ingester would, to the table at path (created
// with role when missing), in one commit.
func (s *Scenario) WriteIndices(ctx context.Context, path string, role lake.Role, l *Log, indices ...uint64) error {
	t, err := lake.OpenOrCreate(ctx, path, lake.Options{Role: role})
	if err != nil {
		return err
	}
	if len(indices) == 0 {
		return nil
	}
	rows, err := s.Rows(ctx, l, indices...)
	if err != nil {
		return err
	}
	_, err = t.Append(ctx, rows, lake.CommitOptions{})
	return err
}

// Rows returns the rows of the given indices of log l, fetched from the log
// and parsed as a live ingester would, in index order.
func (s *Scenario) Rows(ctx context.Context, l *Log, indices ...uint64) ([]record.Row, error) {
	want := map[uint64]bool{}
	lo, hi := ^uint64(0), uint64(0)
	for _, i := range indices {
		want[i] = true
		lo, hi = min(lo, i), max(hi, i)
	}
	if len(indices) == 0 {
		return nil, nil
	}
	r := ctlog.New(l.Reader(), ctlog.Config{})
	var rows []record.Row
	err := r.Entries(ctx, lo, hi, func(b ctlog.Batch) error {
		for _, e := range b.Entries {
			if !want[e.Index] {
				continue
			}
			row, err := record.Build(e, l.Source)
			if err != nil {
				return err
			}
			rows = append(rows, row)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scenario: rows of %s: %w", l.Source.URL, err)
	}
	return rows, nil
}
