package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
)

// MergeWorkflowID is the workflow id of the merge of one staging table:
// "merge-<base name>-<12 hex digits of the SHA-256 of the cleaned absolute
// path>". Every merge of that table runs under it (the starter, the
// schedule's runs, merge_after, and a MergeWorkflow started by hand under
// another id, which runs the merge as a child under this one), so Temporal
// itself keeps two merges of one staging table from running at once.
func MergeWorkflowID(stagingPath string) string {
	clean := path.Clean(stagingPath)
	sum := sha256.Sum256([]byte(clean))
	return "merge-" + path.Base(clean) + "-" + hex.EncodeToString(sum[:6])
}
