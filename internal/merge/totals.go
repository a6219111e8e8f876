package merge

// Totals are the counts of a whole merge.
type Totals struct {
	StagingRows int64 `json:"total_staging_rows"`
	Inserted    int64 `json:"total_inserted"`
	Skipped     int64 `json:"total_skipped"`
}
