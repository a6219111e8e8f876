package merge

import "github.com/certlake/certlake/internal/record"

// fileColumnList selects the 19 data columns of a certstream file (every
// column but the seen_date partition) by name, qualified with alias.
func fileColumnList(alias string) string {
	var b []byte
	for _, c := range record.Columns {
		if c == "seen_date" {
			continue
		}
		if len(b) > 0 {
			b = append(b, ", "...)
		}
		b = append(b, alias+"."+c...)
	}
	return string(b)
}

// stringList converts a scanned DuckDB LIST(VARCHAR).
func stringList(v any) ([]string, error) {
	switch l := v.(type) {
	case nil:
		return []string{}, nil
	case []any:
		out := make([]string, len(l))
		for i, e := range l {
			if s, ok := e.(string); ok {
				out[i] = s
			}
		}
		return out, nil
	}
	return nil, errNotList
}

var errNotList = errorString("not a list of strings")

type errorString string

func (e errorString) Error() string { return string(e) }
