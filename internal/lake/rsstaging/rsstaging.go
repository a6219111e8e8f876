// Package rsstaging writes, for tests, a staging table as
// certstream-server-rust's --staging-path backfill leaves it: the 20-column
// certstream schema, seen_date partitions, zstd data files named
// part-NNNNN-<uuid>-c000.zstd.parquet, and a log written the way delta-rs
// writes it (protocol and metaData in version 0 with the first files,
// every add with delta-rs's null fields, commitInfo last with its
// clientVersion, operationParameters and operationMetrics), and no
// certlake.role marker.
//
// No delta-rs runs here, so the data files are written by certlake's own
// writer (whose layout follows the files delta-rs writes, spec 2.1) and the
// log by hand in delta-rs's form.
package rsstaging

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/record"
)

// ClientVersion is the commitInfo.clientVersion the log carries.
const ClientVersion = "delta-rs.0.25.0"

// Write creates the table at dir holding batches, one Delta version per
// batch (version 0 also creates the table, as delta-rs's write to a new
// location does). dir must not exist yet.
func Write(ctx context.Context, dir string, batches ...[]record.Row) error {
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("rsstaging: %s exists", dir)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	scratch, err := os.MkdirTemp(filepath.Dir(dir), ".rsstaging-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	t, err := lake.OpenOrCreate(ctx, filepath.Join(scratch, "t"), lake.Options{Role: lake.RoleMain})
	if err != nil {
		return err
	}
	schema, err := lake.Schema(false).JSON()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "_delta_log"), 0o755); err != nil {
		return err
	}
	seen := map[string]bool{}
	now := time.Now().UnixMilli()
	for v, rows := range batches {
		w := t.NewWriter(lake.WriterOptions{})
		for _, r := range rows {
			if err := w.Write(r); err != nil {
				w.Abort()
				return err
			}
		}
		if _, err := w.Commit(ctx, lake.CommitOptions{}); err != nil {
			return err
		}
		snap, err := t.Snapshot(ctx)
		if err != nil {
			return err
		}
		var lines []string
		if v == 0 {
			lines = append(lines,
				`{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}`,
				fmt.Sprintf(`{"metaData":{"id":%q,"name":null,"description":null,"format":{"provider":"parquet","options":{}},"schemaString":%s,"partitionColumns":["seen_date"],"createdTime":%d,"configuration":{}}}`,
					uuid.NewString(), quote(schema), now))
		}
		var added, addedRows int64
		for _, a := range snap.Files {
			if seen[a.Path] {
				continue
			}
			seen[a.Path] = true
			date := a.PartitionValues[lake.PartitionColumn]
			rel := path.Join(lake.PartitionColumn+"="+date, fmt.Sprintf("part-00001-%s-c000.zstd.parquet", uuid.NewString()))
			if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(filepath.FromSlash(rel))), 0o755); err != nil {
				return err
			}
			if err := os.Rename(snap.LocalPath(a), filepath.Join(dir, filepath.FromSlash(rel))); err != nil {
				return err
			}
			st, _, err := delta.ParseStats(a.Stats)
			if err != nil {
				return err
			}
			added++
			addedRows += st.NumRecords
			lines = append(lines, fmt.Sprintf(`{"add":{"path":%q,"partitionValues":{"seen_date":%q},"size":%d,"modificationTime":%d,"dataChange":true,"stats":%s,"tags":null,"deletionVector":null,"baseRowId":null,"defaultRowCommitVersion":null,"clusteringProvider":null}}`,
				delta.EncodePath(rel), date, a.Size, now, quote(a.Stats)))
		}
		mode := "Append"
		if v == 0 {
			mode = "ErrorIfExists"
		}
		lines = append(lines, fmt.Sprintf(`{"commitInfo":{"timestamp":%d,"operation":"WRITE","operationParameters":{"mode":%q},"operationMetrics":{"execution_time_ms":12,"num_added_files":%d,"num_added_rows":%d,"num_partitions":%d,"num_removed_files":0},"clientVersion":%q}}`,
			now, mode, added, addedRows, added, ClientVersion))
		name := filepath.Join(dir, "_delta_log", fmt.Sprintf("%020d.json", v))
		if err := os.WriteFile(name, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
