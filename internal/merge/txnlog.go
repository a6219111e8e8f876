package merge

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/storage"
)

// maxTxnScan bounds how many commits findTxnCommit reads back from the
// latest version. A retried batch looks for its own commit minutes after it
// landed, a few hundred live-ingester commits at most.
const maxTxnScan = 20_000

// txnCommit is what a batch's own commit added to main.
type txnCommit struct {
	version int64
	rows    int64 // sum of the adds' numRecords
	exact   bool  // every add carried numRecords
}

// findTxnCommit reads main's JSON commits from latest down to find the one
// carrying a txn action for appID, and sums the rows it added. Package
// delta keeps only the latest version per appId, not the commit, so the
// commit files are read directly; found is false when the commit is older
// than maxTxnScan versions or its JSON file was cleaned up.
func findTxnCommit(ctx context.Context, main storage.Store, appID string, latest int64) (c txnCommit, found bool, err error) {
	for v := latest; v >= 0 && latest-v < maxTxnScan; v-- {
		f, err := main.Get(ctx, fmt.Sprintf("_delta_log/%020d.json", v))
		if errors.Is(err, fs.ErrNotExist) {
			return txnCommit{}, false, nil
		}
		if err != nil {
			return txnCommit{}, false, fmt.Errorf("find commit of txn %s: %w", appID, err)
		}
		c, ok, err := readTxnCommit(f, appID)
		f.Close()
		if err != nil {
			return txnCommit{}, false, fmt.Errorf("find commit of txn %s: version %d: %w", appID, v, err)
		}
		if ok {
			c.version = v
			return c, true, nil
		}
	}
	return txnCommit{}, false, nil
}

func readTxnCommit(f io.Reader, appID string) (txnCommit, bool, error) {
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<28)
	c := txnCommit{exact: true}
	mine := false
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var a delta.Action
		if err := json.Unmarshal(line, &a); err != nil {
			return txnCommit{}, false, err
		}
		switch {
		case a.Txn != nil && a.Txn.AppID == appID:
			mine = true
		case a.Add != nil:
			if n := statsBox(*a.Add).Rows; n >= 0 {
				c.rows += n
			} else {
				c.exact = false
			}
		}
	}
	if err := sc.Err(); err != nil {
		return txnCommit{}, false, err
	}
	return c, mine, nil
}

// readCommitAdds returns the add actions of commit v of the table in main.
func readCommitAdds(ctx context.Context, main storage.Store, v int64) ([]delta.Add, error) {
	f, err := main.Get(ctx, fmt.Sprintf("_delta_log/%020d.json", v))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<28)
	var out []delta.Add
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var a delta.Action
		if err := json.Unmarshal(line, &a); err != nil {
			return nil, err
		}
		if a.Add != nil {
			out = append(out, *a.Add)
		}
	}
	return out, sc.Err()
}
