package ctlogtest_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/certlake/certlake/internal/ctlogtest"
)

// Two logs, as the demo runs them: a static-ct-api log whose tiles live in a
// directory and an RFC 6962 log with short get-entries reads.
func Example() {
	ctx := context.Background()
	gen, err := ctlogtest.NewGenerator(ctlogtest.GeneratorOptions{Seed: "demo"})
	if err != nil {
		panic(err)
	}
	dir, err := os.MkdirTemp("", "static-log-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	roots := []*x509.Certificate{gen.Root()} // both logs accept chains to the generator's root

	static, err := ctlogtest.StartStatic(ctx, dir, ctlogtest.Options{Name: "demo-static", Roots: roots})
	if err != nil {
		panic(err)
	}
	defer static.Close()
	rfc, err := ctlogtest.StartRFC6962(ctx, ctlogtest.Options{Name: "demo-rfc6962", Roots: roots, MaxGetEntries: 32})
	if err != nil {
		panic(err)
	}
	defer rfc.Close()

	certs, err := static.AddCertificates(ctx, 10, gen) // over HTTP: add-chain / add-pre-chain
	if err != nil {
		panic(err)
	}
	if err := rfc.AddBulk(ctx, 1000, gen, nil); err != nil { // in-process
		panic(err)
	}
	fmt.Println(static.URL+"checkpoint", certs[0].Index, certs[0].DNSNames[0])
	fmt.Println(rfc.URL + "ct/v1/get-sth")
}
