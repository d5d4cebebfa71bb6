#!/usr/bin/env bash
# Run every benchmark under benchmarks/ (each prints ratios against a baseline
# it measures in the same run). Extra arguments go to each benchmark.
# bench_calibrate.py also needs Debian's source-extractor and psfex
# (apt-get install source-extractor psfex) and says so if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p benchmarks/output
status=0
for bench in benchmarks/bench_*.py; do
    printf '\n==> %s\n' "$bench"
    python "$bench" "$@" || status=1
done
exit $status
