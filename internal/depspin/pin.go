// Package depspin keeps the module graph complete while the packages that use
// these modules are being written. TODO(#8): delete once every import is real.
package depspin

import (
	_ "filippo.io/sunlight"
	_ "github.com/apache/arrow-go/v18/arrow/array"
	_ "github.com/apache/arrow-go/v18/parquet/pqarrow"
	_ "github.com/chromedp/chromedp"
	_ "github.com/duckdb/duckdb-go/v2"
	_ "github.com/google/certificate-transparency-go/client"
	_ "github.com/google/certificate-transparency-go/loglist3"
	_ "github.com/google/certificate-transparency-go/scanner"
	_ "github.com/google/certificate-transparency-go/trillian/ctfe"
	_ "github.com/google/certificate-transparency-go/x509"
	_ "github.com/google/trillian/server"
	_ "github.com/google/trillian/storage/memory"
	_ "github.com/google/uuid"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/spf13/viper"
	_ "github.com/transparency-dev/tessera/storage/posix"
	_ "github.com/transparency-dev/tesseract"
	_ "github.com/transparency-dev/tesseract/storage/posix"
	_ "github.com/transparency-dev/tesseract/testdata"
	_ "go.temporal.io/sdk/client"
	_ "go.temporal.io/sdk/testsuite"
	_ "go.temporal.io/sdk/worker"
	_ "golang.org/x/crypto/cryptobyte"
	_ "golang.org/x/sync/errgroup"
	_ "golang.org/x/time/rate"
)
