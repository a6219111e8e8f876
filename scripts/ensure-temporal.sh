#!/usr/bin/env bash
# Installs the Temporal CLI (dev server + Web UI) when it is not on PATH.
# v1.5.1 is the newest release that builds with `go install` (~5 min on 2 cores).
set -euo pipefail
export PATH="$PATH:$(go env GOPATH)/bin"
if command -v temporal >/dev/null 2>&1; then
  exit 0
fi
echo "installing the Temporal CLI (go install, takes a few minutes the first time)..." >&2
go install github.com/temporalio/cli/cmd/temporal@v1.5.1
command -v temporal >/dev/null
