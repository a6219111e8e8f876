package record

import (
	"encoding/base64"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// The two chain strings of spec/record-format.md section 5.5, verbatim.
const (
	wantChain0 = `{"subject":{"C":"US","CN":"Google Internet Authority","O":"Google Inc","aggregated":"/C=US/CN=Google Internet Authority/O=Google Inc"},"issuer":{"C":"US","O":"Equifax","OU":"Equifax Secure Certificate Authority","aggregated":"/C=US/O=Equifax/OU=Equifax Secure Certificate Authority"},"serial_number":"0B6771","not_before":1244493807,"not_after":1370634207,"fingerprint":"DD:7A:7F:13:1D:DB:A3:3D:3E:86:70:17:94:83:E6:FE:A6:98:7D:6A","sha1":"DD:7A:7F:13:1D:DB:A3:3D:3E:86:70:17:94:83:E6:FE:A6:98:7D:6A","sha256":"25:0D:A2:69:1B:E9:7C:9A:33:CE:EF:7E:31:1C:14:FB:01:84:6E:05:8A:99:CE:A9:BD:11:25:BD:25:A0:CA:D5","signature_algorithm":"sha1, rsa","is_ca":true,"extensions":{"authorityKeyIdentifier":"keyid:48:e6:68:f9:2b:d2:b2:95:d7:47:d8:23:20:10:4f:33:98:90:9f:d4","basicConstraints":"CA:TRUE","keyUsage":"Certificate Signing, CRL Signing","subjectKeyIdentifier":"keyid:bf:c0:30:eb:f5:43:11:3e:67:ba:9e:91:fb:fc:6a:da:e3:6b:12:24"}}`
	wantChain1 = `{"subject":{"C":"US","O":"Equifax","OU":"Equifax Secure Certificate Authority","aggregated":"/C=US/O=Equifax/OU=Equifax Secure Certificate Authority"},"issuer":{"C":"US","O":"Equifax","OU":"Equifax Secure Certificate Authority","aggregated":"/C=US/O=Equifax/OU=Equifax Secure Certificate Authority"},"serial_number":"35DEF4CF","not_before":903804111,"not_after":1534956111,"fingerprint":"D2:32:09:AD:23:D3:14:23:21:74:E4:0D:7F:9D:62:13:97:86:63:3A","sha1":"D2:32:09:AD:23:D3:14:23:21:74:E4:0D:7F:9D:62:13:97:86:63:3A","sha256":"08:29:7A:40:47:DB:A2:36:80:C7:31:DB:6E:31:76:53:CA:78:48:E1:BE:BD:3A:0B:01:79:A7:07:F9:2C:F1:78","signature_algorithm":"sha1, rsa","is_ca":true,"extensions":{"authorityKeyIdentifier":"keyid:48:e6:68:f9:2b:d2:b2:95:d7:47:d8:23:20:10:4f:33:98:90:9f:d4","basicConstraints":"CA:TRUE","keyUsage":"Certificate Signing, CRL Signing","subjectKeyIdentifier":"keyid:48:e6:68:f9:2b:d2:b2:95:d7:47:d8:23:20:10:4f:33:98:90:9f:d4"}}`
)

// fourEntry decodes entry i of scanner.FourEntries into an Entry.
func fourEntry(t testing.TB, i int, index uint64, seen time.Time) Entry {
	t.Helper()
	e := fourEntries(t)[i]
	typ, cert, chain, err := DecodeRFC6962(e.LeafInput, e.ExtraData)
	if err != nil {
		t.Fatalf("DecodeRFC6962(entry %d): %v", i, err)
	}
	return Entry{Index: index, Type: typ, Cert: cert, Chain: chain, Seen: seen}
}

// TestBuildWorkedExample checks every column of spec section 5.5.
func TestBuildWorkedExample(t *testing.T) {
	seen := time.Unix(1732550400, 123456789) // sub-millisecond part must go
	e := fourEntry(t, 0, 0, seen)
	src := Source{URL: "https://ct.example.net/log", Name: "Example Log"}
	for _, b := range []struct {
		name  string
		build func(Entry, Source) (Row, error)
	}{{"Build", Build}, {"Builder", new(Builder).Build}} {
		t.Run(b.name, func(t *testing.T) {
			row, err := b.build(e, src)
			if err != nil {
				t.Fatalf("Build() error %v", err)
			}
			asDER := base64.StdEncoding.EncodeToString(row.AsDER)
			checks := []struct {
				col       string
				got, want any
			}{
				{"cert_index", row.CertIndex, uint64(0)},
				{"update_type", row.UpdateType, "X509LogEntry"},
				{"seen", row.Seen.UnixMicro(), int64(1732550400123000)},
				{"seen location", row.Seen.Location(), time.UTC},
				{"seen text", row.Seen.Format(time.RFC3339Nano), "2024-11-25T16:00:00.123Z"},
				{"seen_date", row.SeenDate, "2024-11-25"},
				{"source_name", row.SourceName, "Example Log"},
				{"source_url", row.SourceURL, "https://ct.example.net/log"},
				{"cert_link", row.CertLink, "https://ct.example.net/log/ct/v1/get-entries?start=0&end=0"},
				{"serial_number", row.SerialNumber, "1484F905000000007D3C"},
				{"fingerprint", row.Fingerprint, "E4:B1:74:3D:5E:83:93:44:A1:68:D6:43:E2:F7:BD:D1:94:CE:5A:B2"},
				{"sha256", row.SHA256, "3D:A4:49:1E:26:C4:D9:C3:D5:7F:F6:70:02:DE:07:47:D4:58:57:1A:B4:72:A0:2B:49:B8:E1:6A:E0:04:51:A6"},
				{"sha1", row.SHA1, "E4:B1:74:3D:5E:83:93:44:A1:68:D6:43:E2:F7:BD:D1:94:CE:5A:B2"},
				{"not_before", row.NotBefore, int64(1361367291)},
				{"not_after", row.NotAfter, int64(1370634207)},
				{"is_ca", row.IsCA, false},
				{"signature_algorithm", row.SignatureAlgorithm, "sha1, rsa"},
				{"subject_aggregated", row.SubjectAggregated, "/C=US/CN=mail.google.com/L=Mountain View/O=Google Inc/ST=California"},
				{"issuer_aggregated", row.IssuerAggregated, "/C=US/CN=Google Internet Authority/O=Google Inc"},
				{"all_domains", fmt.Sprintf("%q", row.AllDomains), `["mail.google.com"]`},
				{"as_der length", len(row.AsDER), 902},
				{"as_der base64 length", len(asDER), 1204},
				{"as_der start", strings.HasPrefix(asDER, "MIIDgjCCAuugAwIBAgIKFIT5BQAAAAB9PDANBgkqhkiG9w0BAQUFADBGMQsw"), true},
				{"as_der end", strings.HasSuffix(asDER, "T3d3SOo+lHvqPX9sOVa2uyA0wmIYnbT+5uQY6m0="), true},
				{"as_der bytes", string(row.AsDER), string(fourEntries(t)[0].LeafInput[15:917])},
				{"chain length", len(row.Chain), 2},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", c.col, c.got, c.want)
				}
			}
			if len(row.Chain) == 2 {
				if row.Chain[0] != wantChain0 {
					t.Errorf("chain[0] =\n%s\nwant\n%s", row.Chain[0], wantChain0)
				}
				if row.Chain[1] != wantChain1 {
					t.Errorf("chain[1] =\n%s\nwant\n%s", row.Chain[1], wantChain1)
				}
			}
		})
	}
}

// TestBuildEntry3 checks the values spec section 5.5 gives for entry 3.
func TestBuildEntry3(t *testing.T) {
	e := fourEntry(t, 3, 3, time.Unix(1700000000, 0))
	row, err := Build(e, Source{URL: "https://ct.example.net/log", Name: "Example Log"})
	if err != nil {
		t.Fatalf("Build() error %v", err)
	}
	if want := "/C=GB/CN=www.oxfordplayhouse.com/L=Oxford/O=The Oxford Playhouse Trust/OU=IT/ST=Oxfordshire"; row.SubjectAggregated != want {
		t.Errorf("subject_aggregated = %q, want %q", row.SubjectAggregated, want)
	}
	if got, want := fmt.Sprintf("%q", row.AllDomains), `["www.oxfordplayhouse.com" "oxfordplayhouse.com"]`; got != want {
		t.Errorf("all_domains = %s, want %s", got, want)
	}
	if want := "1121353F3DECED6C539F16D45E6C2387B421"; row.SerialNumber != want {
		t.Errorf("serial_number = %q, want %q", row.SerialNumber, want)
	}
	if row.SeenDate != "2023-11-14" {
		t.Errorf("seen_date = %q, want 2023-11-14", row.SeenDate)
	}
	// The leaf's extensions are not stored, but rendered as a chain object
	// they show the AIA and policy formats of section 5.5.
	js, ok := chainJSON(e.Cert)
	if !ok {
		t.Fatal("chainJSON(entry 3 leaf) failed")
	}
	for _, want := range []string{
		`"authorityInfoAccess":"URI:http://secure.globalsign.com/cacert/gsextendvalg2.crt, URI:http://ocsp2.globalsign.com/gsextendvalg2"`,
		`"certificatePolicies":"Policy: 1.3.6.1.4.1.4146.1.1\n"`,
	} {
		if !strings.Contains(js, want) {
			t.Errorf("chainJSON(entry 3 leaf) = %s\nwant it to contain %s", js, want)
		}
	}
}

// TestBuilderMatchesBuild checks that the chain cache changes nothing, also
// when shared by goroutines and when it overflows.
func TestBuilderMatchesBuild(t *testing.T) {
	entries := realEntries(t)
	src := Source{URL: "https://ct.example.net/log", Name: "Example Log"}
	want := make([]Row, len(entries))
	for i, e := range entries {
		row, err := Build(e, src)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = row
	}
	for _, maxCached := range []int{0, 1} {
		t.Run(fmt.Sprint("MaxCached=", maxCached), func(t *testing.T) {
			b := &Builder{MaxCached: maxCached}
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					for i := w; i < len(entries); i += 4 {
						got, err := b.Build(entries[i], src)
						if err != nil {
							t.Errorf("Builder.Build(entry %d) error %v", i, err)
							return
						}
						if !reflect.DeepEqual(got, want[i]) {
							t.Errorf("Builder.Build(entry %d) = %+v, want %+v", i, got, want[i])
						}
					}
				})
			}
			wg.Wait()
		})
	}
}
