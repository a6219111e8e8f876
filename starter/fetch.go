package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/certlake/certlake/internal/ctlog"
	"github.com/certlake/certlake/internal/options"
	"github.com/certlake/certlake/internal/record"
)

// rowJSON is one row as fetch --json prints it: the 20 column names as keys,
// in table order; seen in Unix seconds (milliseconds as the fraction), as_der
// base64, the lists as arrays of strings, as the table stores them.
type rowJSON struct {
	CertIndex          uint64      `json:"cert_index"`
	UpdateType         string      `json:"update_type"`
	Seen               json.Number `json:"seen"`
	SeenDate           string      `json:"seen_date"`
	SourceName         string      `json:"source_name"`
	SourceURL          string      `json:"source_url"`
	CertLink           string      `json:"cert_link"`
	SerialNumber       string      `json:"serial_number"`
	Fingerprint        string      `json:"fingerprint"`
	SHA256             string      `json:"sha256"`
	SHA1               string      `json:"sha1"`
	NotBefore          int64       `json:"not_before"`
	NotAfter           int64       `json:"not_after"`
	IsCA               bool        `json:"is_ca"`
	SignatureAlgorithm string      `json:"signature_algorithm"`
	SubjectAggregated  string      `json:"subject_aggregated"`
	IssuerAggregated   string      `json:"issuer_aggregated"`
	AllDomains         []string    `json:"all_domains"`
	AsDER              string      `json:"as_der"`
	Chain              []string    `json:"chain"`
}

func toRowJSON(r record.Row) rowJSON {
	ms := r.Seen.UnixMilli()
	seen := strconv.FormatInt(ms/1000, 10) + "." + fmt.Sprintf("%03d", ms%1000)
	if ms < 0 {
		seen = strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)
	}
	nonNil := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	return rowJSON{
		CertIndex: r.CertIndex, UpdateType: r.UpdateType, Seen: json.Number(seen), SeenDate: r.SeenDate,
		SourceName: r.SourceName, SourceURL: r.SourceURL, CertLink: r.CertLink, SerialNumber: r.SerialNumber,
		Fingerprint: r.Fingerprint, SHA256: r.SHA256, SHA1: r.SHA1, NotBefore: r.NotBefore, NotAfter: r.NotAfter,
		IsCA: r.IsCA, SignatureAlgorithm: r.SignatureAlgorithm, SubjectAggregated: r.SubjectAggregated,
		IssuerAggregated: r.IssuerAggregated, AllDomains: nonNil(r.AllDomains),
		AsDER: base64.StdEncoding.EncodeToString(r.AsDER), Chain: nonNil(r.Chain),
	}
}

// runFetch prints the rows of one range of one log. Entries that cannot be
// parsed go to stderr with their index; a range that cannot be fetched ends
// the command with an error after the rows before it.
func fetchCommand(c *cli) *cobra.Command {
	cmd, fs := newCommand("fetch", "print the rows of a range of a CT log as JSON lines")
	cmd.GroupID = groupLocal
	logURL := fs.String("log", "", "log URL (RFC 6962 base URL, or the monitoring prefix of a static-ct-api log)")
	static := fs.Bool("static", false, "the log speaks the static-ct-api (tiles)")
	name := fs.String("name", "", "source_name (the log's description); default from the configured logs or the log list")
	start := fs.Uint64("start", 0, "first index (inclusive)")
	end := fs.Uint64("end", 0, "last index (inclusive)")
	asJSON := fs.Bool("json", false, "print one JSON object per row (keys: the 20 column names)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if len(args) > 0 {
			return usageError("fetch takes no arguments, got %q", args)
		}
		if *logURL == "" || !fs.Changed("start") || !fs.Changed("end") {
			return usageError("fetch requires --log URL, --start N and --end M")
		}
		if *start > *end {
			return usageError("--start %d is after --end %d (the range is inclusive)", *start, *end)
		}
		cfg, err := loadConfig(fs)
		if err != nil {
			return err
		}
		cat := options.Catalog(cfg)
		l := resolveLog(ctx, c, cat, *logURL, *name, fs.Changed("static"), *static)
		src := record.Source{URL: l.URL, Name: l.Name, Static: l.Static}
		reader := cat.Reader(l)

		out := bufio.NewWriterSize(c.stdout, 1<<16)
		defer out.Flush()
		enc := json.NewEncoder(out)
		var (
			b          record.Builder
			rows, bad  int
			fetchStart = time.Now()
		)
		err = reader.Entries(ctx, *start, *end, func(bt ctlog.Batch) error {
			for _, be := range bt.Bad {
				bad++
				fmt.Fprintf(c.stderr, "bad entry %d: %v\n", be.Index, be.Err)
			}
			for _, e := range bt.Entries {
				row, err := b.Build(e, src)
				if err != nil {
					bad++
					fmt.Fprintf(c.stderr, "bad entry %d: %v\n", e.Index, err)
					continue
				}
				rows++
				if *asJSON {
					if err := enc.Encode(toRowJSON(row)); err != nil {
						return err
					}
					continue
				}
				printRow(out, row)
			}
			return nil
		})
		if ferr := out.Flush(); ferr != nil && err == nil {
			err = ferr
		}
		if err != nil {
			return fmt.Errorf("fetch %s [%d, %d]: %w", l.URL, *start, *end, err)
		}
		if !*asJSON || bad > 0 {
			fmt.Fprintf(c.stderr, "%d rows, %d bad entries from %s [%d, %d] in %s\n", rows, bad, l.URL, *start, *end, time.Since(fetchStart).Round(time.Millisecond))
		}
		return nil
	}
	return cmd
}

// printRow is the text form of a row: one line per entry.
func printRow(w io.Writer, r record.Row) {
	domains := strings.Join(r.AllDomains, ",")
	if len(domains) > 100 {
		domains = domains[:97] + "..."
	}
	fmt.Fprintf(w, "%d\t%s\t%s\t%s..%s\t%s\t%s\n", r.CertIndex, r.UpdateType, r.SerialNumber,
		time.Unix(r.NotBefore, 0).UTC().Format("2006-01-02"), time.Unix(r.NotAfter, 0).UTC().Format("2006-01-02"),
		domains, r.IssuerAggregated)
}

// resolveLog finds the log at rawURL in the catalog (the configured logs
// and, when the name is not given, the log list with its retired logs) for
// its description (the source_name column), kind and settings. Without
// either, the URL stands in for the name, with a warning: the live ingester
// writes the description.
func resolveLog(ctx context.Context, c *cli, cat *ctlog.Catalog, rawURL, name string, staticGiven, static bool) ctlog.Log {
	u := record.NormalizeURL(rawURL)
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	known, err := cat.List(lctx, ctlog.CatalogOptions{Offline: name != "", IncludeRetired: true})
	cancel()
	if err != nil { // no list: the configured logs still name theirs
		known, _ = cat.List(ctx, ctlog.CatalogOptions{Offline: true})
	}
	for _, k := range known {
		if k.URL != u {
			continue
		}
		k.Name = orDefault(name, k.Name)
		if staticGiven {
			k.Static = static
		}
		return k
	}
	l := cat.Tune(ctlog.Log{URL: u, Name: name, Static: static})
	if l.Name == "" {
		l.Name = u
		fmt.Fprintf(c.stderr, "warning: %s is not in the log list or config; source_name is its URL (give --name DESC)\n", u)
	}
	return l
}
