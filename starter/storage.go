package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/options"
	"github.com/certlake/certlake/internal/storage"
)

// opener reaches the tables of the configuration: local paths, file:///
// and s3:// URIs (storage.s3.*). The operator runs the starter and is
// there to fix a wrong storage.s3.endpoint, so an unreachable endpoint is
// a configuration error here (a worker retries it as an outage).
func opener(cfg *config.Config) *storage.Opener {
	o := options.Storage(cfg, cfg.Logger())
	o.UnreachableIsConfig = true
	return o
}

// tableOptions completes o with the configuration's storage, and a scratch
// directory for the remote files the starter reads (worker.scratch_dir, or
// one directory under the OS temp dir shared by starter runs: its cache
// keys files by location, key and size, and writes each copy whole).
func tableOptions(cfg *config.Config, o lake.Options) lake.Options {
	o.Storage = opener(cfg)
	dir := cfg.Worker.ScratchDir
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "certlake-starter-scratch")
	}
	o.Scratch = &lake.Scratch{Dir: dir}
	return o
}

// isURI reports whether a table location is a URI (file:///, s3://) rather
// than a path: it is passed on as it is, never made absolute.
func isURI(p string) bool { return strings.Contains(p, "://") }
