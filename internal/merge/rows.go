package merge

import (
	"strings"

	"github.com/certlake/certlake/internal/record"
)

// fileColumnList selects the 19 data columns of a certstream file (every
// column but the seen_date partition) by name, qualified with alias.
func fileColumnList(alias string) string {
	cols := make([]string, 0, len(record.Columns))
	for _, c := range record.Columns {
		if c != "seen_date" {
			cols = append(cols, alias+"."+c)
		}
	}
	return strings.Join(cols, ", ")
}
