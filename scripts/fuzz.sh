#!/usr/bin/env bash
# Runs every Go fuzz target of the repository (func Fuzz... in a _test.go file) with
# `go test -fuzz` for DURATION each, one after the other, and prints a table of the inputs
# each one executed. Plain `go test` runs only the seed corpora; this is the long version.
#
#   scripts/fuzz.sh [DURATION] [REGEXP]     e.g. scripts/fuzz.sh 10m, scripts/fuzz.sh 30s CAPI
#
# DURATION is a Go duration (default 10s: `make fuzz-short`); REGEXP selects targets by name.
# Environment: FUZZ_PARALLEL (workers per target, default 2), PATCHCORE_FUZZ_TIMEOUT (the
# time one input may take before the targets' watchdog reports it as a hang, default 20s).
# A failing input is written by the go tool to <package>/testdata/fuzz/<Target>/ (commit
# it: it becomes a seed that every `go test` replays); the script then exits non-zero.
# The table also goes to build/fuzz/summary.md.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
duration=${1:-10s}
select=${2:-.}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
deps=${DEPS:-$root/.deps}
export CGO_ENABLED=1
export CGO_CFLAGS=${CGO_CFLAGS:--I$deps/include -O2}
export CGO_LDFLAGS=${CGO_LDFLAGS:--L$deps/lib -Wl,--exclude-libs,ALL}
export PATCHCORE_ORT_LIBRARY=${PATCHCORE_ORT_LIBRARY:-$deps/lib/libonnxruntime.so.1}
parallel=${FUZZ_PARALLEL:-2}
out=$root/build/fuzz
mkdir -p "$out"

# "package-dir target" for every fuzz target, in a stable order.
mapfile -t targets < <(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' core capi internal |
  sed 's|^\(.*\)/[^/]*_test.go:func |\1 |' | sort -u | awk -v re="$select" '$2 ~ re')
[ ${#targets[@]} -gt 0 ] || { echo "fuzz.sh: no fuzz target matches $select" >&2; exit 1; }

summary=$out/summary.md
{
  echo "| target | package | duration | inputs executed | result |"
  echo "|---|---|---|---|---|"
} > "$summary"
failed=0
for t in "${targets[@]}"; do
  pkg=${t% *}
  name=${t#* }
  log=$out/$name-${pkg//\//_}.log
  printf '[fuzz] %s (./%s) for %s\n' "$name" "$pkg" "$duration"
  result=ok
  if ! "$GO" test "./$pkg" -run '^$' -fuzz "^$name\$" -fuzztime "$duration" -fuzzminimizetime 2s \
      -parallel "$parallel" > "$log" 2>&1; then
    result=FAILED
    failed=1
    tail -n 40 "$log"
  fi
  execs=$(grep -o 'execs: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*' || echo 0)
  printf '[fuzz] %s: %s inputs, %s\n' "$name" "$execs" "$result"
  echo "| $name | ./$pkg | $duration | $execs | $result |" >> "$summary"
done
echo
cat "$summary"
exit $failed
