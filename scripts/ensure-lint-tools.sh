#!/usr/bin/env bash
# Installs the linters of `make lint` when they are missing or at another
# version: staticcheck, and workflowcheck (Temporal's determinism checker for
# workflow code).
set -euo pipefail
export PATH="$PATH:$(go env GOPATH)/bin"
staticcheck_version=v0.8.2     # staticcheck 2026.2.2
workflowcheck_version=v0.6.0   # go.temporal.io/sdk/contrib/tools/workflowcheck, for sdk v1.51
if ! staticcheck -version 2>/dev/null | grep -q "(${staticcheck_version#v})"; then
  echo "installing staticcheck $staticcheck_version..." >&2
  go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version"
fi
if ! command -v workflowcheck >/dev/null 2>&1; then
  echo "installing workflowcheck $workflowcheck_version..." >&2
  go install "go.temporal.io/sdk/contrib/tools/workflowcheck@$workflowcheck_version"
fi
