package delta

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestParseTypeAndString(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"long", "long"},
		{"bigint", "long"},
		{"INT", "integer"},
		{"array<string>", "array<string>"},
		{"map<string,bigint>", "map<string,long>"},
		{"struct<a:int>", "struct<a:integer>"},
		{"struct< a : int , `b c` : array<struct<d:string>> >", "struct<a:integer,`b c`:array<struct<d:string>>>"},
		{"decimal(8,5)", "decimal(8,5)"},
		{"timestamp", "timestamp"},
		{"map<string,map<string,array<binary>>>", "map<string,map<string,array<binary>>>"},
	}
	for _, tt := range tests {
		got, err := ParseType(tt.in)
		if err != nil || got.String() != tt.want {
			t.Errorf("ParseType(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
			continue
		}
		again, err := ParseType(got.String())
		if err != nil || !again.Equal(got) {
			t.Errorf("ParseType(%q) = %s, %v; want it to round-trip", got.String(), again, err)
		}
	}
	for _, bad := range []string{"", "array<", "map<string>", "struct<a>", "decimal(40,2)", "long long"} {
		if _, err := ParseType(bad); err == nil {
			t.Errorf("ParseType(%q) = nil error, want an error", bad)
		}
	}
}

func TestSchemaJSON(t *testing.T) {
	want := `{"type":"struct","fields":[` +
		`{"name":"cert_index","type":"long","nullable":false,"metadata":{}},` +
		`{"name":"all_domains","type":{"type":"array","elementType":"string","containsNull":true},"nullable":true,"metadata":{}},` +
		`{"name":"m","type":{"type":"map","keyType":"string","valueType":"long","valueContainsNull":false},"nullable":true,"metadata":{"comment":"x","delta.columnMapping.id":7}},` +
		`{"name":"s","type":{"type":"struct","fields":[{"name":"a","type":"integer","nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}}]}`
	st, err := ParseSchema(want)
	if err != nil {
		t.Fatalf("ParseSchema() = %v", err)
	}
	if got := st.Fields[1].Type.String(); got != "array<string>" {
		t.Errorf("all_domains type = %s, want array<string>", got)
	}
	if got := st.Fields[0]; got.Name != "cert_index" || got.Nullable || got.Type.Primitive != "long" {
		t.Errorf("field 0 = %+v", got)
	}
	out, err := st.JSON()
	if err != nil || out != want {
		t.Errorf("JSON() =\n%s, %v\nwant\n%s", out, err, want)
	}
	// Built by hand, nil metadata renders as {}.
	built := StructType{Fields: []StructField{{Name: "cert_index", Type: DataType{Primitive: "long"}}}}
	if out, _ := built.JSON(); out != `{"type":"struct","fields":[{"name":"cert_index","type":"long","nullable":false,"metadata":{}}]}` {
		t.Errorf("JSON() = %s", out)
	}
	for _, bad := range []string{`{"type":"array"}`, `{"type":"struct","fields":[{"name":"a","type":"long"},{"name":"A","type":"long"}]}`, `{"type":"struct","fields":[{"name":"a"}]}`, `{"type":"struct","fields":[{"name":"a","type":{"type":"weird"}}]}`} {
		if _, err := ParseSchema(bad); err == nil {
			t.Errorf("ParseSchema(%s) = nil error, want an error", bad)
		}
	}
}

func TestFixtureSchemasRoundTrip(t *testing.T) {
	m := loadManifest(t)
	for name, mt := range m.Tables {
		if mt.ReaderV1 != "read" {
			continue
		}
		tbl, err := Open(t.Context(), fixtures+"/"+name, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s, err := tbl.Snapshot(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.Schema.JSON()
		if err != nil {
			t.Fatalf("%s: JSON() = %v", name, err)
		}
		var a, b any
		if err := json.Unmarshal([]byte(out), &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(s.Metadata.SchemaString), &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: schema JSON() =\n%s\nwant (as JSON)\n%s", name, out, s.Metadata.SchemaString)
		}
	}
}

func TestParseStats(t *testing.T) {
	tests := []struct {
		in      string
		ok, err bool
		rows    int64
	}{
		{"", false, false, 0},
		{`{"numRecords":5,"minValues":{"cert_index":9007199254740993,"s":{"n":1}},"maxValues":{"cert_index":12,"u":"z"},"nullCount":{"cert_index":0}}`, true, false, 5},
		{`{"minValues":{}}`, false, false, 0},
		{`{"numRecords":-1}`, false, true, 0},
		{`{"numRecords":`, false, true, 0},
		{`{"numRecords":1} x`, false, true, 0},
	}
	for _, tt := range tests {
		st, ok, err := ParseStats(tt.in)
		if ok != tt.ok || (err != nil) != tt.err || st.NumRecords != tt.rows {
			t.Errorf("ParseStats(%q) = %+v, %v, %v; want ok=%v err=%v rows=%d", tt.in, st, ok, err, tt.ok, tt.err, tt.rows)
		}
	}
	st, _, _ := ParseStats(tests[1].in)
	if v, ok := st.MinInt64("cert_index"); !ok || v != 9007199254740993 {
		t.Errorf("MinInt64(cert_index) = %d, %v; want 9007199254740993 exactly", v, ok)
	}
	if v, ok := st.MinInt64("s.n"); !ok || v != 1 {
		t.Errorf("MinInt64(s.n) = %d, %v; want 1", v, ok)
	}
	if v, ok := st.MaxString("u"); !ok || v != "z" {
		t.Errorf("MaxString(u) = %q, %v", v, ok)
	}
	if v, ok := st.Nulls("cert_index"); !ok || v != 0 {
		t.Errorf("Nulls(cert_index) = %d, %v", v, ok)
	}
	if _, ok := st.MaxInt64("missing"); ok {
		t.Error("MaxInt64(missing) ok, want not found")
	}
}
