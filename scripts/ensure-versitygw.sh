#!/usr/bin/env bash
# Installs versitygw, the S3-compatible server the object-storage tests run
# against (posix backend, conditional writes), when it is not on PATH.
# About 75 s on a cold machine.
set -euo pipefail
export PATH="$PATH:$(go env GOPATH)/bin"
if command -v versitygw >/dev/null 2>&1; then
  exit 0
fi
echo "installing versitygw (go install, about a minute the first time)..." >&2
go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
command -v versitygw >/dev/null
