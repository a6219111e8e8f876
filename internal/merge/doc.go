// Package merge moves the rows of a certlake staging table into the main
// certstream table without duplicates, as AC3 and AC4 of
// spec/seed-staging-backfill-test-requirements.md (certlake design
// documents) require, fixing quirks Q7, Q8 and Q11 of spec/record-format.md:
//
//   - [PlanMerge] takes a snapshot of staging at version V and cuts its files
//     into key-disjoint batches, from the files' (source_url, cert_index)
//     ranges, so two staging rows with the same key always meet in one batch
//     (Q8) and no batch needs all of staging in memory (Q7).
//   - [MergeBatch] reads one batch's staging files with DuckDB, keeps one row
//     per key, anti-joins it against only the main files whose stats can hold
//     the batch's keys, has DuckDB write the new rows as main's Parquet
//     files (in the lake writer's format), and appends them in one Delta commit
//     carrying a txn that makes a retried batch a no-op. A concurrent writer
//     whose commit holds one of the batch's new keys makes the batch redo its
//     read, so main never holds a key twice.
//   - [Retire] removes exactly the files of snapshot V from staging once every
//     batch is in main, and deletes the staging directory only when nothing
//     newer was staged meanwhile (Q11).
//
// The package knows nothing of Temporal: the merge workflow's activities call
// these functions, one batch per activity.
package merge
