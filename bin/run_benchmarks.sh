#!/usr/bin/env bash
# Run every benchmark under benchmarks/ (each prints ratios against a baseline
# it measures in the same run). Extra arguments go to each benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p benchmarks/output
status=0
for bench in benchmarks/bench_*.py; do
    printf '\n==> %s\n' "$bench"
    python "$bench" "$@" || status=1
done
exit $status
