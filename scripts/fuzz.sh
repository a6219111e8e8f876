#!/usr/bin/env bash
# Runs every fuzz target of the module for a bounded time (FUZZTIME, default
# 15s each), with its seed corpus from testdata/fuzz/<Target>. A crash fails
# the run, and Go writes the failing input to testdata/fuzz/<Target>/ so it
# can be committed and replayed by `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-15s}
# package directory and target name of every `func FuzzX(f *testing.F)`.
mapfile -t targets < <(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' . |
  sed -E 's#^(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]+)\(.*#\1 \2#' | sort -u)
if ((${#targets[@]} == 0)); then
  echo "fuzz: no targets found" >&2
  exit 1
fi
failed=0
for t in "${targets[@]}"; do
  read -r dir name <<<"$t"
  echo "fuzz: $dir $name ($fuzztime)"
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$dir"; then
    echo "fuzz: $dir $name FAILED (the input is under $dir/testdata/fuzz/$name)" >&2
    failed=1
  fi
done
exit $failed
