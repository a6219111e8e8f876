package delta

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// The schema types follow "Schema Serialization Format" in PROTOCOL.md: a
// subset of Spark SQL's JSON schema. A primitive type is a bare JSON string
// ("long", "decimal(8,5)"); nested types are objects tagged by "type".

// StructType is a Delta schema (schemaString) or a nested struct type.
type StructType struct {
	Fields []StructField
}

// StructField is one field of a StructType.
type StructField struct {
	Name     string
	Type     DataType
	Nullable bool
	Metadata map[string]any
}

// DataType is a Delta data type: a primitive name ("long", "string",
// "timestamp", "binary", ...) or one of the nested types. Exactly one of the
// fields is set.
type DataType struct {
	Primitive string
	Array     *ArrayType
	Struct    *StructType
	Map       *MapType
}

// ArrayType is {"type":"array",...}.
type ArrayType struct {
	ElementType  DataType
	ContainsNull bool
}

// MapType is {"type":"map",...}.
type MapType struct {
	KeyType           DataType
	ValueType         DataType
	ValueContainsNull bool
}

// String renders the type in Spark DDL form with Delta's type names:
// "long", "array<string>", "map<string,long>", "struct<a:integer,b:string>".
// Field names that are not plain identifiers are quoted with backticks.
// ParseType reads the result back.
func (d DataType) String() string {
	var b strings.Builder
	d.writeDDL(&b)
	return b.String()
}

func (d DataType) writeDDL(b *strings.Builder) {
	switch {
	case d.Array != nil:
		b.WriteString("array<")
		d.Array.ElementType.writeDDL(b)
		b.WriteByte('>')
	case d.Map != nil:
		b.WriteString("map<")
		d.Map.KeyType.writeDDL(b)
		b.WriteByte(',')
		d.Map.ValueType.writeDDL(b)
		b.WriteByte('>')
	case d.Struct != nil:
		b.WriteString("struct<")
		for i, f := range d.Struct.Fields {
			if i > 0 {
				b.WriteByte(',')
			}
			if isIdent(f.Name) {
				b.WriteString(f.Name)
			} else {
				b.WriteByte('`')
				b.WriteString(strings.ReplaceAll(f.Name, "`", "``"))
				b.WriteByte('`')
			}
			b.WriteByte(':')
			f.Type.writeDDL(b)
		}
		b.WriteByte('>')
	default:
		b.WriteString(d.Primitive)
	}
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Equal reports whether d and o are the same type. Nullability of array
// elements and map values counts; field metadata does not.
func (d DataType) Equal(o DataType) bool {
	switch {
	case d.Array != nil:
		return o.Array != nil && d.Array.ContainsNull == o.Array.ContainsNull &&
			d.Array.ElementType.Equal(o.Array.ElementType)
	case d.Map != nil:
		return o.Map != nil && d.Map.ValueContainsNull == o.Map.ValueContainsNull &&
			d.Map.KeyType.Equal(o.Map.KeyType) && d.Map.ValueType.Equal(o.Map.ValueType)
	case d.Struct != nil:
		if o.Struct == nil || len(d.Struct.Fields) != len(o.Struct.Fields) {
			return false
		}
		for i, f := range d.Struct.Fields {
			g := o.Struct.Fields[i]
			if f.Name != g.Name || f.Nullable != g.Nullable || !f.Type.Equal(g.Type) {
				return false
			}
		}
		return true
	default:
		return o.Array == nil && o.Map == nil && o.Struct == nil && d.Primitive == o.Primitive
	}
}

// Field returns the field called name (exact match).
func (s StructType) Field(name string) (StructField, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return StructField{}, false
}

// ParseSchema parses metaData.schemaString.
func ParseSchema(s string) (StructType, error) {
	var st StructType
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber() // keep column metadata numbers (e.g. column mapping ids) exact
	if err := dec.Decode(&st); err != nil {
		return StructType{}, fmt.Errorf("parse schema: %w", err)
	}
	if dec.More() {
		return StructType{}, fmt.Errorf("parse schema: trailing data after the struct")
	}
	return st, nil
}

// JSON renders the schema as a schemaString.
func (s StructType) JSON() (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("render schema: %w", err)
	}
	return string(b), nil
}

// MarshalJSON writes {"type":"struct","fields":[...]}.
func (s StructType) MarshalJSON() ([]byte, error) {
	fields := s.Fields
	if fields == nil {
		fields = []StructField{}
	}
	return json.Marshal(struct {
		Type   string        `json:"type"`
		Fields []StructField `json:"fields"`
	}{"struct", fields})
}

// UnmarshalJSON reads {"type":"struct","fields":[...]}.
func (s *StructType) UnmarshalJSON(b []byte) error {
	var raw struct {
		Type   string        `json:"type"`
		Fields []StructField `json:"fields"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw.Type != "struct" {
		return fmt.Errorf("struct type: got type %q, want \"struct\"", raw.Type)
	}
	seen := make(map[string]bool, len(raw.Fields))
	for _, f := range raw.Fields {
		// PROTOCOL.md: column names must be unique regardless of casing.
		k := strings.ToLower(f.Name)
		if seen[k] {
			return fmt.Errorf("struct type: duplicate field %q", f.Name)
		}
		seen[k] = true
	}
	s.Fields = raw.Fields
	return nil
}

type jsonField struct {
	Name     string         `json:"name"`
	Type     DataType       `json:"type"`
	Nullable bool           `json:"nullable"`
	Metadata map[string]any `json:"metadata"`
}

// MarshalJSON writes {"name":..,"type":..,"nullable":..,"metadata":{..}}.
func (f StructField) MarshalJSON() ([]byte, error) {
	md := f.Metadata
	if md == nil {
		md = map[string]any{}
	}
	return json.Marshal(jsonField{Name: f.Name, Type: f.Type, Nullable: f.Nullable, Metadata: md})
}

// UnmarshalJSON reads a struct field; name and type are required.
func (f *StructField) UnmarshalJSON(b []byte) error {
	var raw struct {
		Name     *string         `json:"name"`
		Type     json.RawMessage `json:"type"`
		Nullable *bool           `json:"nullable"`
		Metadata map[string]any  `json:"metadata"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	if raw.Name == nil {
		return fmt.Errorf("struct field: missing name")
	}
	if len(raw.Type) == 0 {
		return fmt.Errorf("struct field %q: missing type", *raw.Name)
	}
	var t DataType
	if err := t.UnmarshalJSON(raw.Type); err != nil {
		return fmt.Errorf("struct field %q: %w", *raw.Name, err)
	}
	f.Name = *raw.Name
	f.Type = t
	// Spark always writes nullable; treat a missing flag as nullable, the
	// permissive reading.
	f.Nullable = raw.Nullable == nil || *raw.Nullable
	f.Metadata = raw.Metadata
	return nil
}

// MarshalJSON writes a primitive as a JSON string and nested types as objects.
func (d DataType) MarshalJSON() ([]byte, error) {
	switch {
	case d.Array != nil:
		return json.Marshal(struct {
			Type         string   `json:"type"`
			ElementType  DataType `json:"elementType"`
			ContainsNull bool     `json:"containsNull"`
		}{"array", d.Array.ElementType, d.Array.ContainsNull})
	case d.Map != nil:
		return json.Marshal(struct {
			Type              string   `json:"type"`
			KeyType           DataType `json:"keyType"`
			ValueType         DataType `json:"valueType"`
			ValueContainsNull bool     `json:"valueContainsNull"`
		}{"map", d.Map.KeyType, d.Map.ValueType, d.Map.ValueContainsNull})
	case d.Struct != nil:
		return d.Struct.MarshalJSON()
	case d.Primitive == "":
		return nil, fmt.Errorf("data type: empty")
	default:
		return json.Marshal(d.Primitive)
	}
}

// UnmarshalJSON reads a primitive name or an array, map or struct object.
func (d *DataType) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			return fmt.Errorf("data type: empty name")
		}
		*d = DataType{Primitive: s}
		return nil
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return fmt.Errorf("data type: %w", err)
	}
	switch head.Type {
	case "array":
		var raw struct {
			ElementType  *DataType `json:"elementType"`
			ContainsNull *bool     `json:"containsNull"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			return fmt.Errorf("array type: %w", err)
		}
		if raw.ElementType == nil {
			return fmt.Errorf("array type: missing elementType")
		}
		*d = DataType{Array: &ArrayType{ElementType: *raw.ElementType, ContainsNull: raw.ContainsNull == nil || *raw.ContainsNull}}
	case "map":
		var raw struct {
			KeyType           *DataType `json:"keyType"`
			ValueType         *DataType `json:"valueType"`
			ValueContainsNull *bool     `json:"valueContainsNull"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			return fmt.Errorf("map type: %w", err)
		}
		if raw.KeyType == nil || raw.ValueType == nil {
			return fmt.Errorf("map type: missing keyType or valueType")
		}
		*d = DataType{Map: &MapType{KeyType: *raw.KeyType, ValueType: *raw.ValueType, ValueContainsNull: raw.ValueContainsNull == nil || *raw.ValueContainsNull}}
	case "struct":
		var st StructType
		if err := st.UnmarshalJSON(b); err != nil {
			return err
		}
		*d = DataType{Struct: &st}
	default:
		return fmt.Errorf("data type: unknown nested type %q", head.Type)
	}
	return nil
}

// ddlAliases maps Spark SQL DDL spellings to Delta's type names.
var ddlAliases = map[string]string{
	"int": "integer", "bigint": "long", "smallint": "short", "tinyint": "byte",
	"bool": "boolean", "real": "float", "dec": "decimal", "numeric": "decimal",
}

// ParseType parses a DDL type string such as "long", "array<string>",
// "map<string,bigint>" or "struct<a:int,`b c`:string>". Spark spellings
// (int, bigint, ...) become Delta names (integer, long, ...). Array elements,
// map values and struct fields parsed this way are nullable.
func ParseType(ddl string) (DataType, error) {
	p := ddlParser{s: ddl}
	t, err := p.parseType()
	if err != nil {
		return DataType{}, fmt.Errorf("parse type %q: %w", ddl, err)
	}
	p.skipSpace()
	if p.i != len(p.s) {
		return DataType{}, fmt.Errorf("parse type %q: unexpected %q at %d", ddl, p.s[p.i:], p.i)
	}
	return t, nil
}

type ddlParser struct {
	s string
	i int
}

func (p *ddlParser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n') {
		p.i++
	}
}

func (p *ddlParser) expect(c byte) error {
	p.skipSpace()
	if p.i >= len(p.s) || p.s[p.i] != c {
		return fmt.Errorf("want %q at %d", c, p.i)
	}
	p.i++
	return nil
}

func (p *ddlParser) ident() (string, error) {
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == '`' {
		var b strings.Builder
		p.i++
		for p.i < len(p.s) {
			c := p.s[p.i]
			p.i++
			if c == '`' {
				if p.i < len(p.s) && p.s[p.i] == '`' {
					b.WriteByte('`')
					p.i++
					continue
				}
				return b.String(), nil
			}
			b.WriteByte(c)
		}
		return "", fmt.Errorf("unterminated quoted name")
	}
	start := p.i
	for p.i < len(p.s) && isIdent(p.s[p.i:p.i+1]) {
		p.i++
	}
	if start == p.i {
		return "", fmt.Errorf("want a name at %d", start)
	}
	return p.s[start:p.i], nil
}

func (p *ddlParser) parseType() (DataType, error) {
	name, err := p.ident()
	if err != nil {
		return DataType{}, err
	}
	lname := strings.ToLower(name)
	if a, ok := ddlAliases[lname]; ok {
		lname = a
	}
	switch lname {
	case "array":
		if err := p.expect('<'); err != nil {
			return DataType{}, err
		}
		el, err := p.parseType()
		if err != nil {
			return DataType{}, err
		}
		if err := p.expect('>'); err != nil {
			return DataType{}, err
		}
		return DataType{Array: &ArrayType{ElementType: el, ContainsNull: true}}, nil
	case "map":
		if err := p.expect('<'); err != nil {
			return DataType{}, err
		}
		k, err := p.parseType()
		if err != nil {
			return DataType{}, err
		}
		if err := p.expect(','); err != nil {
			return DataType{}, err
		}
		v, err := p.parseType()
		if err != nil {
			return DataType{}, err
		}
		if err := p.expect('>'); err != nil {
			return DataType{}, err
		}
		return DataType{Map: &MapType{KeyType: k, ValueType: v, ValueContainsNull: true}}, nil
	case "struct":
		if err := p.expect('<'); err != nil {
			return DataType{}, err
		}
		st := &StructType{}
		p.skipSpace()
		if p.i < len(p.s) && p.s[p.i] == '>' {
			p.i++
			return DataType{Struct: st}, nil
		}
		for {
			fname, err := p.ident()
			if err != nil {
				return DataType{}, err
			}
			if err := p.expect(':'); err != nil {
				return DataType{}, err
			}
			ft, err := p.parseType()
			if err != nil {
				return DataType{}, err
			}
			st.Fields = append(st.Fields, StructField{Name: fname, Type: ft, Nullable: true})
			p.skipSpace()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
				continue
			}
			if err := p.expect('>'); err != nil {
				return DataType{}, err
			}
			return DataType{Struct: st}, nil
		}
	case "decimal":
		p.skipSpace()
		if p.i >= len(p.s) || p.s[p.i] != '(' {
			return DataType{Primitive: "decimal(10,0)"}, nil // Spark's default precision
		}
		p.i++
		prec, err := p.number()
		if err != nil {
			return DataType{}, err
		}
		scale := 0
		p.skipSpace()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			if scale, err = p.number(); err != nil {
				return DataType{}, err
			}
		}
		if err := p.expect(')'); err != nil {
			return DataType{}, err
		}
		if prec < 1 || prec > 38 || scale > prec {
			return DataType{}, fmt.Errorf("decimal(%d,%d) out of range", prec, scale)
		}
		return DataType{Primitive: fmt.Sprintf("decimal(%d,%d)", prec, scale)}, nil
	default:
		return DataType{Primitive: lname}, nil
	}
}

func (p *ddlParser) number() (int, error) {
	p.skipSpace()
	start := p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	n, err := strconv.Atoi(p.s[start:p.i])
	if err != nil {
		return 0, fmt.Errorf("want a number at %d", start)
	}
	return n, nil
}
