package lake

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/record"
)

// PartitionColumn is the table's only partition column.
const PartitionColumn = "seen_date"

// ErrNotCertstream: the Delta table's schema or partitioning is not the
// certstream table's. The message says what differs.
var ErrNotCertstream = errors.New("lake: not a certstream table")

// columnKind is the Delta type family of one certstream column.
type columnKind int

const (
	kindLong columnKind = iota
	kindString
	kindTimestamp
	kindBool
	kindStringList
	kindDER // string (base64) or binary, per table
)

// columnKinds gives the Delta type of each of the 20 columns (spec 2.1).
var columnKinds = map[string]columnKind{
	"cert_index":          kindLong,
	"update_type":         kindString,
	"seen":                kindTimestamp,
	"seen_date":           kindString,
	"source_name":         kindString,
	"source_url":          kindString,
	"cert_link":           kindString,
	"serial_number":       kindString,
	"fingerprint":         kindString,
	"sha256":              kindString,
	"sha1":                kindString,
	"not_before":          kindLong,
	"not_after":           kindLong,
	"is_ca":               kindBool,
	"signature_algorithm": kindString,
	"subject_aggregated":  kindString,
	"issuer_aggregated":   kindString,
	"all_domains":         kindStringList,
	"as_der":              kindDER,
	"chain":               kindStringList,
}

func primitive(name string) delta.DataType { return delta.DataType{Primitive: name} }

func stringList() delta.DataType {
	return delta.DataType{Array: &delta.ArrayType{ElementType: primitive("string"), ContainsNull: true}}
}

// Schema returns the certstream table schema of spec 2.1: 20 non-nullable
// columns in table order. asDERBinary selects the [HEAD] `binary` type of
// as_der instead of the base64 `string` of older tables.
func Schema(asDERBinary bool) delta.StructType {
	fields := make([]delta.StructField, 0, len(record.Columns))
	for _, name := range record.Columns {
		var t delta.DataType
		switch columnKinds[name] {
		case kindLong:
			t = primitive("long")
		case kindString:
			t = primitive("string")
		case kindTimestamp:
			t = primitive("timestamp")
		case kindBool:
			t = primitive("boolean")
		case kindStringList:
			t = stringList()
		case kindDER:
			t = primitive("string")
			if asDERBinary {
				t = primitive("binary")
			}
		}
		fields = append(fields, delta.StructField{Name: name, Type: t, Nullable: false, Metadata: map[string]any{}})
	}
	return delta.StructType{Fields: fields}
}

// layout is what a writer needs to know about an existing table's schema.
type layout struct {
	asDERBinary bool
	// extra lists nullable columns the table has beyond the 20; files omit
	// them, which Delta readers read as null.
	extra []string
}

// conform checks that a table's schema and partitioning are the certstream
// table's and returns how to write to it. Tolerated differences: column
// order, nullable flags on the 20 columns (certlake never writes nulls),
// containsNull on the list columns, and extra nullable columns.
func conform(schema delta.StructType, partitionColumns []string) (layout, error) {
	var l layout
	var problems []string
	seen := make(map[string]bool, len(schema.Fields))
	for _, f := range schema.Fields {
		seen[f.Name] = true
		kind, ok := columnKinds[f.Name]
		if !ok {
			if !f.Nullable {
				problems = append(problems, fmt.Sprintf("extra column %s is not nullable", f.Name))
				continue
			}
			l.extra = append(l.extra, f.Name)
			continue
		}
		got := typeName(f.Type)
		var want string
		switch kind {
		case kindLong:
			want = "long"
		case kindString:
			want = "string"
		case kindTimestamp:
			want = "timestamp"
		case kindBool:
			want = "boolean"
		case kindStringList:
			want = "array<string>"
		case kindDER:
			switch f.Type.Primitive {
			case "binary":
				l.asDERBinary = true
				continue
			case "string":
				continue
			}
			want = "string or binary"
		}
		if got != want {
			problems = append(problems, fmt.Sprintf("column %s has type %s, want %s", f.Name, got, want))
		}
	}
	for _, name := range record.Columns {
		if !seen[name] {
			problems = append(problems, "missing column "+name)
		}
	}
	if !slices.Equal(partitionColumns, []string{PartitionColumn}) {
		problems = append(problems, fmt.Sprintf("not partitioned by %s alone (partition columns %v)", PartitionColumn, partitionColumns))
	}
	if len(problems) > 0 {
		return layout{}, fmt.Errorf("%w: %s", ErrNotCertstream, strings.Join(problems, "; "))
	}
	return l, nil
}

// typeName renders a Delta type in Spark DDL form for messages and checks.
func typeName(t delta.DataType) string {
	switch {
	case t.Array != nil:
		return "array<" + typeName(t.Array.ElementType) + ">"
	case t.Map != nil:
		return "map<" + typeName(t.Map.KeyType) + "," + typeName(t.Map.ValueType) + ">"
	case t.Struct != nil:
		parts := make([]string, len(t.Struct.Fields))
		for i, f := range t.Struct.Fields {
			parts[i] = f.Name + ":" + typeName(f.Type)
		}
		return "struct<" + strings.Join(parts, ",") + ">"
	}
	return t.Primitive
}
