// Package ctlog finds Certificate Transparency logs and reads ranges of their
// entries, over both the RFC 6962 API (get-sth, get-entries) and the
// [Static CT API] (checkpoint, data tiles, issuers).
//
// The behaviour is specified in spec/record-format.md of the certlake design
// documents, sections 6 and 8; this package fixes quirks Q1 to Q4 and Q16
// listed there: it never emits an entry outside the requested range, reads the
// partial last tile of a static log, reports a range that could not be fetched
// instead of skipping it, never advances past an index the log did not return,
// and can read retired logs.
//
// A [Reader] emits every index of a range exactly once, in order, either as a
// [record.Entry] or as a [BadEntry] that says why it could not be decoded.
//
// [Static CT API]: https://c2sp.org/static-ct-api
package ctlog
