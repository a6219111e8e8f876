package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"strings"
)

// MergeWorkflowID is the workflow id of the merge of one staging table:
// "merge-<base name>-<12 hex digits of the SHA-256 of its canonical
// location>" (CanonicalStagingPath). Every merge of that table runs under it
// (the starter, the schedule's runs, merge_after, and a MergeWorkflow
// started by hand under another id, which runs the merge as a child under
// this one), so Temporal itself keeps two merges of one staging table from
// running at once.
func MergeWorkflowID(stagingPath string) string {
	clean, ok := CanonicalStagingPath(stagingPath)
	if !ok {
		clean = path.Clean(stagingPath)
	}
	sum := sha256.Sum256([]byte(clean))
	return "merge-" + path.Base(clean) + "-" + hex.EncodeToString(sum[:6])
}

// CanonicalStagingPath is the one spelling of a staging location that
// workflow ids derive from: a cleaned absolute path (a file:// URI becomes
// its path), or s3://bucket/prefix cleaned and without a trailing slash.
// ok is false for a relative path, which means different tables on workers
// started in different directories.
func CanonicalStagingPath(p string) (string, bool) {
	if rest, isFile := strings.CutPrefix(p, "file://"); isFile {
		p = strings.TrimPrefix(rest, "localhost")
	}
	for _, scheme := range []string{"s3://", "s3a://"} {
		if rest, isS3 := strings.CutPrefix(p, scheme); isS3 {
			bucket, key, _ := strings.Cut(rest, "/")
			key = strings.Trim(path.Clean("/"+key), "/")
			if key == "" {
				return "s3://" + bucket, bucket != ""
			}
			return "s3://" + bucket + "/" + key, bucket != ""
		}
	}
	if !path.IsAbs(p) {
		return "", false
	}
	return path.Clean(p), true
}
